package tlshello

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

type ja4Vector struct {
	Name, ClientHelloHex, JA4, JA4R, SNI string
}

func ja4Vectors(t testing.TB) []ja4Vector {
	f, err := os.Open("testdata/ja4/vectors.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ja4Vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v struct {
			Name           string `json:"name"`
			ClientHelloHex string `json:"clienthello_hex"`
			JA4            string `json:"ja4"`
			JA4R           string `json:"ja4_r"`
			SNI            string `json:"sni"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, ja4Vector{v.Name, v.ClientHelloHex, v.JA4, v.JA4R, v.SNI})
	}
	return out
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
