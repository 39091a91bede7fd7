package truststore

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/roots"
)

// fixture is a device built under a temporary root with the real tools:
// update-ca-certificates, certutil and keytool. Kazakh roots and a private
// root are injected among real Mozilla roots in every kind of store.
type fixture struct {
	root    string
	java    bool // keytool was available
	private *chain.Cert
}

func pemOf(t *testing.T, id string) string {
	t.Helper()
	e := blocklist.Embedded().ByID(id)
	if e == nil {
		t.Fatalf("no entry %s", id)
	}
	return e.Certificate
}

func mozilla(i int) string { return chain.FromX509(roots.Certificates()[i]).PEM() }

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// privateRoot is a self-signed root that no public program knows, like a
// corporate proxy's: taken from the verdict tests' self-signed generator
// would pull in a dependency, so one real-looking PEM is made here.
func privateRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "k.pem"), "-out", filepath.Join(dir, "c.pem"), "-days", "30", "-subj", "/CN=Example Corp Proxy CA")
	b, err := os.ReadFile(filepath.Join(dir, "c.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	for _, tool := range []string{"update-ca-certificates", "certutil", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (Debian: apt-get install ca-certificates libnss3-tools openssl); .ci/run installs it", tool)
		}
	}
	f := &fixture{root: t.TempDir()}
	R := func(p string) string { return filepath.Join(f.root, p) }
	priv := privateRoot(t)
	c, _ := chain.ParsePEM([]byte(priv))
	f.private = c[0]

	// Debian: three packaged Mozilla roots and a packaged Kazakh root, all
	// selected; the Qaznet root and the private root added by the admin.
	write(t, R("/usr/share/ca-certificates/mozilla/Root_A.crt"), mozilla(0))
	write(t, R("/usr/share/ca-certificates/mozilla/Root_B.crt"), mozilla(1))
	write(t, R("/usr/share/ca-certificates/mozilla/Root_C.crt"), mozilla(2))
	write(t, R("/usr/share/ca-certificates/kz/ISCA_2021.crt"), pemOf(t, "kz-2021-isca"))
	write(t, R("/etc/ca-certificates.conf"), "# test\nmozilla/Root_A.crt\nmozilla/Root_B.crt\nmozilla/Root_C.crt\nkz/ISCA_2021.crt\n")
	write(t, R("/usr/local/share/ca-certificates/qaznet.crt"), pemOf(t, "kz-2019-qaznet"))
	write(t, R("/usr/local/share/ca-certificates/corp/proxy.crt"), priv)
	if err := os.MkdirAll(R("/etc/ssl/certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := rootFS{root: f.root}
	run(t, "update-ca-certificates", updateCAArgs(r)...)

	// p11-kit: the 2024 ISCA root as an anchor, beside a public one.
	write(t, R("/etc/pki/ca-trust/source/anchors/isca-2024.pem"), pemOf(t, "kz-2024-isca"))
	write(t, R("/etc/pki/ca-trust/source/anchors/public.pem"), mozilla(3))

	// NSS: Chrome's database of root with the ISCA CA root trusted "C,,"
	// and a public root; a Firefox profile of alice trusting Qaznet.
	nss := func(dir string, certs map[string]string) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		run(t, "certutil", "-N", "-d", "sql:"+dir, "--empty-password")
		for nick, spec := range certs {
			trust, pemText, _ := strings.Cut(spec, "|")
			file := filepath.Join(t.TempDir(), "c.pem")
			write(t, file, pemText)
			run(t, "certutil", "-A", "-d", "sql:"+dir, "-n", nick, "-t", trust, "-i", file)
		}
	}
	nss(R("/root/.pki/nssdb"), map[string]string{
		"ISCA":       "C,,|" + pemOf(t, "kz-2020-isca-ca"),
		"Public One": "C,,|" + mozilla(4),
	})
	nss(R("/home/alice/.mozilla/firefox/abcd1234.default-release"), map[string]string{
		"Qaznet Trust Network": "CT,C,C|" + pemOf(t, "kz-2019-qaznet"),
	})

	// Java: a JKS cacerts with a public root and the 2020 ISCA root.
	if _, err := exec.LookPath("keytool"); err == nil {
		f.java = true
		ks := R("/etc/ssl/certs/java/cacerts")
		if err := os.MkdirAll(filepath.Dir(ks), 0o755); err != nil {
			t.Fatal(err)
		}
		for alias, pemText := range map[string]string{"publicroot": mozilla(5), "iscaroot": pemOf(t, "kz-2020-isca-b13fa2e6")} {
			file := filepath.Join(t.TempDir(), "c.pem")
			write(t, file, pemText)
			run(t, "keytool", "-importcert", "-noprompt", "-storetype", "JKS", "-alias", alias, "-file", file,
				"-keystore", ks, "-storepass", DefaultJavaPassword)
		}
	}
	return f
}

// tree records every file and symlink under root: content hash or target,
// and mode.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			out[rel] = "link:" + tgt
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[rel] = fi.Mode().String() + ":" + hex.EncodeToString(sum[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k+" (added)")
		}
	}
	return d
}
