package propose

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, cn string) *ca {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{c, key}
}

func (c *ca) leaf(t *testing.T, names ...string) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func hashes(ders ...[]byte) []chain.Hash {
	var hs []chain.Hash
	for _, d := range ders {
		c, _ := chain.NewCert(d)
		hs = append(hs, c.SHA256)
	}
	return hs
}

// hostResult is a host whose control chain is own (signed by ownCA) and
// whose records for domains are signed by forger, all mitm.suspected.
func hostResult(t *testing.T, host string, ownCA, forger *ca, domains []string) *measure.HostResult {
	own := ownCA.leaf(t, host)
	r := &measure.HostResult{Control: measure.Control{Vantage: "local", Host: host, SNI: "control.invalid", Outcome: outcome.OK, Chain: hashes(own, ownCA.cert.Raw)},
		Certs: [][]byte{own, ownCA.cert.Raw, forger.cert.Raw}}
	for _, d := range domains {
		forged := forger.leaf(t, d)
		r.Certs = append(r.Certs, forged)
		r.Records = append(r.Records, measure.Record{Vantage: "local", Host: host, SNI: d, Outcome: outcome.Suspected, Time: time.Now(),
			Chain: hashes(forged, forger.cert.Raw), Attempts: 1, Traits: []string{"validity-shifted"}})
	}
	return r
}

func campaign(t *testing.T, results ...*measure.HostResult) store.Store {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &store.Campaign{ID: "c", Started: time.Now(), Params: "{}"}
	ctx := context.Background()
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(ctx, c, results); err != nil {
		t.Fatal(err)
	}
	return st
}

var domains = []string{"facebook.com", "google.com", "vk.com", "mail.ru"}

// A self-hosted CA that issues its hosts' own certificates is never
// proposed, even when its records are suspected on many hosts for many
// names; a forger that issues none of them is.
func TestSelfHostedCANeverProposed(t *testing.T) {
	public, intranet, forger := newCA(t, "public"), newCA(t, "intranet CA"), newCA(t, "national root")
	var results []*measure.HostResult
	for i := range 3 {
		results = append(results, hostResult(t, fmt.Sprintf("10.0.0.%d:443", i+1), intranet, intranet, domains))
		results = append(results, hostResult(t, fmt.Sprintf("10.0.1.%d:443", i+1), public, forger, domains))
	}
	st := campaign(t, results...)
	pool := x509.NewCertPool()
	pool.AddCert(public.cert)
	res, err := Find(context.Background(), st, "", Options{Public: pool})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) != 1 || res.Proposals[0].Subject != "CN=national root" {
		t.Fatalf("proposals %+v", res.Proposals)
	}
	p := res.Proposals[0]
	if len(p.Hosts) != 3 || len(p.Domains) != len(domains) || p.Records != 3*len(domains) || len(p.Examples) != MaxExamples {
		t.Errorf("evidence: %d hosts, %d domains, %d records, %d examples", len(p.Hosts), len(p.Domains), p.Records, len(p.Examples))
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Subject != "CN=intranet CA" {
		t.Errorf("rejected %+v", res.Rejected)
	}
	if _, err := Blocklist(res.Proposals, time.Now()); err != nil {
		t.Error(err)
	}
}

// A forger seen on one host only, or chaining to a public root, is never
// proposed; --min-domains is honoured.
func TestThresholdsAndPublicRoots(t *testing.T) {
	public, forger := newCA(t, "public"), newCA(t, "forger")
	st := campaign(t, hostResult(t, "10.0.0.1:443", public, forger, domains))
	res, err := Find(context.Background(), st, "", Options{MinHosts: 1})
	if err != nil || len(res.Proposals) != 0 {
		t.Fatalf("one host: %v %+v", err, res.Proposals)
	}
	st = campaign(t, hostResult(t, "10.0.0.1:443", public, forger, domains), hostResult(t, "10.0.0.2:443", public, forger, domains))
	for _, tc := range []struct {
		opts Options
		want int
	}{
		{Options{Public: x509.NewCertPool()}, 1},
		{Options{Public: x509.NewCertPool(), MinDomains: len(domains) + 1}, 0},
		{Options{Public: poolOf(forger.cert)}, 0},
	} {
		res, err := Find(context.Background(), st, "", tc.opts)
		if err != nil || len(res.Proposals) != tc.want {
			t.Errorf("%+v: %v %d proposals, want %d (rejected %+v)", tc.opts, err, len(res.Proposals), tc.want, res.Rejected)
		}
	}
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}
