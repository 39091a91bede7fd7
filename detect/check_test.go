package detect

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// headerNames gives what lowering each name and sorting gives, for the
// usual request, for non-ASCII names, and past its stack buffers.
func TestHeaderNames(t *testing.T) {
	many := http.Header{}
	for i := range 100 {
		many[fmt.Sprintf("X-Some-Rather-Long-Header-Name-%03d", i)] = nil
	}
	for name, h := range map[string]http.Header{
		"none":      nil,
		"empty":     {},
		"browser":   {"User-Agent": nil, "Accept": nil, "Accept-Language": nil, "Sec-Fetch-Mode": nil, "Via": nil},
		"non-ASCII": {"X-Ünïcode": nil, "Ω-Header": nil, "Plain": nil},
		"many":      many,
	} {
		var want []string
		for n := range h {
			want = append(want, strings.ToLower(n))
		}
		slices.Sort(want)
		if got := headerNames(h); !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

// matchAnySNI finds a signature whose server_name sits at any place of the
// hello's extensions (first, between, last), and no other.
func TestMatchAnySNI(t *testing.T) {
	f := Features{Version: 0x303, Ciphers: []uint16{0x2f}, Exts: []uint16{0xa, 0xb, 0xff01}, Curves: []uint16{0x17}, PF: []uint16{0}}
	for exts, want := range map[string]bool{
		"0,a,b,ff01":   true,
		"a,0,b,ff01":   true,
		"a,b,0,ff01":   true,
		"a,b,ff01,0":   true,
		"a,b,ff01":     true,
		"b,a,0,ff01":   false,
		"a,b,0":        false,
		"a,b,ff01,0,0": false,
	} {
		s, err := parseSignature("1:21::::1:|303:2f:" + exts + ":17:0::|:0:0")
		if err != nil {
			t.Fatal(err)
		}
		before := slices.Clone(f.Exts)
		if got := matchAnySNI(s, f, 1, 21); got != want {
			t.Errorf("signature extensions %s: %v, want %v", exts, got, want)
		}
		if !slices.Equal(f.Exts, before) {
			t.Fatalf("signature extensions %s: the features' extensions became %x", exts, f.Exts)
		}
	}
}
