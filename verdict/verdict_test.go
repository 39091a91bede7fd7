package verdict

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
)

var googleTime = time.Unix(1677615892, 0)

func readChain(t testing.TB, path string) chain.Chain {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.ParsePEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every real interception certificate that browsers block is classified
// mitm.known with its own entry id, offline, including DSDTestProvider
// whose negative serial Go's parser refuses.
func TestRealBlockedCertificatesAreKnown(t *testing.T) {
	files, err := filepath.Glob("../blocklist/testdata/chromium/*.pem")
	if err != nil || len(files) != 15 {
		t.Fatalf("want 15 certificates, got %d (%v)", len(files), err)
	}
	cl := New(Options{})
	list := blocklist.Embedded()
	for _, f := range files {
		c := readChain(t, f)
		spki, _ := chain.ParseHash(strings.TrimSuffix(filepath.Base(f), ".pem"))
		e := list.Lookup(spki)
		if e == nil {
			t.Errorf("%s: no embedded entry", f)
			continue
		}
		for _, name := range []string{"facebook.com", ""} {
			r := cl.Classify(context.Background(), c, name)
			if r.Outcome != outcome.Known(e.ID) {
				t.Errorf("%s (%q): outcome %s, want %s", e.ID, name, r.Outcome, outcome.Known(e.ID))
			}
			if r.Entry == nil || r.Entry.ID != e.ID || !strings.Contains(r.Message, "intercepted") {
				t.Errorf("%s: entry %+v message %q", e.ID, r.Entry, r.Message)
			}
			if len(r.Presented) != 1 {
				t.Errorf("%s: presented chain not kept", e.ID)
			}
		}
	}
}

func TestPublicChain(t *testing.T) {
	full := readChain(t, "testdata/go-x509/www.google.com-2023.pem")
	leafOnly := readChain(t, "testdata/go-x509/www.google.com-2023-leaf-only.pem")
	tests := []struct {
		name  string
		chain chain.Chain
		host  string
		at    time.Time
		want  outcome.Outcome
	}{
		{"valid at its date", full, "www.google.com", googleTime, outcome.OK},
		{"no name given", full, "", googleTime, outcome.OK},
		{"expired today", full, "www.google.com", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), outcome.Expired},
		{"not yet valid", full, "www.google.com", time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), outcome.Expired},
		{"other name", full, "www.facebook.com", googleTime, outcome.InvalidHostname},
		// Offline, a leaf without its intermediate cannot be told apart from
		// a forger that blocks the AIA download: suspicion stays.
		{"missing intermediate offline", leafOnly, "www.google.com", googleTime, outcome.Suspected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{Time: tt.at}).Classify(context.Background(), tt.chain, tt.host)
			if r.Outcome != tt.want {
				t.Fatalf("outcome %s (%s), want %s", r.Outcome, r.Message, tt.want)
			}
			if tt.want == outcome.OK {
				if len(r.Built) != 3 || r.Built[2].Subject.CommonName != "GTS Root R1" {
					t.Errorf("built chain %v", r.Built)
				}
			}
			if r.Message == "" {
				t.Error("no message")
			}
		})
	}
}

// A blocked root given as an extra public root (or trusted locally) still
// makes the chain mitm.known: the blocklist outranks trust.
func TestBlockedEvenWhenTrusted(t *testing.T) {
	full := readChain(t, "testdata/go-x509/www.google.com-2023.pem")
	// Block the GTS CA 1C3 key: the chain now runs through a blocked key.
	list, err := blocklist.FromPEM([]byte(full[1].PEM()), "test")
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Time: googleTime, Blocklist: list}).Classify(context.Background(), full, "www.google.com")
	if !r.Outcome.Intercepted() || r.Entry == nil || r.Entry.Completed {
		t.Fatalf("got %s %+v", r.Outcome, r.Entry)
	}
	// When the blocked issuer is not sent, it is found as the signer of the
	// leaf (the 2019 box never sent its root).
	leaf := full[:1]
	r = New(Options{Time: googleTime, Blocklist: list}).Classify(context.Background(), leaf, "www.google.com")
	if r.Outcome != outcome.Known(list.Entries()[0].ID) || !r.Entry.Completed || len(r.Built) != 2 {
		t.Fatalf("completion: got %s %+v built %d", r.Outcome, r.Entry, len(r.Built))
	}
}

func TestEmptyAndUnparsable(t *testing.T) {
	cl := New(Options{})
	if r := cl.Classify(context.Background(), nil, "x.com"); r.Outcome != outcome.Invalid {
		t.Errorf("empty chain: %s", r.Outcome)
	}
	// A leaf crypto/x509 refuses (DSDTestProvider's negative serial), with a
	// list that does not block it: broken, the chain kept, no panic.
	c := readChain(t, "../blocklist/testdata/chromium/130ad4e0633521290531b6651f5759b0bc7bc656709ff8f365c2143b0389b6f6.pem")
	empty, err := blocklist.New(nil, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Blocklist: empty}).Classify(context.Background(), c, "dell.com")
	if r.Outcome != outcome.Invalid || len(r.Presented) != 1 || !strings.Contains(r.Message, "cannot be parsed") {
		t.Errorf("unparsable leaf: %s %q", r.Outcome, r.Message)
	}
}

