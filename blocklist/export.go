package blocklist

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Export formats, so the list protects software that will never link Go.
const (
	FormatP11Kit     = "p11kit"      // a p11-kit blocklist file: each certificate with x-distrusted: true
	FormatPEM        = "pem"         // the certificates as plain PEM
	FormatSPKISHA256 = "spki-sha256" // one hex SPKI SHA-256 per line, with the id
	FormatOneCRL     = "onecrl-json" // Mozilla OneCRL-style subject + pubKeyHash records
)

// ExportFormats lists the formats Export knows.
// (Chrome's CRLSet format is package crlset's: crlset.FromList.)
var ExportFormats = []string{FormatP11Kit, FormatPEM, FormatSPKISHA256, FormatOneCRL}

// Export writes the list in a format. Entries known only by key hash are
// left out of the formats that need a certificate (p11kit, pem, onecrl-json),
// with a comment where the format has comments.
func (l *List) Export(w io.Writer, format string) error {
	var b bytes.Buffer
	switch format {
	case FormatP11Kit:
		fmt.Fprintf(&b, "# mitmguard blocklist version %d: interception roots, distrusted whatever anchors say.\n", l.Version)
		fmt.Fprintf(&b, "# Put this file in a p11-kit blocklist folder (/etc/pki/ca-trust/source/blocklist/ or\n# /etc/ca-certificates/trust-source/blocklist/) and run update-ca-trust or trust extract-compat.\n")
		for _, e := range l.entries {
			if e.cert == nil {
				fmt.Fprintf(&b, "# %s: no certificate, key %s (not expressible here)\n", e.ID, e.SPKISHA256)
				continue
			}
			fmt.Fprintf(&b, "\n[p11-kit-object-v1]\nclass: certificate\nlabel: %q\nx-distrusted: true\n%s", "mitmguard "+e.ID+": "+e.Name, e.cert.PEM())
		}
	case FormatPEM:
		for _, e := range l.entries {
			if e.cert != nil {
				fmt.Fprintf(&b, "# %s: %s\n%s", e.ID, e.Name, e.cert.PEM())
			}
		}
	case FormatSPKISHA256:
		for _, e := range l.entries {
			fmt.Fprintf(&b, "%s\t%s\n", e.SPKISHA256, e.ID)
		}
	case FormatOneCRL:
		type record struct {
			ID         string            `json:"id"`
			Subject    string            `json:"subject"`
			PubKeyHash string            `json:"pubKeyHash"`
			Details    map[string]string `json:"details"`
			Enabled    bool              `json:"enabled"`
		}
		var recs []record
		for _, e := range l.entries {
			if e.cert == nil {
				continue
			}
			recs = append(recs, record{
				ID: e.ID, Enabled: true,
				Subject:    base64.StdEncoding.EncodeToString(e.cert.RawSubject),
				PubKeyHash: base64.StdEncoding.EncodeToString(e.spki[:]),
				Details:    map[string]string{"who": "mitmguard", "why": string(e.Kind), "name": e.Name, "created": e.FirstSeen},
			})
		}
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"data": recs}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("blocklist: unknown export format %q (want one of %s)", format, strings.Join(ExportFormats, ", "))
	}
	_, err := w.Write(b.Bytes())
	return err
}
