package detect

import (
	"testing"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
)

// BenchmarkParseFingerprintCheck is the per-connection cost: parse a
// ClientHello, compute JA4 and JA3, and judge it (goal: under 5 µs).
func BenchmarkParseFingerprintCheck(b *testing.B) {
	raw := clienttest.Hello(b, utls.HelloChrome_133)
	c := Default()
	for b.Loop() {
		ch, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if r := c.Check(ch, clienttest.ChromeUA, nil); r.Intercepted == nil || *r.Intercepted {
			b.Fatal("judged intercepted")
		}
	}
}
