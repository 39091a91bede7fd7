package tlshello

import (
	"crypto/md5"
	"encoding/hex"
	"strconv"
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

// Fingerprints, made in one string, agree with JA4 and JA3, and the JA3
// hash is the MD5 of the JA3 string.
func TestFingerprintsAgree(t *testing.T) {
	for _, v := range ja4Vectors(t) {
		b, _ := hex.DecodeString(v.ClientHelloHex)
		ch, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		fp := ch.Fingerprints()
		ja4, raw := ch.JA4()
		ja3, hash := ch.JA3()
		sum := md5.Sum([]byte(ja3))
		if fp != (Fingerprints{ja4, raw, ja3, hash}) || hash != hex.EncodeToString(sum[:]) || ja4 != v.JA4 {
			t.Errorf("%s: Fingerprints %+v, JA4 %s %s, JA3 %s %s", v.Name, fp, ja4, raw, ja3, hash)
		}
	}
}

// appendDecimal writes what strconv does, for every 16-bit value.
func TestAppendDecimal(t *testing.T) {
	for v := range 1 << 16 {
		if got, want := string(appendDecimal([]byte("x"), uint16(v))), "x"+strconv.Itoa(v); got != want {
			t.Fatalf("%d: %q, want %q", v, got, want)
		}
	}
}
