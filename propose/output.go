package propose

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
)

// EntryID is the blocklist id a proposal gets: stable for a key, so that
// proposing the same key twice merges as "already listed".
func EntryID(p *Proposal) string { return "proposed-" + p.SPKISHA256[:16] }

// EvidencePath is where WriteBundle puts a proposal's evidence, relative to
// the output directory; the entry's evidence reference names it.
func EvidencePath(p *Proposal) string { return filepath.Join("evidence", p.SPKISHA256[:16]+".json") }

// Blocklist makes the proposed blocklist: one entry per proposal, with its
// evidence reference, for blocklist merge to review.
func Blocklist(ps []*Proposal, published time.Time) (*blocklist.List, error) {
	entries := make([]*blocklist.Entry, 0, len(ps))
	for _, p := range ps {
		e := &blocklist.Entry{
			ID:          EntryID(p),
			Name:        p.Subject,
			Kind:        blocklist.KindGovernment,
			FirstSeen:   p.FirstSeen.Format(time.DateOnly),
			Notes:       notes(p),
			SPKISHA256:  p.SPKISHA256,
			Certificate: p.Certificate,
			Evidence:    filepath.ToSlash(EvidencePath(p)),
		}
		if c := p.x509; c != nil && len(c.Subject.Country) == 1 && len(c.Subject.Country[0]) == 2 {
			e.Country = c.Subject.Country[0]
		}
		entries = append(entries, e)
	}
	return blocklist.New(entries, 1, published)
}

// notes is an entry's note for the reviewer.
func notes(p *Proposal) string {
	n := fmt.Sprintf("proposed by mitmguard report --propose (confidence %s); a reviewer confirms the kind and the operator", p.Confidence)
	if !p.RootSent {
		n += "; root not sent: this is the key that signed the forged certificates, issued by " + p.Issuer
	}
	return n
}

// WriteBundle writes dir/proposed.json (the proposed blocklist), and the
// evidence a maintainer reviews: dir/evidence.json (every proposal and
// rejection), and per proposal dir/evidence/<key>.json and .pem (the
// issuing certificate and the example chains).
func WriteBundle(dir string, res *Result, published time.Time) error {
	list, err := Blocklist(res.Proposals, published)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "evidence"), 0o755); err != nil {
		return err
	}
	data, err := list.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "proposed.json"), data, 0o644); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "evidence.json"), res); err != nil {
		return err
	}
	for _, p := range res.Proposals {
		base := filepath.Join(dir, EvidencePath(p))
		if err := writeJSON(base, p); err != nil {
			return err
		}
		pemText := "# proposed key's certificate: " + p.Subject + "\n" + p.Certificate
		for _, in := range p.Intermediates {
			pemText += "# intermediate under it that signed forged certificates: " + in.Subject + "\n" + in.Certificate
		}
		for _, ex := range p.Examples {
			pemText += fmt.Sprintf("# example chain: host %s, SNI %s, vantage %s, %s\n%s", ex.Host, ex.SNI, ex.Vantage, ex.Time.Format(time.RFC3339), ex.PEM)
		}
		if err := os.WriteFile(base[:len(base)-len(".json")]+".pem", []byte(pemText), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(data, '\n'), 0o644)
}
