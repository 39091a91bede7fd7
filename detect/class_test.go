package detect

import (
	"os"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/mitmguard/mitmguard/detect/internal/hellotest"
)

// readCapture reads one of the development captures (testdata/captures).
func readCapture(t *testing.T, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/captures/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// parseCapture reads and parses one of the development captures.
func parseCapture(t *testing.T, file string) *ClientHello {
	t.Helper()
	ch, err := Parse(readCapture(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// withoutExtension rebuilds a ClientHello record without one extension.
func withoutExtension(t *testing.T, raw []byte, drop uint16) []byte {
	t.Helper()
	ch, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
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
				if e.Type != drop {
					b.AddUint16(e.Type)
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
				}
			}
		})
	})
	return hellotest.Records(b.BytesOrPanic(), 1<<14)
}

// Issue 10: a browser connecting to a bare IP address sends no server_name;
// that is no evidence. Today's Chrome (parrot) and a 2015 Firefox and IE 11
// (real captures) without it are still judged not intercepted.
func TestNoSNIIsNoEvidence(t *testing.T) {
	c := Default()
	cases := []struct {
		name string
		raw  []byte
		ua   string
	}{
		{"Chrome 133", captureHello(t, parrots[0].id), parrots[0].ua},
	}
	for _, f := range []struct{ file, ua string }{
		{"b-computer-Windows-10-firefox-43.0.bin", "Mozilla/5.0 (Windows NT 10.0; WOW64; rv:43.0) Gecko/20100101 Firefox/43.0"},
		{"b-computer-Windows-7-ie-11.0.bin", "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"},
	} {
		cases = append(cases, struct {
			name string
			raw  []byte
			ua   string
		}{f.file, readCapture(t, f.file), f.ua})
	}
	for _, k := range cases {
		ch, err := Parse(withoutExtension(t, k.raw, 0))
		if err != nil {
			t.Fatal(err)
		}
		if ch.ServerName != "" {
			t.Fatalf("%s: server_name still there", k.name)
		}
		if r := c.Check(ch, k.ua, nil); r.Intercepted == nil || *r.Intercepted {
			t.Errorf("%s without server_name judged %s: %+v", k.name, fmtBool(r.Intercepted), r.Reasons)
		}
	}
}

// Issue 10 class 3: a known interceptor's signature equal to the browser's
// own hello (the product forwards the browser's hello) does not convict a
// hello that fits the browser. The real Windows 7 IE 11 hello matches
// Kaspersky's records in mitm.txt.
func TestInterceptorSignatureEqualToBrowserDoesNotConvict(t *testing.T) {
	ch := parseCapture(t, "b-windows-7-no-av-ie-11.bin")
	c := Default()
	ua := "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"
	b := ParseUA(ua)
	if s := c.interceptor(FeaturesOf(ch), uasurferCode(b.Family), b.Major); s == nil {
		t.Fatal("the IE 11 hello no longer matches an interceptor's signature: the test lost its point")
	}
	if r := c.Check(ch, ua, nil); r.Intercepted == nil || *r.Intercepted {
		t.Errorf("IE 11's own hello judged %s: %+v", fmtBool(r.Intercepted), r.Reasons)
	}
}

// Issue 10 class 4: today's Safari reference does not apply to iOS 9: an
// iOS 9 browser (no GREASE, RC4 offered) is judged by the references of
// its own version, not convicted for what Safari sends now.
func TestOldIOSNotJudgedByTodaysSafari(t *testing.T) {
	ch := parseCapture(t, "b-iphone6-iOS-9-firefox-1.4.bin")
	ua := "Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) FxiOS/1.4 Mobile/13B143 Safari/601.1.46"
	if r := Default().Check(ch, ua, nil); r.Intercepted != nil && *r.Intercepted {
		t.Errorf("iOS 9 Firefox judged intercepted: %+v", r.Reasons)
	}
}
