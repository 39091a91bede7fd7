package chain

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
)

// hugeName is a DER name of n attributes, as a forger might send.
func hugeName(t testing.TB, n int) []byte {
	t.Helper()
	seq := make(pkix.RDNSequence, 0, n+1)
	seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: "KZ"}})
	for i := 0; i < n-2; i++ {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "unit"}})
	}
	seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "Security Certificate"}})
	raw, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A name with 50,000 attributes renders at most MaxNameAttributes of them
// (the CN first, as RFC 2253 orders it) and says how many it left out.
// Before the cap it rendered all of them, in time quadratic in their number.
func TestNameStringCapsAttributes(t *testing.T) {
	s := NameString(hugeName(t, 50000))
	if n := strings.Count(s, "="); n != MaxNameAttributes {
		t.Errorf("%d attributes rendered, want %d", n, MaxNameAttributes)
	}
	if !strings.HasPrefix(s, "CN=Security Certificate,") || !strings.HasSuffix(s, "(49968 more attributes not shown)") {
		t.Errorf("rendered %.80q...%q", s, s[max(0, len(s)-60):])
	}
	if len(s) > 1024 {
		t.Errorf("rendered name is %d bytes", len(s))
	}
	// One multi-valued RDN of many attributes is capped too.
	set := make(pkix.RelativeDistinguishedNameSET, 5000)
	for i := range set {
		set[i] = pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "u"}
	}
	raw, _ := asn1.Marshal(pkix.RDNSequence{set})
	if s := NameString(raw); strings.Count(s, "=") != MaxNameAttributes {
		t.Errorf("multi-valued RDN: %d attributes rendered", strings.Count(s, "="))
	}
	// Ordinary names are rendered as pkix renders them.
	raw, _ = asn1.Marshal(pkix.Name{Country: []string{"KZ"}, CommonName: "Security Certificate"}.ToRDNSequence())
	if s := NameString(raw); s != "CN=Security Certificate,C=KZ" {
		t.Errorf("ordinary name %q", s)
	}
	if s := NameString([]byte{0x30, 0x05}); s != "<unreadable name>" {
		t.Errorf("bad DER: %q", s)
	}
}

// BenchmarkNameString: rendering a 50,000-attribute name costs about what
// parsing its DER costs (it took 12-50 s before the cap).
func BenchmarkNameString(b *testing.B) {
	raw := hugeName(b, 50000)
	for b.Loop() {
		NameString(raw)
	}
}
