package measure

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/mitmguard/mitmguard/chain"
)

// JSONRecord is the JSON Lines form of a record (`probe --jsonl`,
// `report --jsonl`): the record with its campaign and control.
// Certificates travel as separate lines (JSONCert), each once and before the
// first record that refers to it, so records carry only hashes.
type JSONRecord struct {
	Type     string `json:"type"` // "record"
	Campaign string `json:"campaign"`
	Record
	// VantageASN and VantageCountry are what the operator declared of
	// the record's vantage point (Vantage), left out when not declared.
	VantageASN     uint32  `json:"vantage_asn,omitempty"`
	VantageCountry string  `json:"vantage_country,omitempty"`
	Control        Control `json:"control"`
}

// JSONCert is the JSON Lines form of a certificate.
type JSONCert struct {
	Type   string     `json:"type"` // "certificate"
	SHA256 chain.Hash `json:"sha256"`
	PEM    string     `json:"pem"`
}

// JSONL writes one campaign's records and certificates as JSON Lines. It is
// the only encoder of the format, used by probe and by report's export.
// It writes each certificate once.
type JSONL struct {
	enc      *json.Encoder
	campaign string
	seen     map[chain.Hash]bool
	vantages map[string]Vantage
}

// NewJSONL returns an encoder writing campaign's lines to w.
func NewJSONL(w io.Writer, campaign string) *JSONL {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONL{enc: enc, campaign: campaign, seen: map[chain.Hash]bool{}}
}

// Has reports whether the certificate was written (or found by Index).
func (j *JSONL) Has(h chain.Hash) bool { return j.seen[h] }

// Cert writes a certificate unless it was written before.
func (j *JSONL) Cert(der []byte) error {
	c, err := chain.NewCert(der)
	if err != nil {
		return fmt.Errorf("jsonl: %w", err)
	}
	if j.seen[c.SHA256] {
		return nil
	}
	j.seen[c.SHA256] = true
	return j.enc.Encode(JSONCert{Type: "certificate", SHA256: c.SHA256, PEM: c.PEM()})
}

// Declare gives the declarations of the campaign's vantage points: the
// records of each carry its ASN and country.
func (j *JSONL) Declare(vs ...Vantage) {
	if j.vantages == nil {
		j.vantages = map[string]Vantage{}
	}
	for _, v := range vs {
		j.vantages[v.Name] = v
	}
}

// Record writes a record with its host's control.
func (j *JSONL) Record(r Record, ctl Control) error {
	v := j.vantages[r.Vantage]
	return j.enc.Encode(JSONRecord{Type: "record", Campaign: j.campaign, Record: r, VantageASN: v.ASN, VantageCountry: v.Country, Control: ctl})
}

// Host writes a host's results: certificates new to the output, then records.
func (j *JSONL) Host(hr *HostResult) error {
	for _, der := range hr.Certs {
		if err := j.Cert(der); err != nil {
			return err
		}
	}
	for _, r := range hr.Records {
		if err := j.Record(r, hr.Control); err != nil {
			return err
		}
	}
	return nil
}

// Export writes every record of src that skip does not reject, each
// certificate it refers to once, before it.
func (j *JSONL) Export(ctx context.Context, src Source, skip func(Record) bool) error {
	return src.Records(ctx, func(r Record, ctl Control) error {
		if skip != nil && skip(r) {
			return nil
		}
		for _, hs := range [][]chain.Hash{ctl.Chain, r.Chain} {
			for _, h := range hs {
				if j.seen[h] {
					continue
				}
				der, err := src.Cert(ctx, h)
				if err != nil {
					return err
				}
				if err := j.Cert(der); err != nil {
					return err
				}
			}
		}
		return j.Record(r, ctl)
	})
}

// MaxJSONLLine bounds one line of a JSON Lines file read back (a record or
// a certificate is a few KB).
const MaxJSONLLine = 1 << 20

// JSONLIndex is what a JSON Lines file already holds of one campaign: which
// records and certificates. A run killed between committing to the store and
// writing the JSON Lines leaves them behind the store; resume writes what
// they lack (Export with Has as skip).
type JSONLIndex struct {
	perHost map[hostKey]int             // records seen per host
	partial map[hostKey]map[string]bool // SNIs of hosts seen with fewer than want records
	certs   map[chain.Hash]bool
	// Lines counts the campaign's lines; Tail is the length of the file's
	// complete lines (a line cut by a kill is not part of it).
	Lines int
	Tail  int64
}

type hostKey struct{ vantage, host string }

// IndexJSONL reads a JSON Lines file for campaign's lines; want is the
// number of records a complete host has (the campaign's domains). The file
// is bounded line by line; lines of other campaigns, a cut last line and
// lines that are not this format are ignored. It reads r twice: rs must seek.
func IndexJSONL(rs io.ReadSeeker, campaign string, want int) (*JSONLIndex, error) {
	x := &JSONLIndex{perHost: map[hostKey]int{}, partial: map[hostKey]map[string]bool{}, certs: map[chain.Hash]bool{}}
	pass := func(fn func(line []byte)) error {
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return err
		}
		br := bufio.NewReaderSize(rs, 64<<10)
		var off int64
		for {
			line, err := readLine(br)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("jsonl: at byte %d: %w", off, err)
			}
			if line[len(line)-1] != '\n' {
				return nil // cut by a kill: not part of the file
			}
			off += int64(len(line))
			x.Tail = off
			fn(line)
		}
	}
	var l struct {
		Type     string     `json:"type"`
		Campaign string     `json:"campaign"`
		Vantage  string     `json:"vantage"`
		Host     string     `json:"host"`
		SNI      string     `json:"sni"`
		SHA256   chain.Hash `json:"sha256"`
	}
	decode := func(line []byte) bool {
		l.Type, l.Campaign, l.Vantage, l.Host, l.SNI = "", "", "", "", ""
		return json.Unmarshal(line, &l) == nil
	}
	err := pass(func(line []byte) {
		if !decode(line) {
			return
		}
		switch {
		case l.Type == "certificate":
			x.certs[l.SHA256] = true
		case l.Type == "record" && l.Campaign == campaign:
			x.Lines++
			x.perHost[hostKey{l.Vantage, l.Host}]++
		}
	})
	if err != nil {
		return nil, err
	}
	for k, n := range x.perHost {
		if n < want {
			x.partial[k] = map[string]bool{}
		}
	}
	if len(x.partial) == 0 {
		return x, nil
	}
	err = pass(func(line []byte) {
		if decode(line) && l.Type == "record" && l.Campaign == campaign {
			if s := x.partial[hostKey{l.Vantage, l.Host}]; s != nil {
				s[l.SNI] = true
			}
		}
	})
	return x, err
}

// readLine returns one line with its newline (without one at the end of
// the input), refusing lines longer than MaxJSONLLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > MaxJSONLLine {
			return nil, fmt.Errorf("a line longer than %d bytes", MaxJSONLLine)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(buf) > 0:
			return buf, nil
		case err != nil:
			return nil, err
		}
		return buf, nil
	}
}

// Has reports whether the file holds the record.
func (x *JSONLIndex) Has(r Record) bool {
	k := hostKey{r.Vantage, r.Host}
	if s := x.partial[k]; s != nil {
		return s[r.SNI]
	}
	return x.perHost[k] > 0
}

// Seed marks the certificates the file holds as written by j, so that j
// does not write them again.
func (x *JSONLIndex) Seed(j *JSONL) {
	for h := range x.certs {
		j.seen[h] = true
	}
}
