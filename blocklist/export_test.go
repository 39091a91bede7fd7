package blocklist

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// p11-kit's own `trust` reads the p11kit export and lists every entry as
// distrusted. p11-kit ignores a user's module configuration when run as
// root, so as root the check runs as nobody.
func TestExportP11KitReadByTrust(t *testing.T) {
	trust := testtool.Need(t, "trust", "p11-kit")
	dir, err := os.MkdirTemp("", "mitmguard-p11kit-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src, home := filepath.Join(dir, "src", "blocklist"), filepath.Join(dir, "home")
	modules := filepath.Join(home, ".config", "pkcs11", "modules")
	for _, d := range []string{src, modules} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := Embedded().Export(&b, FormatP11Kit); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "mitmguard.p11-kit"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	module := "module: p11-kit-trust.so\ntrust-policy: yes\npriority: 2\nx-init-reserved: paths=" + filepath.Join(dir, "src") + "\n"
	if err := os.WriteFile(filepath.Join(modules, "mitmguard-test.module"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o755) })
	args := []string{"env", "HOME=" + home, trust, "list", "--filter=blocklist"}
	if os.Geteuid() == 0 {
		args = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("trust list: %v\n%s", err, out)
	}
	listed := 0
	for _, block := range strings.Split(string(out), "\n\n") {
		if strings.Contains(block, "label: mitmguard ") {
			listed++
			if !strings.Contains(block, "trust: distrusted") {
				t.Errorf("not distrusted:\n%s", block)
			}
		}
	}
	// DSDTestProvider's negative serial may be refused by p11-kit too; every
	// other entry must be there.
	if listed < Embedded().Len()-1 {
		t.Errorf("trust lists %d of %d entries as distrusted:\n%s", listed, Embedded().Len(), out)
	}
	t.Logf("trust lists %d of %d entries as distrusted", listed, Embedded().Len())
}

// The other formats, by round trip.
func TestExportRoundTrips(t *testing.T) {
	l := Embedded()
	var pemOut, spki, onecrl bytes.Buffer
	if err := l.Export(&pemOut, FormatPEM); err != nil {
		t.Fatal(err)
	}
	back, err := Load(pemOut.Bytes(), "export.pem")
	if err != nil || back.Len() != l.Len() {
		t.Fatalf("PEM: %d entries, %v", back.Len(), err)
	}
	for _, e := range l.Entries() {
		if back.Lookup(e.SPKI()) == nil {
			t.Errorf("PEM export lost %s", e.ID)
		}
	}
	l.Export(&spki, FormatSPKISHA256)
	lines := strings.Split(strings.TrimSpace(spki.String()), "\n")
	if len(lines) != l.Len() {
		t.Fatalf("%d SPKI lines", len(lines))
	}
	for _, line := range lines {
		h, _, _ := strings.Cut(line, "\t")
		if hh, err := chain.ParseHash(h); err != nil || l.Lookup(hh) == nil {
			t.Errorf("bad SPKI line %q", line)
		}
	}
	l.Export(&onecrl, FormatOneCRL)
	var doc struct {
		Data []struct{ ID, Subject, PubKeyHash string }
	}
	if err := json.Unmarshal(onecrl.Bytes(), &doc); err != nil || len(doc.Data) != l.Len() {
		t.Fatalf("OneCRL: %d records, %v", len(doc.Data), err)
	}
	if err := l.Export(&bytes.Buffer{}, "nope"); err == nil {
		t.Error("unknown format accepted")
	}
}