func TestIsPublicName(t *testing.T) {
	for name, want := range map[string]bool{
		"facebook.com": true, "www.bbc.co.uk": true, "user.github.io": true, "Mail.RU.": true, "*.google.com": true,
		"localhost": false, "printer.local": false, "db.internal": false, "127.0.0.1": false, "::1": false,
		"co.uk": false, "com": false, "": false, "router.home.arpa": false, "foo.notatld": false, "a.test": false,
	} {
		if got := IsPublicName(name); got != want {
			t.Errorf("IsPublicName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSelfSigned(t *testing.T) {
	tests := []struct {
		certNames []string
		host      string
		want      outcome.Outcome
	}{
		{[]string{"facebook.com"}, "facebook.com", outcome.Suspected},               // forged for a public name
		{[]string{"nas.local"}, "nas.local", outcome.UnknownAuthority},              // private name, private CA
		{[]string{"printer.example.net"}, "facebook.com", outcome.UnknownAuthority}, // not for this name
	}
	for _, tt := range tests {
		c := selfSigned(t, tt.certNames)
		r := New(Options{}).Classify(context.Background(), c, tt.host)
		if r.Outcome != tt.want {
			t.Errorf("%v for %s: %s (%s), want %s", tt.certNames, tt.host, r.Outcome, r.Message, tt.want)
		}
		if tt.want == outcome.Suspected && !strings.Contains(r.Issuer, tt.certNames[0]) {
			t.Errorf("suspected verdict does not keep the issuer: %q", r.Issuer)
		}
		// Trusted by this device: still not ok, and the verdict says so.
		local := x509.NewCertPool()
		local.AddCert(c[0].X509)
		r = New(Options{LocalRoots: local}).Classify(context.Background(), c, tt.host)
		if tt.want == outcome.Suspected && (r.Outcome != outcome.Suspected || !r.TrustedLocally) {
			t.Errorf("locally trusted: %s trusted=%v", r.Outcome, r.TrustedLocally)
		}
	}
}

func selfSigned(t *testing.T, names []string) chain.Chain {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.FromDER([][]byte{der})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A fetcher that fails (the forger blocks the download) leaves the verdict
// mitm.suspected with an *IssuerUnavailableError naming the URL; a leaf
// naming many AIA URLs costs at most MaxAIAURLs fetches; a fetched
// certificate that did not sign the leaf completes nothing.
func TestFailedAIAKeepsSuspicion(t *testing.T) {
	leafOnly := readChain(t, "testdata/go-x509/www.google.com-2023-leaf-only.pem")
	full := readChain(t, "testdata/go-x509/www.google.com-2023.pem")
	blocked := errors.New("connection reset by the middlebox")
	calls := 0
	fail := func(context.Context, string) (*x509.Certificate, error) { calls++; return nil, blocked }
	r := New(Options{Time: googleTime, FetchIssuer: fail}).Classify(context.Background(), leafOnly, "www.google.com")
	var ie *IssuerUnavailableError
	if r.Outcome != outcome.Suspected || !errors.As(r.Err, &ie) || !errors.Is(r.Err, blocked) || ie.URL != leafOnly[0].X509.IssuingCertificateURL[0] {
		t.Fatalf("blocked AIA: %s %v (%s)", r.Outcome, r.Err, r.Message)
	}
	if !strings.Contains(r.Message, "could not be fetched from "+ie.URL) || calls != 1 {
		t.Errorf("message %q, %d calls", r.Message, calls)
	}
	// The right issuer fetched: ok, with the matched name.
	good := func(context.Context, string) (*x509.Certificate, error) { return full[1].X509, nil }
	r = New(Options{Time: googleTime, FetchIssuer: good}).Classify(context.Background(), leafOnly, "www.google.com")
	if r.Outcome != outcome.OK || r.FetchedIssuers != 1 || r.MatchedName != "www.google.com" {
		t.Errorf("fetched issuer: %s fetched %d matched %q", r.Outcome, r.FetchedIssuers, r.MatchedName)
	}
	// A forged leaf naming 30 URLs.
	c := selfSigned(t, []string{"facebook.com"})
	forged := *c[0].X509
	for i := range 30 {
		forged.IssuingCertificateURL = append(forged.IssuingCertificateURL, fmt.Sprintf("http://aia%d.example.net/ca.crt", i))
	}
	calls = 0
	cc := chain.Chain{chain.FromX509(&forged)}
	r = New(Options{FetchIssuer: fail}).Classify(context.Background(), cc, "facebook.com")
	if r.Outcome != outcome.Suspected || calls != MaxAIAURLs {
		t.Errorf("30 URLs: %s, %d fetches, want %d", r.Outcome, calls, MaxAIAURLs)
	}
}
