package detect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/detect/internal/browser"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// visit opens url in the real browser (trusting root) and returns the
// verdict on its first request, as the site's middleware judged it.
func visit(t *testing.T, b *browser.Browser, url string, root *x509.Certificate, results <-chan *Result) *Result {
	t.Helper()
	for len(results) > 0 {
		<-results // verdicts of an earlier visit's stragglers
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := b.Open(ctx, url, t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer browser.Stop(cmd)
	select {
	case r := <-results:
		return r
	case <-ctx.Done():
		t.Fatalf("%s made no request to %s in 2 minutes", b.Program, url)
	}
	return nil
}

// Issue 10: Debian's Chromium and Firefox ESR, run headless, connecting to
// the detecting site over loopback are judged not intercepted, with the
// reference that covers their version; the same browsers behind the lab's
// middlebox (which re-originates the connection) are judged intercepted.
func TestRealBrowsers(t *testing.T) {
	for _, b := range browser.All() {
		t.Run(b.Name, func(t *testing.T) {
			if b.Path == "" {
				testtool.Missing(t, b.Program+" (Debian package "+b.Package+")")
			}
			testtool.Need(t, "certutil", "libnss3-tools")
			results := make(chan *Result, 64)
			root, cert := testCA(t)
			addr, _ := serveCert(t, Options{OnResult: func(r *http.Request, res *Result) {
				if strings.Contains(r.UserAgent(), "Mozilla/") {
					select {
					case results <- res:
					default:
					}
				}
			}}, cert)
			_, port, _ := net.SplitHostPort(addr)
			r := visit(t, b, "https://localhost:"+port+"/", root, results)
			t.Logf("%s %d direct: intercepted=%v reference=%q JA4 %s", b.Name, r.Browser.Major, fmtBool(r.Intercepted), r.Reference, r.JA4)
			if r.Intercepted == nil || *r.Intercepted || r.Reference == "" {
				t.Errorf("%s connecting directly judged %s: %+v", b.Version, fmtBool(r.Intercepted), r.Reasons)
			}
			if r.Browser.Major != b.Major {
				t.Errorf("User-Agent gives version %d, --version %d", r.Browser.Major, b.Major)
			}
			// With a reference that lags (uTLS parrots only, months behind
			// the packaged browser), the newer version is not convicted
			// for what it added: not intercepted, or at most unknown.
			if stale := staleVerdict(t, r); stale.Intercepted != nil && *stale.Intercepted {
				t.Errorf("%s judged intercepted by the uTLS-only reference: %+v", b.Version, stale.Reasons)
			} else {
				t.Logf("by the uTLS-only reference: %s %+v", fmtBool(stale.Intercepted), stale.Reasons)
			}

			l, err := lab.Start(lab.Config{Origin: addr, OriginRoot: root, ForgedKeyBits: 1024,
				Targets: map[string]lab.Action{"localhost": lab.Intercept}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			_, mport, _ := net.SplitHostPort(l.MiddleboxAddr)
			r = visit(t, b, "https://localhost:"+mport+"/", l.NationalRoot, results)
			t.Logf("%s behind the middlebox: intercepted=%v product=%q reasons %+v", b.Name, fmtBool(r.Intercepted), r.Product, r.Reasons)
			if r.Intercepted == nil || !*r.Intercepted {
				t.Errorf("%s behind the middlebox judged %s: %+v", b.Version, fmtBool(r.Intercepted), r.Reasons)
			}
		})
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "unknown"
	}
	if *b {
		return "intercepted"
	}
	return "not intercepted"
}

// testCA makes a root and a server certificate for localhost it issued:
// Firefox takes no self-signed server certificate as a trust anchor.
func testCA(t testing.TB) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mitmguard test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, leafKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return root, tls.Certificate{Certificate: [][]byte{leafDER, der}, PrivateKey: leafKey}
}

// staleVerdict judges the hello of r again with the reference of uTLS
// parrots only (testdata/reference-utls-only.json, as it was before the
// installed browsers were added).
func staleVerdict(t *testing.T, r *Result) *Result {
	t.Helper()
	ref, err := os.ReadFile("testdata/reference-utls-only.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(ref, browserTxt, mitmTxt, badHeaderTxt)
	if err != nil {
		t.Fatal(err)
	}
	maxVersion := r.Features.Version
	if strings.HasPrefix(r.JA4, "t13") {
		maxVersion = 0x0304
	}
	out := &Result{Browser: r.Browser, Reasons: []Reason{}}
	c.judge(out, r.Features, maxVersion, r.JA4)
	return out
}
