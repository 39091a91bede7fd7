package detect

import (
	"fmt"
	"testing"

	utls "github.com/refraction-networking/utls"
	"golang.org/x/crypto/cryptobyte"

	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
	"github.com/mitmguard/mitmguard/detect/internal/hellotest"
)

// withoutSNIAndMany rebuilds the hello ch without its server_name and
// padding extensions and with n more empty extensions of unused types.
func withoutSNIAndMany(ch *ClientHello, n int) []byte {
	have := map[uint16]bool{}
	for _, e := range ch.Extensions {
		have[e.Type] = true
	}
	var b cryptobyte.Builder
	b.AddUint8(1)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(ch.Version)
		b.AddBytes(ch.Random)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ch.SessionID) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, c := range ch.CipherSuites {
				b.AddUint16(c)
			}
		})
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ch.Compression) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range ch.Extensions {
				if e.Type != 0 && e.Type != 21 {
					b.AddUint16(e.Type)
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ch.ExtensionData(e)) })
				}
			}
			for t := uint16(0x2000); n > 0; t++ {
				if !have[t] {
					b.AddUint16(t)
					b.AddUint16(0)
					n--
				}
			}
		})
	})
	return hellotest.Records(b.BytesOrPanic(), 1<<14)
}

// BenchmarkCheckManyExtensions is a hostile hello's cost per extension: a
// browser's hello without server_name (so each signature is tried with it
// at every place) and thousands of empty extensions, under a User-Agent
// whose signatures it fails. ns/ext stays about the same from 1000 to 15000
// extensions when Check is linear in them (it grew 15-fold when
// matchAnySNI copied the list in afresh at each place).
func BenchmarkCheckManyExtensions(b *testing.B) {
	ch, err := Parse(clienttest.Hello(b, utls.HelloChrome_133))
	if err != nil {
		b.Fatal(err)
	}
	c := Default()
	for _, n := range []int{1000, 15000} {
		hostile, err := Parse(withoutSNIAndMany(ch, n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				c.Check(hostile, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; rv:11.0) like Gecko", nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/ext")
		})
	}
}
