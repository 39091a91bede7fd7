// Package storetest is the behaviour every store backend must show, as a
// test suite: the SQLite store runs it, and so must any other backend
// (PostgreSQL). Run it from a backend's tests with a function that opens a
// new, empty store.
package storetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// Run runs the suite; open returns a new, empty store (closed by the suite).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Campaigns", campaigns},
		{"RoundTrip", roundTrip},
		{"CertsOnce", certsOnce},
		{"HostDonePerVantage", hostDonePerVantage},
		{"RewriteKeepsFirst", rewriteKeepsFirst},
		{"CampaignsApart", campaignsApart},
		{"ConcurrentWrites", concurrentWrites},
		{"Traces", traces},
		{"Vantages", vantages},
		{"VantagesRace", vantagesRace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			defer st.Close()
			tc.fn(t, st)
		})
	}
}

var ctx = context.Background()

func newCampaign(t *testing.T, st store.Store, id string, started time.Time) *store.Campaign {
	t.Helper()
	c := &store.Campaign{ID: id, Started: started, Params: `{"domains":["a.example"]}`}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func campaigns(t *testing.T, st store.Store) {
	if _, err := st.Campaign(ctx, ""); !errors.Is(err, store.ErrNoCampaign) {
		t.Fatalf("newest of none: %v", err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	newCampaign(t, st, "b", t0)
	newCampaign(t, st, "a", t0.Add(time.Hour))
	if err := st.CreateCampaign(ctx, &store.Campaign{ID: "a", Started: t0, Params: "{}"}); err == nil {
		t.Error("a second campaign with the same ID was accepted")
	}
	c, err := st.Campaign(ctx, "")
	if err != nil || c.ID != "a" || !c.Started.Equal(t0.Add(time.Hour)) {
		t.Fatalf("newest: %+v %v", c, err)
	}
	c, err = st.Campaign(ctx, "b")
	if err != nil || c.ID != "b" || c.Params != `{"domains":["a.example"]}` || !c.Started.Equal(t0) {
		t.Fatalf("by ID: %+v %v", c, err)
	}
	if _, err := st.Campaign(ctx, "nope"); !errors.Is(err, store.ErrNoCampaign) {
		t.Errorf("unknown: %v", err)
	}
	all, err := st.Campaigns(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "b" || all[1].ID != "a" {
		t.Fatalf("campaigns: %v %v", all, err)
	}
}

// Cert makes a small self-signed certificate (DER) named cn.
func Cert(t testing.TB, cn string) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func hash(der []byte) chain.Hash { return chain.Hash(sha256.Sum256(der)) }

// host builds a host's results: one record per SNI, the first intercepted.
func host(vantage, addr string, snis []string, ctl, forged []byte) *measure.HostResult {
	hr := &measure.HostResult{
		Control: measure.Control{Vantage: vantage, Host: addr, SNI: "ctl.control.mitmguard.invalid", Outcome: outcome.OK, Chain: []chain.Hash{hash(ctl)}},
		Certs:   [][]byte{ctl, forged},
	}
	for i, sni := range snis {
		r := measure.Record{Vantage: vantage, Host: addr, SNI: sni, Outcome: outcome.OK, Time: time.UnixMilli(1764072000123 + int64(i)).UTC(),
			Chain: []chain.Hash{hash(ctl)}, Attempts: 1, MS: 1.5}
		if i == 0 {
			r.Outcome, r.Chain, r.Attempts = outcome.Suspected, []chain.Hash{hash(forged), hash(ctl)}, 2
			r.Traits, r.Issuer, r.Error = []string{"copied-names", "rsa-e3"}, "CN=national root", ""
		}
		hr.Records = append(hr.Records, r)
	}
	return hr
}

func records(t *testing.T, st store.Store, c *store.Campaign) ([]measure.Record, []measure.Control) {
	t.Helper()
	var rs []measure.Record
	var cs []measure.Control
	if err := st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		rs = append(rs, r)
		cs = append(cs, ctl)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rs, cs
}

func roundTrip(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "rt", time.Now())
	ctl, forged := Cert(t, "real"), Cert(t, "forged")
	snis := []string{"b.example", "a.example"}
	in := []*measure.HostResult{
		host("local", "127.0.0.2:443", snis, ctl, forged),
		host("kz-almaty", "127.0.0.1:443", snis, ctl, forged),
		host("", "127.0.0.1:443", snis, ctl, forged), // no vantage: local
	}
	in[1].Records[1].Error = "the control failed too"
	in[1].Records[1].Outcome = outcome.ErrorControl
	if _, err := st.Write(ctx, c, in); err != nil {
		t.Fatal(err)
	}
	rs, cs := records(t, st, c)
	var keys []string
	for _, r := range rs {
		keys = append(keys, r.Vantage+" "+r.Host+" "+r.SNI)
	}
	want := []string{"kz-almaty 127.0.0.1:443 a.example", "kz-almaty 127.0.0.1:443 b.example",
		"local 127.0.0.1:443 a.example", "local 127.0.0.1:443 b.example", "local 127.0.0.2:443 a.example", "local 127.0.0.2:443 b.example"}
	if !slices.Equal(keys, want) {
		t.Fatalf("records in order\n%q, want\n%q", keys, want)
	}
	// Every field comes back as written.
	got := rs[1] // kz-almaty b.example: the intercepted one
	w := in[1].Records[0]
	if got.Outcome != w.Outcome || !got.Time.Equal(w.Time) || !slices.Equal(got.Chain, w.Chain) || got.Attempts != 2 ||
		!slices.Equal(got.Traits, w.Traits) || got.Issuer != w.Issuer || got.MS != 1.5 {
		t.Errorf("record\n%+v, want\n%+v", got, w)
	}
	if rs[0].Outcome != outcome.ErrorControl || rs[0].Error != "the control failed too" || rs[0].Traits != nil {
		t.Errorf("record %+v", rs[0])
	}
	for i, ct := range cs {
		if ct.Vantage != rs[i].Vantage || ct.Host != rs[i].Host || ct.SNI != "ctl.control.mitmguard.invalid" || ct.Outcome != outcome.OK ||
			!slices.Equal(ct.Chain, []chain.Hash{hash(ctl)}) {
			t.Errorf("control %+v of %+v", ct, rs[i])
		}
	}
	if n, err := st.Count(ctx, c); err != nil || n != 6 {
		t.Errorf("count %d %v", n, err)
	}
	counts, err := st.OutcomeCounts(ctx, c)
	if err != nil || counts[outcome.Suspected] != 3 || counts[outcome.OK] != 2 || counts[outcome.ErrorControl] != 1 || len(counts) != 3 {
		t.Errorf("outcome counts %v %v", counts, err)
	}
	vcounts, err := st.VantageCounts(ctx, c)
	if err != nil || vcounts["local"] != 4 || vcounts["kz-almaty"] != 2 || len(vcounts) != 2 {
		t.Errorf("vantage counts %v %v", vcounts, err)
	}
}

func certsOnce(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "certs", time.Now())
	ctl, forged := Cert(t, "real"), Cert(t, "forged")
	newCerts, err := st.Write(ctx, c, []*measure.HostResult{host("local", "127.0.0.1:443", []string{"a.example"}, ctl, forged)})
	if err != nil || len(newCerts) != 2 {
		t.Fatalf("first write: %d new certificates, %v", len(newCerts), err)
	}
	newCerts, err = st.Write(ctx, c, []*measure.HostResult{host("local", "127.0.0.2:443", []string{"a.example"}, ctl, forged)})
	if err != nil || len(newCerts) != 0 {
		t.Fatalf("second write: %d new certificates, %v", len(newCerts), err)
	}
	for _, der := range [][]byte{ctl, forged} {
		got, err := st.Cert(ctx, hash(der))
		if err != nil || !slices.Equal(got, der) {
			t.Errorf("cert: %v", err)
		}
	}
	if _, err := st.Cert(ctx, hash([]byte("none"))); err == nil {
		t.Error("an unknown certificate was found")
	}
}

func hostDonePerVantage(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "done", time.Now())
	ctl, forged := Cert(t, "real"), Cert(t, "forged")
	if _, err := st.Write(ctx, c, []*measure.HostResult{host("a", "127.0.0.1:443", []string{"x.example"}, ctl, forged)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vantage, host string
		want          bool
	}{{"a", "127.0.0.1:443", true}, {"b", "127.0.0.1:443", false}, {"a", "127.0.0.2:443", false}} {
		if got, err := st.HostDone(ctx, c, tc.vantage, tc.host); err != nil || got != tc.want {
			t.Errorf("HostDone(%s, %s) = %v, %v", tc.vantage, tc.host, got, err)
		}
	}
}

// A host written twice (a redelivered job, a resumed run racing another)
// keeps its first results and gains no record.
func rewriteKeepsFirst(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "twice", time.Now())
	ctl, forged := Cert(t, "real"), Cert(t, "forged")
	first := host("local", "127.0.0.1:443", []string{"a.example", "b.example"}, ctl, forged)
	if _, err := st.Write(ctx, c, []*measure.HostResult{first}); err != nil {
		t.Fatal(err)
	}
	again := host("local", "127.0.0.1:443", []string{"a.example", "b.example", "c.example"}, ctl, forged)
	again.Records[0].Outcome = outcome.OK
	if _, err := st.Write(ctx, c, []*measure.HostResult{again}); err != nil {
		t.Fatal(err)
	}
	rs, _ := records(t, st, c)
	if len(rs) != 2 || rs[0].Outcome != outcome.Suspected {
		t.Fatalf("after a second write: %+v", rs)
	}
}

func campaignsApart(t *testing.T, st store.Store) {
	ctl, forged := Cert(t, "real"), Cert(t, "forged")
	c1 := newCampaign(t, st, "one", time.Now())
	c2 := newCampaign(t, st, "two", time.Now())
	if _, err := st.Write(ctx, c1, []*measure.HostResult{host("local", "127.0.0.1:443", []string{"a.example", "b.example"}, ctl, forged)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(ctx, c2, []*measure.HostResult{host("local", "127.0.0.1:443", []string{"a.example"}, ctl, forged)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Count(ctx, c1); n != 2 {
		t.Errorf("campaign one: %d records", n)
	}
	if rs, _ := records(t, st, c2); len(rs) != 1 {
		t.Errorf("campaign two: %d records", len(rs))
	}
	if done, _ := st.HostDone(ctx, c2, "local", "127.0.0.2:443"); done {
		t.Error("a host of no campaign is done")
	}
}

func concurrentWrites(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "parallel", time.Now())
	ctl, forged := Cert(t, "real"), Cert(t, "forged")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				hr := host("local", fmt.Sprintf("127.0.%d.%d:443", w, i), []string{"a.example", "b.example"}, ctl, forged)
				if _, err := st.Write(ctx, c, []*measure.HostResult{hr}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := st.Count(ctx, c); err != nil || n != 160 {
		t.Fatalf("%d records, %v", n, err)
	}
}
