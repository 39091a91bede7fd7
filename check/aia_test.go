package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/verdict"
)

// forgedServer serves, on loopback, a leaf for name issued by an
// intermediate it does not send, whose AIA extension names urls: what a
// forger that copied the real certificate's AIA URL presents.
func forgedServer(t *testing.T, name string, urls []string) (addr string, leaf chain.Chain) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
	}
	rootTmpl := ca("Forger Root", 1)
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	interDER, err := x509.CreateCertificate(rand.Reader, ca("Forger Intermediate", 2), root, &interKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IssuingCertificateURL: urls,
	}, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				c.Read(make([]byte, 1))
			}()
		}
	}()
	c, err := chain.FromDER([][]byte{leafDER})
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), c
}

// aiaServer is an AIA server on loopback that answers with h and counts
// the requests it gets.
func aiaServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// The middlebox blocks the AIA URL its forged leaf names (the download is
// cut): the verdict stays mitm.suspected, with the reason. Before, a failed
// download turned it into tls.unknown_authority: the attacker chose whether
// the check cried interception.
func TestBlockedAIAKeepsSuspicion(t *testing.T) {
	cut := func(w http.ResponseWriter, _ *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}
	srv, hits := aiaServer(t, cut)
	url := srv.URL + "/issuer.crt"
	addr, leaf := forgedServer(t, "facebook.com", []string{url})
	cl := verdict.New(verdict.Options{})
	for _, tt := range []struct {
		name   string
		online bool
		want   string // in the message
	}{
		{"download cut", true, "could not be fetched from " + url},
		{"offline", false, "not fetched: offline"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := Run(context.Background(), "facebook.com", Options{Classifier: cl, Connect: addr, Timeout: 5 * time.Second, FetchIssuers: tt.online, aiaAnyPort: true})
			if rep.Outcome != outcome.Suspected || !rep.Outcome.Intercepted() {
				t.Fatalf("outcome %s (%s), want %s", rep.Outcome, rep.Message, outcome.Suspected)
			}
			if !strings.Contains(rep.Message, tt.want) || !strings.Contains(rep.Error, url) || rep.Issuer != "CN=Forger Intermediate" {
				t.Errorf("message %q error %q issuer %q", rep.Message, rep.Error, rep.Issuer)
			}
		})
	}
	if hits.Load() != 1 {
		t.Errorf("AIA server saw %d requests, want 1 (online only)", hits.Load())
	}
	// The same chain from a file, offline (check --chain): suspected too.
	rep := FromChain(context.Background(), leaf, "facebook.com", cl)
	if rep.Outcome != outcome.Suspected || !strings.Contains(rep.Message, "not fetched: offline") {
		t.Errorf("from a file: %s (%s)", rep.Outcome, rep.Message)
	}
	// A private name with a missing issuer is not evidence of interception.
	addr, _ = forgedServer(t, "nas.internal", []string{url})
	rep = Run(context.Background(), "nas.internal", Options{Classifier: cl, Connect: addr, Timeout: 5 * time.Second, FetchIssuers: true, aiaAnyPort: true})
	if rep.Outcome != outcome.UnknownAuthority {
		t.Errorf("private name: %s (%s)", rep.Outcome, rep.Message)
	}
}

