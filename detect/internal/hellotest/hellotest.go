// Package hellotest holds what the tests of detect and detect/tlshello
// share: FoxIO's JA4 test vectors and the framing of a handshake message
// into TLS records, so that both packages' hostile-input tests build the
// same inputs.
package hellotest

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Vector is one of FoxIO's JA4 test vectors (tlshello/testdata/ja4).
type Vector struct {
	Name           string `json:"name"`
	ClientHelloHex string `json:"clienthello_hex"`
	JA4            string `json:"ja4"`
	JA4R           string `json:"ja4_r"`
	SNI            string `json:"sni"`
}

// Vectors reads the vectors of the JSON-lines file at path.
func Vectors(t testing.TB, path string) []Vector {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v Vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Hellos returns the vectors' ClientHello records.
func Hellos(t testing.TB, path string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, v := range Vectors(t, path) {
		raw, err := hex.DecodeString(v.ClientHelloHex)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// Records splits a handshake message into handshake records of n bytes each.
func Records(msg []byte, n int) []byte {
	var out []byte
	for len(msg) > 0 {
		k := min(n, len(msg))
		out = append(out, 22, 3, 1, byte(k>>8), byte(k))
		out = append(out, msg[:k]...)
		msg = msg[k:]
	}
	return out
}
