package guard_test

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// A device store that holds the lab's public root, the Qaznet root and the
// lab's national root (installed as users were told to): the pool keeps the
// first and leaves out the two blocked ones.
func TestSystemPool(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	list := nationalList(l)
	bundle := filepath.Join(t.TempDir(), "ca-certificates.crt")
	data := string(lab.PEM(l.PublicRoot)) + blocklist.Embedded().ByID("kz-2019-qaznet").Certificate + string(lab.PEM(l.NationalRoot))
	if err := os.WriteFile(bundle, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", bundle)
	t.Setenv("SSL_CERT_DIR", t.TempDir())

	pool, removed, err := guard.SystemPool(guard.Options{Blocklist: list})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0].ID != "kz-2019-qaznet" {
		t.Fatalf("removed %d: %v", len(removed), removed)
	}
	// The forged chain no longer verifies at all; the real one does.
	if c, err := tls.Dial("tcp", l.MiddleboxAddr, &tls.Config{RootCAs: pool, ServerName: "facebook.com"}); err == nil {
		c.Close()
		t.Fatal("forged chain verified against the cleaned pool")
	}
	c, err := tls.Dial("tcp", l.MiddleboxAddr, &tls.Config{RootCAs: pool, ServerName: "github.com"})
	if err != nil {
		t.Fatalf("clean chain refused: %v", err)
	}
	c.Close()
}

// A TRUSTED CERTIFICATE block (openssl x509 -trustout) in the device's
// bundle anchors nothing, as with Go's own reader: its OpenSSL trust
// settings may reject the certificate, and the guard does not read them.
func TestSystemPoolSkipsTrustedCertificateBlocks(t *testing.T) {
	openssl := testtool.Need(t, "openssl", "openssl")
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, lab.PEM(l.PublicRoot), 0o644); err != nil {
		t.Fatal(err)
	}
	trusted, err := exec.Command(openssl, "x509", "-in", root, "-trustout", "-addreject", "serverAuth").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	bundle := filepath.Join(dir, "ca-certificates.crt")
	if err := os.WriteFile(bundle, trusted, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", bundle)
	t.Setenv("SSL_CERT_DIR", t.TempDir())
	pool, _, err := guard.SystemPool(guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tls.Dial("tcp", l.OriginAddr, &tls.Config{RootCAs: pool, ServerName: "github.com"}); err == nil {
		c.Close()
		t.Fatal("a root from a TRUSTED CERTIFICATE block with a reject setting anchored a chain")
	}
}
