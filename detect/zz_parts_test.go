package detect

import (
	"testing"

	utls "github.com/refraction-networking/utls"
)

func BenchmarkZZParts(b *testing.B) {
	raw := captureHello(b, utls.HelloChrome_133)
	c := Default()
	ch, _ := Parse(raw)
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			Parse(raw)
		}
	})
	b.Run("fingerprints", func(b *testing.B) {
		for b.Loop() {
			ch.Fingerprints()
		}
	})
	b.Run("ja4", func(b *testing.B) {
		for b.Loop() {
			ch.JA4()
		}
	})
	b.Run("ja3", func(b *testing.B) {
		for b.Loop() {
			ch.JA3()
		}
	})
	b.Run("ua", func(b *testing.B) {
		for b.Loop() {
			ParseUA(chromeUA)
		}
	})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			c.Check(ch, chromeUA, nil)
		}
	})
	f := FeaturesOf(ch)
	b.Run("judge", func(b *testing.B) {
		for b.Loop() {
			r := &Result{Browser: ParseUA(chromeUA)}
			c.judge(r, f, ch.MaxVersion(), "t13d1516h2_8daaf6152771_d8a2da3f94cd")
		}
	})
}