// A leaf naming 30 AIA URLs that stall: the whole check ends within its
// timeout (bounded generously at three times it), and a leaf naming 30 URLs
// that fail at once costs at most maxAIAURLs downloads. Before, each URL got
// the full timeout, one after another.
func TestAIABoundedByTimeout(t *testing.T) {
	release := make(chan struct{})
	stall, stalled := aiaServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	notFound, failed := aiaServer(t, http.NotFound)
	urls := func(base string) []string {
		var u []string
		for i := range 30 {
			u = append(u, fmt.Sprintf("%s/issuer-%d.crt", base, i))
		}
		return u
	}
	cl := verdict.New(verdict.Options{})

	const timeout = time.Second
	addr, _ := forgedServer(t, "facebook.com", urls(stall.URL))
	start := time.Now()
	rep := Run(context.Background(), "facebook.com", Options{Classifier: cl, Connect: addr, Timeout: timeout, FetchIssuers: true, aiaAnyPort: true})
	took := time.Since(start)
	t.Logf("30 stalling AIA URLs under a %v timeout: the check took %v", timeout, took)
	if took > 3*timeout {
		t.Errorf("check took %v under a %v timeout", took, timeout)
	}
	if rep.Outcome != outcome.Suspected {
		t.Errorf("stalled AIA: %s (%s)", rep.Outcome, rep.Message)
	}
	if n := stalled.Load(); n > verdict.MaxAIAURLs {
		t.Errorf("%d stalling URLs tried", n)
	}

	addr, _ = forgedServer(t, "facebook.com", urls(notFound.URL))
	rep = Run(context.Background(), "facebook.com", Options{Classifier: cl, Connect: addr, Timeout: 5 * time.Second, FetchIssuers: true, aiaAnyPort: true})
	if n := failed.Load(); n == 0 || n > verdict.MaxAIAURLs {
		t.Errorf("%d of 30 failing URLs tried, want 1-%d", n, verdict.MaxAIAURLs)
	}
	if rep.Outcome != outcome.Suspected || !strings.Contains(rep.Message, "404") {
		t.Errorf("failing AIA: %s (%s)", rep.Outcome, rep.Message)
	}
}

// The fetcher follows only http(s) on port 80 or 443, and never goes to a
// loopback, private or reserved address for a public target: refused
// before any connection, and, for a name, on the address it resolves to.
func TestAIAFetchPolicy(t *testing.T) {
	srv, hits := aiaServer(t, http.NotFound)
	public := newAIAFetcher(netip.MustParseAddr("203.0.113.7"), true)
	for _, u := range []string{
		srv.URL + "/issuer.crt",        // loopback, for a public target
		"ftp://203.0.113.9/issuer.crt", // not http(s)
		"http://203.0.113.9:8080/x",    // another port
		"https://203.0.113.9:22/x",
		"http://10.1.2.3/x",
		"http://192.168.1.1/x",
		"http://169.254.169.254/latest/meta-data",
		"http://100.64.0.1/x",
		"http://[::1]/x",
		"http://[fe80::1]/x",
		"http://[::ffff:127.0.0.1]/x",
		"http://0.0.0.0/x",
		"http://user:pw@203.0.113.9/x",
		"http://localhost/x", // a name resolving to loopback: refused when dialed
	} {
		_, err := public.fetch(context.Background(), u)
		var re *AIARefusedError
		if !errors.As(err, &re) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	// For a target on loopback, loopback is allowed, but the port only by
	// the tests' knob.
	local := newAIAFetcher(netip.MustParseAddr("127.0.0.1"), false)
	var re *AIARefusedError
	if _, err := local.fetch(context.Background(), srv.URL+"/x"); !errors.As(err, &re) || !strings.Contains(err.Error(), "port") {
		t.Errorf("loopback on port %s: %v", srv.URL, err)
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests reached the server", hits.Load())
	}
	knob := newAIAFetcher(netip.MustParseAddr("127.0.0.1"), true)
	if _, err := knob.fetch(context.Background(), srv.URL+"/x"); err == nil || errors.As(err, &re) || hits.Load() != 1 {
		t.Errorf("test knob: %v, %d requests", err, hits.Load())
	}
}

// A download follows at most maxAIARedirects redirects, each checked as
// the first URL (a redirect carrying credentials is refused), and reads at
// most maxAIABytes: a certificate past that bound is not reached.
func TestAIARedirectsAndSize(t *testing.T) {
	_, leaf := forgedServer(t, "aia.test", nil) // any certificate will do
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf[0].DER})
	var srv *httptest.Server
	srv, hits := aiaServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/creds":
			http.Redirect(w, r, strings.Replace(srv.URL, "http://", "http://user:pw@", 1)+"/ok", http.StatusFound)
		case "/ok":
			w.Write(pemCert)
		case "/big", "/big-chunked":
			if r.URL.Path == "/big" {
				w.Header().Set("Content-Length", fmt.Sprint(maxAIABytes+len(pemCert))) // refused on the header
			} else {
				w.(http.Flusher).Flush() // no Content-Length: the size shows only as the body comes
			}
			w.Write([]byte(strings.Repeat("\n", maxAIABytes))) // padding, then the certificate
			w.Write(pemCert)
		case "/redirect-big":
			http.Redirect(w, r, "/big", http.StatusFound)
		case "/limit":
			w.Write([]byte(strings.Repeat("\n", maxAIABytes-len(pemCert)))) // exactly maxAIABytes
			w.Write(pemCert)
		}
	})
	f := newAIAFetcher(netip.MustParseAddr("127.0.0.1"), true)
	ctx := context.Background()
	if c, err := f.fetch(ctx, srv.URL+"/ok"); err != nil || c == nil {
		t.Fatalf("a plain download: %v", err)
	}
	hits.Store(0)
	if _, err := f.fetch(ctx, srv.URL+"/loop"); err == nil || hits.Load() != maxAIARedirects+1 {
		t.Errorf("a redirect loop: %v after %d requests, want an error after %d", err, hits.Load(), maxAIARedirects+1)
	}
	hits.Store(0)
	var re *AIARefusedError
	if _, err := f.fetch(ctx, srv.URL+"/creds"); !errors.As(err, &re) || hits.Load() != 1 {
		t.Errorf("a redirect to a URL with credentials: %v after %d requests, want refused after 1", err, hits.Load())
	}
	// Past the bound: a typed error naming where the body came from and the
	// bound, not a parse error about a cut certificate.
	for path, from := range map[string]string{"/big": "/big", "/big-chunked": "/big-chunked", "/redirect-big": "/big"} {
		var tl *AIATooLargeError
		if _, err := f.fetch(ctx, srv.URL+path); !errors.As(err, &tl) || tl.URL != srv.URL+from || tl.Limit != maxAIABytes ||
			!strings.Contains(err.Error(), fmt.Sprint(maxAIABytes)) {
			t.Errorf("%s: %v, want an *AIATooLargeError for %s, limit %d", path, err, srv.URL+from, maxAIABytes)
		}
	}
	if c, err := f.fetch(ctx, srv.URL+"/limit"); err != nil || c == nil {
		t.Errorf("a certificate that ends at maxAIABytes: %v", err)
	}
}

