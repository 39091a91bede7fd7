package propose

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/mitmguard/mitmguard/chain"
)

// FuzzPath feeds certificates a hostile campaign could hold (DER blobs,
// each after a 2-byte big-endian length) to the issuer look-up: it ends,
// follows at most maxPath certificates, never visits a key twice, and only
// ever steps to a certificate whose key verifies the signature below it.
func FuzzPath(f *testing.F) {
	root := issueCA(f, "national root", nil, nil)
	inter := root.sub(f, "Security Certificate")
	lookalike := issueCA(f, "national root", nil, root.cert.SubjectKeyId)
	f.Add(blobs(inter.leaf(f, "facebook.com"), inter.cert.Raw, lookalike.cert.Raw, root.cert.Raw))
	f.Add(blobs(root.cert.Raw, root.cert.Raw))
	f.Add(blobs(inter.cert.Raw, lookalike.cert.Raw, root.cert.Raw))
	f.Fuzz(func(t *testing.T, data []byte) {
		fd := &finder{byName: map[string][]*chain.Cert{}, tops: map[string][]*chain.Cert{}, checks: maxChecks}
		var certs []*chain.Cert
		for len(data) >= 2 && len(certs) < 64 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if n > len(data) {
				break
			}
			if c, err := chain.NewCert(data[:n]); err == nil && c.X509 != nil {
				certs = append(certs, c)
				if len(certs)%2 == 0 { // as a forged chain's top
					fd.tops[string(c.RawSubject)] = append(fd.tops[string(c.RawSubject)], c)
				} else {
					fd.index(c)
				}
			}
			data = data[n:]
		}
		for _, c := range certs {
			path := fd.path(c)
			if len(path) == 0 || len(path) > maxPath || path[0] != c {
				t.Fatalf("path of %d certificates from %s", len(path), c.Subject())
			}
			seen := map[chain.Hash]bool{}
			for i, p := range path {
				if seen[p.SPKI] {
					t.Fatalf("key %s visited twice", p.SPKI)
				}
				seen[p.SPKI] = true
				if i > 0 && (path[i-1].X509.CheckSignatureFrom(p.X509) != nil || !bytes.Equal(path[i-1].RawIssuer, p.RawSubject)) {
					t.Fatalf("stepped from %s to %s, which did not sign it", path[i-1].Subject(), p.Subject())
				}
			}
		}
	})
}

func blobs(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = binary.BigEndian.AppendUint16(out, uint16(len(d)))
		out = append(out, d...)
	}
	return out
}
