package tlshello

import (
	"encoding/hex"
	"testing"

	"github.com/mitmguard/mitmguard/detect/internal/hellotest"
)

func ja4Vectors(t testing.TB) []hellotest.Vector {
	return hellotest.Vectors(t, "testdata/ja4/vectors.jsonl")
}

// Every FoxIO vector gives its expected JA4 and JA4_r.
func TestJA4Vectors(t *testing.T) {
	vs := ja4Vectors(t)
	if len(vs) != 13 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		b, err := hex.DecodeString(v.ClientHelloHex)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := Parse(b)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		ja4, raw := ch.JA4()
		if ja4 != v.JA4 || raw != v.JA4R {
			t.Errorf("%s:\n got %s\nwant %s\n got %s\nwant %s", v.Name, ja4, v.JA4, raw, v.JA4R)
		}
		if ch.ServerName != v.SNI {
			t.Errorf("%s: SNI %q, want %q", v.Name, ch.ServerName, v.SNI)
		}
	}
}