// An oversized issuer download leaves the verdict mitm.suspected, with the
// issuer unavailable and the reason, URL and bound, in the message.
func TestOversizedAIAKeepsSuspicion(t *testing.T) {
	srv, _ := aiaServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 2*maxAIABytes))
	})
	url := srv.URL + "/issuer.crt"
	addr, _ := forgedServer(t, "facebook.com", []string{url})
	rep := Run(context.Background(), "facebook.com", Options{Classifier: verdict.New(verdict.Options{}), Connect: addr, Timeout: 5 * time.Second, FetchIssuers: true, aiaAnyPort: true})
	if rep.Outcome != outcome.Suspected {
		t.Fatalf("outcome %s (%s), want %s", rep.Outcome, rep.Message, outcome.Suspected)
	}
	if want := fmt.Sprintf("longer than %d bytes", maxAIABytes); !strings.Contains(rep.Message, want) || !strings.Contains(rep.Message, url) || rep.Issuer != "CN=Forger Intermediate" {
		t.Errorf("message %q issuer %q: want the URL and %q", rep.Message, rep.Issuer, want)
	}
}

// The zero Options.Timeout is a bound too (probe.DefaultTimeout), not "no
// bound": a library caller that passes a context without a deadline must
// not be held for ever by issuer URLs that never answer.
func TestZeroTimeoutStillBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stall, _ := aiaServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	addr, _ := forgedServer(t, "facebook.com", []string{stall.URL + "/issuer.crt"})
	start := time.Now()
	rep := Run(context.Background(), "facebook.com", Options{Classifier: verdict.New(verdict.Options{}), Connect: addr, FetchIssuers: true, aiaAnyPort: true})
	if took := time.Since(start); took > 3*probe.DefaultTimeout {
		t.Errorf("check with the zero timeout took %v", took)
	}
	if rep.Outcome != outcome.Suspected {
		t.Errorf("stalled AIA with the zero timeout: %s (%s)", rep.Outcome, rep.Message)
	}
}
