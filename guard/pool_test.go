package guard_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/internal/lab"
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
