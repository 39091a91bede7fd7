package guard_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/update/active"
)

// deviceTrusting returns a pool like a Kazakh user's device in 2019: the
// public roots plus the installed interception root.
func deviceTrusting(l *lab.Lab) *x509.CertPool {
	p := l.PublicPool()
	p.AddCert(l.NationalRoot)
	return p
}

// labClient returns an HTTP client whose every connection goes to addr, with
// TLS configured by cfg.
func labClient(addr string, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return &http.Client{Transport: tr}
}

func deviceTrustingConfig(l *lab.Lab) *tls.Config {
	return &tls.Config{RootCAs: deviceTrusting(l)}
}

func nationalList(l *lab.Lab) *blocklist.List {
	list, _ := lab.Blocklist(l.NationalRoot)
	return list
}

func TestGuardRefusesTrustedBlockedChain(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	trusting := deviceTrustingConfig(l)

	// Without the guard the device accepts the forged certificate: this is
	// the hole the guard closes.
	resp, err := labClient(l.MiddleboxAddr, trusting).Get("https://www.facebook.com/")
	if err != nil {
		t.Fatalf("unguarded client refused the forged chain: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "hello from the lab origin") {
		t.Fatalf("relay broken: %q", body)
	}

	var hooked *guard.InterceptionError
	cfg := guard.Config(trusting, guard.Options{Blocklist: nationalList(l), OnIntercept: func(e *guard.InterceptionError) { hooked = e }})
	_, err = labClient(l.MiddleboxAddr, cfg).Get("https://www.facebook.com/")
	var ie *guard.InterceptionError
	if !errors.As(err, &ie) {
		t.Fatalf("guarded client: err = %v, want *guard.InterceptionError", err)
	}
	if ie.Host != "www.facebook.com" || ie.Entry.Kind != blocklist.KindUser || ie.Entry.Cert().X509.Subject.CommonName != "mitmguard lab national root" {
		t.Errorf("error carries %+v", ie)
	}
	if hooked != ie {
		t.Error("OnIntercept not called with the error")
	}
	for _, want := range []string{"being monitored", "mitmguard audit", "VPN or Tor", "passwords"} {
		if !strings.Contains(ie.Error()+ie.Advice(), want) {
			t.Errorf("message lacks %q:\n%s\n%s", want, ie.Error(), ie.Advice())
		}
	}

	// Names the middlebox does not target pass, guarded or not.
	resp, err = labClient(l.MiddleboxAddr, cfg).Get("https://github.com/")
	if err != nil {
		t.Fatalf("guard refused a clean connection: %v", err)
	}
	resp.Body.Close()
	// The embedded list alone (nothing installed) does not know the lab
	// root: no false refusal.
	t.Setenv(active.EnvDir, t.TempDir())
	plainGuard := guard.Config(trusting, guard.Options{})
	if resp, err = labClient(l.MiddleboxAddr, plainGuard).Get("https://www.facebook.com/"); err != nil {
		t.Fatalf("embedded-list guard refused an unlisted root: %v", err)
	}
	resp.Body.Close()
}

// Check also catches a blocked root that the server did not send when
// verification was skipped (no verified chains to look at).
func TestCheckCompletesChain(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := tls.Dial("tcp", l.MiddleboxAddr, &tls.Config{ServerName: "google.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ie := guard.Check(nationalList(l), conn.ConnectionState())
	if ie == nil || !ie.Completed {
		t.Fatalf("Check = %+v, want a completed match", ie)
	}
	if guard.Check(blocklist.Embedded(), conn.ConnectionState()) != nil {
		t.Error("embedded list matched the lab chain")
	}
}

func TestConfigKeepsBase(t *testing.T) {
	called := false
	base := &tls.Config{ServerName: "x", VerifyConnection: func(tls.ConnectionState) error { called = true; return errors.New("base says no") }}
	cfg := guard.Config(base, guard.Options{})
	if cfg == base || cfg.ServerName != "x" {
		t.Fatal("Config must return a modified copy")
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{}); err == nil || !called {
		t.Fatal("base VerifyConnection not run first")
	}
	if tr := guard.Transport(nil, guard.Options{}); tr.TLSClientConfig.VerifyConnection == nil || tr == http.DefaultTransport {
		t.Fatal("Transport not guarded")
	}
}

// The zero Options enforce the list mitmguard update installed, as every
// command does: a program built before the lab root was listed refuses it
// once the list naming it is installed, with no change to the program.
func TestDefaultIsInstalledList(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	t.Setenv(active.EnvDir, dir)
	data, err := nationalList(l).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, active.ListFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := guard.Config(deviceTrustingConfig(l), guard.Options{})
	_, err = labClient(l.MiddleboxAddr, cfg).Get("https://www.facebook.com/")
	var ie *guard.InterceptionError
	if !errors.As(err, &ie) {
		t.Fatalf("default guard with the lab root installed: err = %v, want an *InterceptionError", err)
	}

	// SystemPool's default leaves the installed list's roots out too.
	bundle := filepath.Join(t.TempDir(), "ca-certificates.crt")
	if err := os.WriteFile(bundle, lab.PEM(l.NationalRoot), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", bundle)
	t.Setenv("SSL_CERT_DIR", t.TempDir())
	if _, removed, err := guard.SystemPool(guard.Options{}); err != nil || len(removed) != 1 {
		t.Fatalf("SystemPool with the lab root installed: removed %d, err %v; want the lab root removed", len(removed), err)
	}
}
