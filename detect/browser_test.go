package detect_test

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/detecthttp"
	"github.com/mitmguard/mitmguard/detect/internal/browser"
	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// visit opens url in the real browser (trusting root) and returns the
// verdict on its first request, as the site's middleware judged it.
func visit(t *testing.T, b *browser.Browser, url string, root *x509.Certificate, results <-chan *detect.Result) *detect.Result {
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
			results := make(chan *detect.Result, 64)
			root, cert := clienttest.CA(t)
			addr, _ := serveCert(t, detecthttp.Options{OnResult: func(r *http.Request, res *detect.Result) {
				if strings.Contains(r.UserAgent(), "Mozilla/") {
					select {
					case results <- res:
					default:
					}
				}
			}}, cert)
			_, port, _ := net.SplitHostPort(addr)
			r := visit(t, b, "https://localhost:"+port+"/", root, results)
			t.Logf("%s %d direct: intercepted=%v reference=%q JA4 %s", b.Name, r.Browser.Major, clienttest.Verdict(r.Intercepted), r.Reference, r.JA4)
			if r.Intercepted == nil || *r.Intercepted || r.Reference == "" {
				t.Errorf("%s connecting directly judged %s: %+v", b.Version, clienttest.Verdict(r.Intercepted), r.Reasons)
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
				t.Logf("by the uTLS-only reference: %s %+v", clienttest.Verdict(stale.Intercepted), stale.Reasons)
			}

			l, err := lab.Start(lab.Config{Origin: addr, OriginRoot: root, ForgedKeyBits: 1024,
				Targets: map[string]lab.Action{"localhost": lab.Intercept}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			_, mport, _ := net.SplitHostPort(l.MiddleboxAddr)
			r = visit(t, b, "https://localhost:"+mport+"/", l.NationalRoot, results)
			t.Logf("%s behind the middlebox: intercepted=%v product=%q reasons %+v", b.Name, clienttest.Verdict(r.Intercepted), r.Product, r.Reasons)
			if r.Intercepted == nil || !*r.Intercepted {
				t.Errorf("%s behind the middlebox judged %s: %+v", b.Version, clienttest.Verdict(r.Intercepted), r.Reasons)
			}
		})
	}
}

// staleVerdict judges the hello of r again with the reference of uTLS
// parrots only (testdata/reference-utls-only.json, as it was before the
// installed browsers were added).
func staleVerdict(t *testing.T, r *detect.Result) *detect.Result {
	t.Helper()
	ref, err := os.ReadFile("testdata/reference-utls-only.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := detect.CheckerWithReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return detect.JudgeAgain(c, r)
}
