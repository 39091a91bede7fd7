package lab

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// A network's intercepting hosts send the national root only when
// SendsRoot says so; the others send the leaf and the "Security
// Certificate" intermediate, as the single-host lab does. Either chain
// verifies to the national root.
func TestNetworkSendsRootPerHost(t *testing.T) {
	const sni = "facebook.com"
	n, err := StartNetwork(NetworkConfig{Hosts: []Action{Intercept, Intercept, Pass}, SendsRoot: []bool{false, true, true}, Domains: []string{sni}, ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	national := x509.NewCertPool()
	national.AddCert(n.NationalRoot)
	for i, want := range []struct {
		sends bool
		chain int
	}{{false, 2}, {true, 3}, {false, 2}} {
		h := n.Hosts[i]
		if h.SendsRoot != want.sends {
			t.Errorf("host %d (%s): SendsRoot %v", i, h.Action, h.SendsRoot)
		}
		conn, err := tls.Dial("tcp", h.Addr, &tls.Config{InsecureSkipVerify: true, ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		got := conn.ConnectionState().PeerCertificates
		conn.Close()
		if len(got) != want.chain {
			t.Errorf("host %d (%s): %d certificates, want %d", i, h.Action, len(got), want.chain)
			continue
		}
		if h.Action != Intercept {
			if got[1].Subject.CommonName != "mitmguard lab public CA 1" {
				t.Errorf("host %d relayed a chain under %s", i, got[1].Subject)
			}
			continue
		}
		if want.sends && !got[2].Equal(n.NationalRoot) {
			t.Errorf("host %d sent %s as its root", i, got[2].Subject)
		}
		inter := x509.NewCertPool()
		inter.AddCert(got[1])
		if _, err := got[0].Verify(x509.VerifyOptions{Roots: national, Intermediates: inter, DNSName: h.Name}); err != nil {
			t.Errorf("host %d: the forged leaf does not verify to the national root: %v", i, err)
		}
	}
}
