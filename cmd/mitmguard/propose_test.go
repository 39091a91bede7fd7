package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// proposeCampaign runs a probe campaign against the lab network n and the
// extra hosts, and returns its database.
func proposeCampaign(t *testing.T, n *lab.Network, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	var hosts []string
	for _, h := range n.Hosts {
		hosts = append(hosts, h.Addr)
	}
	hosts = append(hosts, extra...)
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	domains := append(append([]string{}, labTargeted...), labUntargeted...)
	db := filepath.Join(dir, "m.db")
	args := []string{"probe", "--hosts", write("hosts.txt", strings.Join(hosts, "\n")+"\n"),
		"--domains", write("domains.txt", strings.Join(domains, "\n")+"\n"),
		"--roots", write("root.pem", string(lab.PEM(n.PublicRoot))), "--db", db, "--no-progress",
		"--timeout", "30s", "--min-timeout", "3s"}
	var out strings.Builder
	if code := run(args, &out, &out); code != 0 {
		t.Fatalf("probe exited %d:\n%s", code, out.String())
	}
	return db
}

// selfHostedCA starts a TLS server on ip with its own private CA, answering
// its own name for the control and another certificate of its own CA (its
// own names again) for every other SNI, as a self-hosted service with
// several certificates does. Its records differ from the control and end
// outside the public roots, but its CA only signs its own names.
func selfHostedCA(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, ip, name string) string {
	t.Helper()
	leaf := func(names ...string) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key}
	}
	own, other := leaf(name), leaf(name, "www."+name)
	targets := append(append([]string{}, labTargeted...), labUntargeted...)
	ln, err := tls.Listen("tcp", net.JoinHostPort(ip, "0"), &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if slices.Contains(targets, h.ServerName) {
			return &other, nil
		}
		return &own, nil
	}})
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func newTestCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

