package detect

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
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
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ch.ExtensionData(e)) })
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
		{"Chrome 133", clienttest.Hello(t, clienttest.Parrots[0].ID), clienttest.Parrots[0].UA},
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
			t.Errorf("%s without server_name judged %s: %+v", k.name, clienttest.Verdict(r.Intercepted), r.Reasons)
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
		t.Errorf("IE 11's own hello judged %s: %+v", clienttest.Verdict(r.Intercepted), r.Reasons)
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

// The bit sets that let Check skip the rules of "never" agree with the
// rules: every value a rule bans is a hit for each of its stacks, and a
// hello that breaks a rule is judged intercepted with that rule's reason.
func TestNeverBitsAgreeWithRules(t *testing.T) {
	c := Default()
	if len(c.ref.Never) == 0 {
		t.Fatal("the reference has no rules of never")
	}
	for _, n := range c.ref.Never {
		for _, st := range n.Stacks {
			for _, l := range []struct {
				banned []uint16
				one    func(v uint16) Features
			}{
				{n.Extensions, func(v uint16) Features { return Features{Exts: []uint16{v}} }},
				{n.Groups, func(v uint16) Features { return Features{Curves: []uint16{v}} }},
				{n.Ciphers, func(v uint16) Features { return Features{Ciphers: []uint16{v}} }},
			} {
				for _, v := range l.banned {
					if f := l.one(v); !c.neverHit(st, f) || len(n.Violations(f)) == 0 {
						t.Errorf("%s: %#04x banned by %q: hit %v, violations %v", st, v, n.Why, c.neverHit(st, f), n.Violations(f))
					}
				}
			}
			if n.OnlyPointFormat != nil && !c.neverHit(st, Features{PF: []uint16{uint16(*n.OnlyPointFormat) + 1}}) {
				t.Errorf("%s: a second point format is no hit", st)
			}
		}
	}
	for _, p := range clienttest.Parrots {
		ch, err := Parse(clienttest.Hello(t, p.ID))
		if err != nil {
			t.Fatal(err)
		}
		if b := ParseUA(p.UA); c.neverHit(b.Stack, FeaturesOf(ch)) {
			t.Errorf("%s's own hello breaks a rule of never", b.Stack)
		}
	}
	// Chrome's stack with an OpenSSL-only cipher added: intercepted, for
	// the rule's reason.
	ch, err := Parse(clienttest.Hello(t, clienttest.Parrots[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	var banned uint16
	for _, n := range c.never["chromium"] {
		if len(n.Ciphers) > 0 {
			banned = n.Ciphers[0]
		}
	}
	if banned == 0 {
		t.Skip("no cipher rule for chromium")
	}
	ch.CipherSuites = append(ch.CipherSuites, banned)
	r := c.Check(ch, clienttest.Parrots[0].UA, nil)
	if r.Intercepted == nil || !*r.Intercepted || len(r.Reasons) == 0 || !strings.Contains(r.Reasons[0].What, "this browser's TLS stack never offers") {
		t.Errorf("Chrome's hello with %#04x judged %s: %+v", banned, clienttest.Verdict(r.Intercepted), r.Reasons)
	}
}
