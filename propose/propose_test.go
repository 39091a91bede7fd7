package propose

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
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

func newCA(t *testing.T, cn string) *ca { return issueCA(t, cn, nil, nil) }

// sub makes an intermediate CA under c.
func (c *ca) sub(t testing.TB, cn string) *ca { return issueCA(t, cn, c, nil) }

// issueCA makes a CA signed by parent (self-signed when nil), with the
// given subject key id (Go's own when nil).
func issueCA(t testing.TB, cn string, parent *ca, ski []byte) *ca {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), SubjectKeyId: ski}
	signer, signerCert := any(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{c, key}
}

func (c *ca) leaf(t testing.TB, names ...string) []byte {
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
// whose records for domains are signed by forger, all mitm.suspected; the
// forged chains carry forger's certificate, then the certificates above.
func hostResult(t *testing.T, host string, ownCA, forger *ca, domains []string, above ...*ca) *measure.HostResult {
	own := ownCA.leaf(t, host)
	r := &measure.HostResult{Control: measure.Control{Vantage: "local", Host: host, SNI: "control.invalid", Outcome: outcome.OK, Chain: hashes(own, ownCA.cert.Raw)},
		Certs: [][]byte{own, ownCA.cert.Raw, forger.cert.Raw}}
	sent := [][]byte{forger.cert.Raw}
	for _, a := range above {
		sent = append(sent, a.cert.Raw)
		r.Certs = append(r.Certs, a.cert.Raw)
	}
	for _, d := range domains {
		forged := forger.leaf(t, d)
		r.Certs = append(r.Certs, forged)
		r.Records = append(r.Records, measure.Record{Vantage: "local", Host: host, SNI: d, Outcome: outcome.Suspected, Time: time.Now(),
			Chain: hashes(append([][]byte{forged}, sent...)...), Attempts: 1, Traits: []string{"validity-shifted"}})
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

// A box that sends the national root on one host only is enough: every
// chain that leads to the root, sent or not, is attributed to it, and the
// one proposal names the root's key, with the intermediate as evidence.
// Proposing the intermediate instead would miss the next intermediate the
// same root signs, and an audit of a store holding only the root.
func TestRootNamedWhenAnyHostSendsIt(t *testing.T) {
	public, root := newCA(t, "public"), newCA(t, "national root")
	inter := root.sub(t, "Security Certificate")
	// The host that sends the root is met last: attribution does not depend
	// on the order of the records.
	st := campaign(t,
		hostResult(t, "10.0.1.1:443", public, inter, domains),
		hostResult(t, "10.0.1.2:443", public, inter, domains),
		hostResult(t, "10.0.1.3:443", public, inter, domains[:2], root))
	res, err := Find(context.Background(), st, "", Options{Public: poolOf(public.cert)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) != 1 || len(res.Rejected) != 0 {
		t.Fatalf("proposals %+v, rejected %+v", res.Proposals, res.Rejected)
	}
	p := res.Proposals[0]
	if p.SPKISHA256 != spkiOf(root) || p.Subject != "CN=national root" || !p.RootSent || !p.SelfSigned {
		t.Errorf("proposed %s (%s), root sent %v", p.Subject, p.SPKISHA256, p.RootSent)
	}
	if len(p.Hosts) != 3 || len(p.Domains) != len(domains) || p.Records != 2*len(domains)+2 || len(p.Examples) != MaxExamples {
		t.Errorf("evidence: %d hosts, %d domains, %d records, %d examples", len(p.Hosts), len(p.Domains), p.Records, len(p.Examples))
	}
	if len(p.Intermediates) != 1 || p.Intermediates[0].SPKISHA256 != spkiOf(inter) {
		t.Errorf("intermediates %+v", p.Intermediates)
	}
	if !slices.ContainsFunc(p.Reasons, func(r string) bool { return strings.Contains(r, "sent by 1 of the 3 hosts") }) {
		t.Errorf("reasons %q", p.Reasons)
	}
	list, err := Blocklist(res.Proposals, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if m := list.MatchX509([]*x509.Certificate{inter.cert}); m == nil || !m.Completed {
		t.Errorf("the proposed list does not block a chain that omits the root: %+v", m)
	}

	// The same root, public: never proposed, nor its intermediate.
	res, err = Find(context.Background(), st, "", Options{Public: poolOf(root.cert)})
	if err != nil || len(res.Proposals) != 0 || len(res.Rejected) != 1 || res.Rejected[0].SPKISHA256 != spkiOf(root) {
		t.Errorf("public root: %v %+v %+v", err, res.Proposals, res.Rejected)
	}
}

// When no host sends the root, the proposal names the key that signed the
// forged leaves and says the root was not sent; a certificate that only
// looks like the root (its name and key id, another key) is never taken
// for it, wherever it was seen.
func TestRootNotSent(t *testing.T) {
	public, root := newCA(t, "public"), newCA(t, "national root")
	inter := root.sub(t, "Security Certificate")
	lookalike := issueCA(t, "national root", nil, root.cert.SubjectKeyId)
	// A host that sends the lookalike above its own certificate, for the
	// control and for a name.
	decoy := hostResult(t, "10.0.2.1:443", public, public, nil)
	decoy.Control.Chain = hashes(decoy.Certs[0], lookalike.cert.Raw)
	decoy.Certs = append(decoy.Certs, lookalike.cert.Raw)
	decoy.Records = []measure.Record{{Vantage: "local", Host: decoy.Control.Host, SNI: "example.org", Outcome: outcome.OK, Time: time.Now(), Chain: decoy.Control.Chain, Attempts: 1}}
	st := campaign(t, decoy,
		hostResult(t, "10.0.1.1:443", public, inter, domains),
		hostResult(t, "10.0.1.2:443", public, inter, domains))
	res, err := Find(context.Background(), st, "", Options{Public: poolOf(public.cert)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) != 1 {
		t.Fatalf("proposals %+v, rejected %+v", res.Proposals, res.Rejected)
	}
	p := res.Proposals[0]
	if p.SPKISHA256 != spkiOf(inter) || p.RootSent || p.Issuer != "CN=national root" || len(p.Intermediates) != 0 {
		t.Errorf("proposed %s (%s) issued by %s, root sent %v", p.Subject, p.SPKISHA256, p.Issuer, p.RootSent)
	}
	if !slices.ContainsFunc(p.Reasons, func(r string) bool { return strings.Contains(r, "root not sent") }) {
		t.Errorf("reasons %q", p.Reasons)
	}
}

// A self-hosted CA whose root signs both the intermediate of its hosts' own
// certificates and another intermediate that serves other names is never
// proposed once its root is seen: the hosts' own chains lead to the same
// root.
func TestSelfHostedRootNeverProposed(t *testing.T) {
	root := newCA(t, "intranet root")
	own, other := root.sub(t, "intranet servers"), root.sub(t, "intranet services")
	st := campaign(t,
		hostResult(t, "10.0.0.1:443", own, other, domains, root),
		hostResult(t, "10.0.0.2:443", own, other, domains),
		hostResult(t, "10.0.0.3:443", own, other, domains))
	res, err := Find(context.Background(), st, "", Options{Public: x509.NewCertPool()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) != 0 || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "self-hosted") || res.Rejected[0].SPKISHA256 != spkiOf(root) {
		t.Errorf("proposals %+v, rejected %+v", res.Proposals, res.Rejected)
	}
}

func spkiOf(c *ca) string {
	h := sha256.Sum256(c.cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}

// A hostile host that floods the campaign with lookalikes of the root (its
// name and key id, other keys), more than the look-up keeps per name, some
// of them signing chains of their own, all met before any host sends the
// root: the proposal still names the root, and never a lookalike.
func TestLookalikeFloodNeverNamed(t *testing.T) {
	public, root := newCA(t, "public"), newCA(t, "national root")
	inter := root.sub(t, "Security Certificate")
	decoy := hostResult(t, "10.0.0.1:443", public, public, nil)
	for i := range maxSameName + 3 {
		l := issueCA(t, "national root", nil, root.cert.SubjectKeyId)
		leaf, rec := decoy.Certs[0], outcome.OK
		if i >= maxSameName {
			leaf, rec = l.leaf(t, fmt.Sprintf("d%d.example", i)), outcome.Suspected
		}
		decoy.Certs = append(decoy.Certs, leaf, l.cert.Raw)
		decoy.Records = append(decoy.Records, measure.Record{Vantage: "local", Host: decoy.Control.Host, SNI: fmt.Sprintf("d%d.example", i), Outcome: rec,
			Time: time.Now(), Chain: hashes(leaf, l.cert.Raw), Attempts: 1})
	}
	st := campaign(t, decoy,
		hostResult(t, "10.0.1.1:443", public, inter, domains),
		hostResult(t, "10.0.1.2:443", public, inter, domains, root))
	res, err := Find(context.Background(), st, "", Options{Public: poolOf(public.cert)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) != 1 || res.Proposals[0].SPKISHA256 != spkiOf(root) || len(res.Proposals[0].Hosts) != 2 {
		t.Fatalf("proposals %+v", res.Proposals)
	}
	if len(res.Rejected) != 3 {
		t.Errorf("rejected %+v", res.Rejected)
	}
}

// A hostile host in the campaign, intercepted like the others, cannot hide
// the root by claiming it as its own: sending the root's (public)
// certificate after its own leaf in its control chain is no evidence, and
// even a control chain really issued under the root (the host relays its
// control connection through the box) is one host against the many the
// key forges on.
func TestHostileHostCannotHideRoot(t *testing.T) {
	public, root := newCA(t, "public"), newCA(t, "national root")
	inter := root.sub(t, "Security Certificate")
	honest := []*measure.HostResult{
		hostResult(t, "10.0.1.1:443", public, inter, domains, root),
		hostResult(t, "10.0.1.2:443", public, inter, domains),
		hostResult(t, "10.0.1.3:443", public, inter, domains),
	}
	for name, ctl := range map[string]func(h *measure.HostResult) [][]byte{
		"sends the root": func(h *measure.HostResult) [][]byte { return [][]byte{h.Certs[0], root.cert.Raw} },
		"sends the intermediate": func(h *measure.HostResult) [][]byte {
			return [][]byte{h.Certs[0], inter.cert.Raw, root.cert.Raw}
		},
		"relays through the box": func(*measure.HostResult) [][]byte {
			return [][]byte{inter.leaf(t, "evil.example"), inter.cert.Raw}
		},
	} {
		evil := hostResult(t, "10.0.9.1:443", public, inter, domains[:1])
		c := ctl(evil)
		evil.Control.Chain = hashes(c...)
		evil.Certs = append(evil.Certs, c...)
		st := campaign(t, append(slices.Clone(honest), evil)...)
		res, err := Find(context.Background(), st, "", Options{Public: poolOf(public.cert)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Proposals) != 1 || res.Proposals[0].SPKISHA256 != spkiOf(root) {
			t.Errorf("%s: proposals %+v, rejected %+v", name, res.Proposals, res.Rejected)
			continue
		}
		// Only the relayed control chain counts as the host's own; a
		// certificate merely sent after its leaf does not.
		want := "the key issues none of the hosts' own certificates"
		if name == "relays through the box" {
			want = "the own chains of 1 host(s) lead to the key too, against 3 hosts"
		}
		if !slices.ContainsFunc(res.Proposals[0].Reasons, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("%s: reasons %q, want %q", name, res.Proposals[0].Reasons, want)
		}
	}
}

// ladder is a hostile host's chain material: n CAs, each signing the next
// one down.
func ladder(t *testing.T, n int) []*ca {
	cas := []*ca{newCA(t, "ladder 0")}
	for i := 1; i < n; i++ {
		cas = append(cas, cas[i-1].sub(t, fmt.Sprintf("ladder %d", i)))
	}
	return cas
}

// A host that sends a long chain whose every link verifies, for every
// name, costs each link's signature check once, not once per record (600
// records of a 100-link chain: 5.1 s before, 0.17 s after).
func TestLongChainsCheckedOnce(t *testing.T) {
	const links, records = 40, 60
	cas := ladder(t, links)
	var above [][]byte
	for i := links - 1; i >= 0; i-- {
		above = append(above, cas[i].cert.Raw)
	}
	f := &finder{}
	for i := range records {
		var ch chain.Chain
		for _, d := range append([][]byte{cas[links-1].leaf(t, fmt.Sprintf("d%d.example", i))}, above...) {
			c, err := chain.NewCert(d)
			if err != nil {
				t.Fatal(err)
			}
			ch = append(ch, c)
		}
		if top := f.issuingTop(ch); top != links {
			t.Fatalf("top %d, want %d", top, links)
		}
	}
	if most := links - 1 + records; f.sigs > most {
		t.Fatalf("%d signature checks for %d records of a %d-link chain, want at most %d", f.sigs, records, links, most)
	}
}

// A hostile host that sends a fresh chain of certificates on every name
// spends its own share of the certificates Find reads, not the campaign's:
// the forger seen on the other hosts is still proposed, and the records
// left unread are counted.
func TestCertificateFloodFromOneHost(t *testing.T) {
	public, root := newCA(t, "public"), newCA(t, "national root")
	inter := root.sub(t, "Security Certificate")
	flood := hostResult(t, "10.0.0.1:443", public, public, nil)
	for i := range 150 {
		l := newCA(t, fmt.Sprintf("flood %d", i))
		leaf := l.leaf(t, fmt.Sprintf("d%d.example", i))
		flood.Certs = append(flood.Certs, leaf, l.cert.Raw)
		flood.Records = append(flood.Records, measure.Record{Vantage: "local", Host: flood.Control.Host, SNI: fmt.Sprintf("d%d.example", i), Outcome: outcome.Suspected,
			Time: time.Now(), Chain: hashes(leaf, l.cert.Raw), Attempts: 1})
	}
	st := campaign(t, flood,
		hostResult(t, "10.0.1.1:443", public, inter, domains, root),
		hostResult(t, "10.0.1.2:443", public, inter, domains),
		hostResult(t, "10.0.1.3:443", public, inter, domains))
	res, err := Find(context.Background(), st, "", Options{Public: poolOf(public.cert), maxCerts: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) != 1 || res.Proposals[0].SPKISHA256 != spkiOf(root) || len(res.Proposals[0].Hosts) != 3 {
		t.Fatalf("proposals %+v", res.Proposals)
	}
	if res.Skipped == 0 {
		t.Errorf("no record counted as skipped")
	}
}
