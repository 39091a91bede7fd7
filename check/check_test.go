package check

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/verdict"
)

func startLab(t testing.TB) *lab.Lab {
	t.Helper()
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestLab drives real TLS handshakes through the lab middlebox and checks
// each verdict class.
func TestLab(t *testing.T) {
	l := startLab(t)
	withNational, knownID := lab.Blocklist(l.NationalRoot)
	localTrust := x509.NewCertPool()
	localTrust.AddCert(l.PublicRoot)
	localTrust.AddCert(l.NationalRoot)

	base := verdict.Options{ExtraRoots: []*x509.Certificate{l.PublicRoot}}
	known := base
	known.Blocklist = withNational
	local := base
	local.LocalRoots = localTrust

	tests := []struct {
		name, target, connect string
		opts                  verdict.Options
		want                  outcome.Outcome
		issuer                string
		online                bool
	}{
		{"direct to origin", "www.google.com", l.OriginAddr, base, outcome.OK, "mitmguard lab public root", false},
		{"pass-through", "en.wikipedia.org", l.MiddleboxAddr, base, outcome.OK, "mitmguard lab public root", false},
		{"forged, root unknown", "www.google.com", l.MiddleboxAddr, base, outcome.Suspected, "mitmguard lab national root", false},
		{"forged, root trusted locally", "facebook.com", l.MiddleboxAddr, local, outcome.Suspected, "mitmguard lab national root", false},
		{"forged, root on the list", "vk.com", l.MiddleboxAddr, known, outcome.Known(knownID), "", false},
		{"reset", "twitter.com", l.MiddleboxAddr, base, outcome.BlockedReset, "", false},
		{"stall", "ok.ru", l.MiddleboxAddr, base, outcome.BlockedTimeout, "", false},
		// Offline, a server that forgot its intermediate cannot be told from a
		// forger that blocks the AIA download: suspicion stays.
		{"missing intermediate, offline", lab.IncompleteName, l.IncompleteAddr, base, outcome.Suspected, "mitmguard lab public", false},
		{"missing intermediate, fetched by AIA", lab.IncompleteName, l.IncompleteAddr, base, outcome.OK, "", true},
		{"nothing listening", "facebook.com", "127.0.0.1:1", base, outcome.ErrorDial, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Run(context.Background(), tt.target, Options{
				Classifier: verdict.New(tt.opts), Connect: tt.connect, Timeout: 2 * time.Second,
				FetchIssuers: tt.online, aiaAnyPort: true,
			})
			if rep.Outcome != tt.want {
				t.Fatalf("outcome %s (%s), want %s", rep.Outcome, rep.Message, tt.want)
			}
			if tt.issuer != "" && !strings.Contains(rep.Issuer, tt.issuer) {
				t.Errorf("issuer %q, want %q", rep.Issuer, tt.issuer)
			}
			if rep.Address != tt.connect || rep.SNI != tt.target || rep.Message == "" {
				t.Errorf("report %+v", rep)
			}
			handshook := !rep.Outcome.Blocked() && rep.Outcome.Stage() != "error"
			if handshook && len(rep.Chain) == 0 {
				t.Error("presented chain not kept")
			}
		})
	}
}

// The forged certificate carries the 2019 box's traits, and a passed-through
// connection presents exactly the origin's chain.
func TestLabForgery(t *testing.T) {
	l := startLab(t)
	cl := verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{l.PublicRoot}})
	real := Run(context.Background(), "www.google.com", Options{Classifier: cl, Connect: l.OriginAddr})
	forged := Run(context.Background(), "www.google.com", Options{Classifier: cl, Connect: l.MiddleboxAddr})
	passed := Run(context.Background(), "github.com", Options{Classifier: cl, Connect: l.MiddleboxAddr})
	if len(real.Chain) != 2 || len(forged.Chain) != 2 || len(passed.Chain) != 2 {
		t.Fatalf("chain lengths %d %d %d", len(real.Chain), len(forged.Chain), len(passed.Chain))
	}
	if passed.Chain[0].SHA256 != real.Chain[0].SHA256 {
		t.Error("pass-through altered the chain")
	}
	rl, fl := real.Chain[0], forged.Chain[0]
	if fl.Subject != rl.Subject || strings.Join(fl.DNSNames, ",") != strings.Join(rl.DNSNames, ",") {
		t.Errorf("forged names %q %v, real %q %v", fl.Subject, fl.DNSNames, rl.Subject, rl.DNSNames)
	}
	if fl.SPKISHA256 == rl.SPKISHA256 {
		t.Error("forged leaf has the real key")
	}
	if d := rl.NotBefore.Sub(fl.NotBefore); d != lab.ForgeryShift {
		t.Errorf("validity shifted by %v", d)
	}
	if forged.Chain[1].Subject != "CN=Security Certificate,C=KZ" {
		t.Errorf("intermediate %q", forged.Chain[1].Subject)
	}
	rc, fc := parse(t, rl.PEM), parse(t, fl.PEM)
	if k, ok := fc.PublicKey.(*rsa.PublicKey); !ok || k.E != 3 || k.N.BitLen() != 2048 {
		t.Errorf("forged key is %T, want RSA-2048 with e=3", fc.PublicKey)
	}
	if serialHigh(rc) != serialHigh(fc) {
		t.Error("serial high bits not kept")
	}
	if len(fc.Extensions) > 2 { // SAN and the authority key id Go adds
		t.Errorf("forged leaf kept %d extensions", len(fc.Extensions))
	}
	// The same host gets the same key on the next connection.
	again := Run(context.Background(), "www.google.com", Options{Classifier: cl, Connect: l.MiddleboxAddr})
	if again.Chain[0].SPKISHA256 != fl.SPKISHA256 {
		t.Error("per-host key not reused")
	}
}

func serialHigh(c *x509.Certificate) string {
	return new(big.Int).Rsh(c.SerialNumber, 33).String()
}

func parse(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"facebook.com": "facebook.com 443", "facebook.com:8443": "facebook.com 8443",
		"[::1]:443": "::1 443", "127.0.0.1": "127.0.0.1 443",
	} {
		h, p, err := ParseTarget(in)
		if err != nil || h+" "+p != want {
			t.Errorf("%q: %q %q %v", in, h, p, err)
		}
	}
	for _, bad := range []string{"", "facebook.com:0", "facebook.com:x", "http://x", "a b"} {
		if _, _, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUnresolvable(t *testing.T) {
	rep := Run(context.Background(), "no-such-host.invalid", Options{Classifier: verdict.New(verdict.Options{}), Timeout: 2 * time.Second})
	if rep.Outcome != outcome.ErrorResolve {
		t.Fatalf("outcome %s", rep.Outcome)
	}
}
