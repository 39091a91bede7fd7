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