type proposalsJSON struct {
	Proposals []struct {
		SPKI        string   `json:"spki_sha256"`
		Subject     string   `json:"subject"`
		Issuer      string   `json:"issuer"`
		Certificate string   `json:"certificate"`
		Hosts       []string `json:"hosts"`
		Domains     []string `json:"domains"`
		FirstSeen   string   `json:"first_seen"`
		LastSeen    string   `json:"last_seen"`
		Confidence  string   `json:"confidence"`
		Reasons     []string `json:"reasons"`
		RootSent    bool     `json:"root_sent"`
		// Intermediates signed the forged leaves under the proposed key.
		Intermediates []struct {
			SPKI    string `json:"spki_sha256"`
			Subject string `json:"subject"`
		} `json:"intermediates"`
	} `json:"proposals"`
	Rejected []struct {
		SPKI   string `json:"spki_sha256"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

func spkiHex(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}

// On a lab network campaign, --propose names exactly the lab's national
// root (sent by one intercepting host's box, not by the two others'), never
// the lab's public root, the forging intermediate, nor a self-hosted CA seen
// on two hosts; its output is a blocklist that blocklist validate accepts,
// with evidence.
func TestReportProposeLabNetwork(t *testing.T) {
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: []lab.Action{lab.Intercept, lab.Pass, lab.Intercept, lab.Intercept, lab.Pass},
		SendsRoot: []bool{false, false, true}, Domains: labTargeted, ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ca, caKey := newTestCA(t, "intranet CA")
	db := proposeCampaign(t, n,
		selfHostedCA(t, ca, caKey, "127.0.2.1", "a.intranet.example"),
		selfHostedCA(t, ca, caKey, "127.0.2.2", "b.intranet.example"))

	outDir := t.TempDir()
	var out strings.Builder
	if code := run([]string{"report", "--db", db, "--propose", "--json", "--output", outDir}, &out, &out); code != 0 {
		t.Fatalf("report --propose exited %d:\n%s", code, out.String())
	}
	var got proposalsJSON
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(got.Proposals) != 1 {
		t.Fatalf("%d proposals, want 1:\n%s", len(got.Proposals), out.String())
	}
	p := got.Proposals[0]
	named, err := x509.ParseCertificate(pemBlock(t, p.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if p.SPKI != spkiHex(n.NationalRoot) || !named.Equal(n.NationalRoot) {
		t.Errorf("proposed %q (key %s), not the national root (key %s)", p.Subject, p.SPKI, spkiHex(n.NationalRoot))
	}
	if len(p.Intermediates) != 1 || !strings.Contains(p.Intermediates[0].Subject, "Security Certificate") {
		t.Errorf("intermediates %+v", p.Intermediates)
	}
	for _, never := range []*x509.Certificate{n.PublicRoot, ca} {
		if p.SPKI == spkiHex(never) {
			t.Errorf("proposed %s", never.Subject)
		}
	}
	if len(p.Hosts) != 3 || len(p.Domains) != len(labTargeted)-1 && len(p.Domains) != len(labTargeted) {
		t.Errorf("hosts %v domains %v", p.Hosts, p.Domains)
	}
	if p.FirstSeen == "" || p.LastSeen < p.FirstSeen || p.Confidence == "" || len(p.Reasons) == 0 {
		t.Errorf("incomplete proposal: %+v", p)
	}
	// The self-hosted CA differs from the control on both its hosts and ends
	// outside the public roots, and is still never proposed.
	t.Logf("rejected: %+v", got.Rejected)
	for _, r := range got.Rejected {
		if r.SPKI == spkiHex(ca) && !strings.Contains(r.Reason, "self-hosted") {
			t.Errorf("self-hosted CA rejected for %q", r.Reason)
		}
	}

	out.Reset()
	if code := run([]string{"report", "--db", db, "--propose"}, &out, &out); code != 0 || !strings.Contains(out.String(), "under it, signed forged certificates: CN=Security Certificate") || !strings.Contains(out.String(), "a self-signed root") {
		t.Errorf("text: exit %d:\n%s", code, out.String())
	}
	t.Logf("report --propose:\n%s", out.String())

	// Thresholds above the evidence propose nothing, and say why.
	for _, args := range [][]string{{"--min-hosts", "4"}, {"--min-domains", "7"}} {
		out.Reset()
		if code := run(append([]string{"report", "--db", db, "--propose"}, args...), &out, &out); code != 0 ||
			!strings.Contains(out.String(), "nothing to propose") || !strings.Contains(out.String(), "not proposed: CN=mitmguard lab national root") {
			t.Errorf("%v: exit %d:\n%s", args, code, out.String())
		}
	}

	out.Reset()
	proposed := filepath.Join(outDir, "proposed.json")
	if code := run([]string{"blocklist", "validate", proposed}, &out, &out); code != 0 {
		t.Fatalf("blocklist validate %s exited %d:\n%s", proposed, code, out.String())
	}
	var list struct {
		Entries []struct{ ID, SPKI, Evidence string } `json:"entries"`
	}
	data, _ := os.ReadFile(proposed)
	json.Unmarshal(data, &list)
	if len(list.Entries) != 1 || list.Entries[0].Evidence == "" {
		t.Fatalf("proposed.json: %s", data)
	}
	for _, ext := range []string{".json", ".pem"} {
		name := filepath.Join(outDir, strings.TrimSuffix(list.Entries[0].Evidence, ".json")+ext)
		if b, err := os.ReadFile(name); err != nil || !strings.Contains(string(b), map[string]string{".json": p.SPKI, ".pem": "BEGIN CERTIFICATE"}[ext]) {
			t.Errorf("evidence %s: %v", name, err)
		}
	}
}

// A campaign without interception proposes nothing, says so, and exits 0.
func TestReportProposeClean(t *testing.T) {
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: []lab.Action{lab.Pass, lab.Pass, lab.Pass}, Domains: labTargeted})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	db := proposeCampaign(t, n)
	var out strings.Builder
	if code := run([]string{"report", "--db", db, "--propose"}, &out, &out); code != 0 || !strings.Contains(out.String(), "nothing to propose") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"report", "--db", db, "--propose", "--json"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	var got proposalsJSON
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil || got.Proposals == nil || len(got.Proposals) != 0 {
		t.Fatalf("%v: %s", err, out.String())
	}
}

func pemBlock(t *testing.T, s string) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no certificate in %q", s)
	}
	return b.Bytes
}

// report --propose prints subjects from forged certificates and names from
// the database as text: a hostile forger's or self-hosted CA's name sends no
// escape sequence, line break or bidirectional override to the terminal.
func TestReportProposeHostileNames(t *testing.T) {
	evil := "\x1b]0;pwned\x07\x1b[2J\u202e\nnot proposed: nothing"
	forger, forgerKey := newTestCA(t, "forger"+evil)
	own, ownKey := newTestCA(t, "intranet"+evil)
	leaf := func(ca *x509.Certificate, key *ecdsa.PrivateKey, name string) []byte {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	hash := func(der []byte) chain.Hash {
		c, err := chain.NewCert(der)
		if err != nil {
			t.Fatal(err)
		}
		return c.SHA256
	}
	// Two hosts whose every name is forged by forger; two whose own CA
	// issues both their control and the names (a self-hosted CA: rejected).
	var results []*measure.HostResult
	for i, signer := range []struct {
		ca  *x509.Certificate
		key *ecdsa.PrivateKey
	}{{forger, forgerKey}, {forger, forgerKey}, {own, ownKey}, {own, ownKey}} {
		host := fmt.Sprintf("10.0.0.%d:443", i+1)
		control := leaf(own, ownKey, "host.internal")
		r := &measure.HostResult{Control: measure.Control{Vantage: "local", Host: host, SNI: "control.invalid", Outcome: outcome.OK, Chain: []chain.Hash{hash(control), hash(own.Raw)}},
			Certs: [][]byte{control, own.Raw, signer.ca.Raw}}
		for _, d := range labTargeted {
			forged := leaf(signer.ca, signer.key, d)
			r.Certs = append(r.Certs, forged)
			r.Records = append(r.Records, measure.Record{Vantage: "local", Host: host, SNI: d, Outcome: outcome.Suspected, Time: time.Now(),
				Chain: []chain.Hash{hash(forged), hash(signer.ca.Raw)}, Attempts: 1})
		}
		results = append(results, r)
	}
	db := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := &store.Campaign{ID: "evil", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(ctx, c, results); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var out strings.Builder
	if code := run([]string{"report", "--db", db, "--propose", "--min-domains", "2"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "propose ") || !strings.Contains(out.String(), `not proposed: CN=intranet?]0\;pwned??[2J??not proposed: nothing`) {
		t.Fatalf("the proposal and the rejected CA are not both shown, names filtered:\n%s", out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "not proposed: nothing") || strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\u202e' }) {
			t.Fatalf("a hostile name reached the output as it is: %q\n%s", line, out.String())
		}
	}
}

// Records left out of the analysis (a host that sent more distinct
// certificates than Find reads) are said, in text and JSON: a reviewer must
// know the proposals were made without them.
func TestReportProposeSaysSkipped(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := &store.Campaign{ID: "flood", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	// One host's share is 1<<16/16 certificates: past it, records are
	// left out. Unparseable bytes count as certificates read too.
	hr := &measure.HostResult{Control: measure.Control{Vantage: "local", Host: "10.0.0.1:443", SNI: "control.invalid", Outcome: outcome.OK}}
	for i := range 1<<12 + 10 {
		der := []byte(fmt.Sprintf("not a certificate %d", i))
		hr.Certs = append(hr.Certs, der)
		hr.Records = append(hr.Records, measure.Record{Vantage: "local", Host: hr.Control.Host, SNI: fmt.Sprintf("d%d.example", i), Outcome: outcome.Suspected,
			Time: time.Now(), Chain: []chain.Hash{chain.Hash(sha256.Sum256(der))}, Attempts: 1})
	}
	if _, err := st.Write(ctx, c, []*measure.HostResult{hr}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out strings.Builder
	if code := run([]string{"report", "--db", db, "--propose"}, &out, &out); code != 0 || !strings.Contains(out.String(), "10 suspected records left out") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"report", "--db", db, "--propose", "--json"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	var got struct {
		Skipped int `json:"skipped_records"`
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil || got.Skipped != 10 {
		t.Fatalf("%v: %s", err, out.String())
	}
}
