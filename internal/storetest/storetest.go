// Package storetest builds trust stores under a temporary root with the real
// tools (update-ca-certificates, certutil, keytool), with Kazakh roots and a
// lab national root injected among real Mozilla roots, for the tests of the
// truststore package and of the CLI.
package storetest

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
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
	"github.com/mitmguard/mitmguard/roots"
)

// Fixture is a device built under a temporary root with the real tools:
// update-ca-certificates, certutil and keytool. Kazakh roots and a private
// root are injected among real Mozilla roots in every kind of store.
type Fixture struct {
	Root    string
	Java    bool // keytool was available, so a Java keystore was made
	Private *chain.Cert
}

// PEMOf returns the certificate of an embedded blocklist entry.
func PEMOf(t testing.TB, id string) string {
	t.Helper()
	e := blocklist.Embedded().ByID(id)
	if e == nil {
		t.Fatalf("no entry %s", id)
	}
	return e.Certificate
}

// Mozilla returns the i-th Mozilla root as PEM.
func Mozilla(i int) string { return chain.FromX509(roots.Certificates()[i]).PEM() }

// Write writes a file, making its folders.
func Write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Run runs a command and fails the test when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// labRoot is the interception lab's national root: an interception root
// that is on no list yet, so an audit must call it not-public.
func labRoot(t testing.TB) string {
	t.Helper()
	l, err := lab.Start(lab.Config{Names: []string{"example.com"}, Targets: map[string]lab.Action{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return string(lab.PEM(l.NationalRoot))
}

// New builds the fixture. A missing tool skips the test, naming its Debian
// package, except under CI where it fails (testtool.Need); keytool is
// optional outside CI (the Java keystore is then left out).
func New(t testing.TB) *Fixture {
	t.Helper()
	testtool.Need(t, "update-ca-certificates", "ca-certificates")
	testtool.Need(t, "certutil", "libnss3-tools")
	testtool.Need(t, "openssl", "openssl") // update-ca-certificates runs openssl rehash
	if testtool.InCI() {
		testtool.Need(t, "keytool", "default-jre-headless")
	}
	f := &Fixture{Root: t.TempDir()}
	R := func(p string) string { return filepath.Join(f.Root, p) }
	priv := labRoot(t)
	c, _ := chain.ParsePEM([]byte(priv))
	f.Private = c[0]

	// Debian: three packaged Mozilla roots and a packaged Kazakh root, all
	// selected; the Qaznet root and the lab national root added by the admin.
	Write(t, R("/usr/share/ca-certificates/mozilla/Root_A.crt"), Mozilla(0))
	Write(t, R("/usr/share/ca-certificates/mozilla/Root_B.crt"), Mozilla(1))
	Write(t, R("/usr/share/ca-certificates/mozilla/Root_C.crt"), Mozilla(2))
	Write(t, R("/usr/share/ca-certificates/kz/ISCA_2021.crt"), PEMOf(t, "kz-2021-isca"))
	Write(t, R("/etc/ca-certificates.conf"), "# test\nmozilla/Root_A.crt\nmozilla/Root_B.crt\nmozilla/Root_C.crt\nkz/ISCA_2021.crt\n")
	Write(t, R("/usr/local/share/ca-certificates/qaznet.crt"), PEMOf(t, "kz-2019-qaznet"))
	Write(t, R("/usr/local/share/ca-certificates/lab/national-root.crt"), priv)
	if err := os.MkdirAll(R("/etc/ssl/certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The options of update-ca-certificates that keep it under the root, as
	// truststore's distrust passes them (written out here: importing
	// truststore would make its own tests an import cycle).
	Run(t, "update-ca-certificates", "--fresh",
		"--certsconf", R("/etc/ca-certificates.conf"), "--certsdir", R("/usr/share/ca-certificates"),
		"--localcertsdir", R("/usr/local/share/ca-certificates"), "--etccertsdir", R("/etc/ssl/certs"),
		"--hooksdir", R("/nonexistent-mitmguard-hooks"))

	// p11-kit: the 2024 ISCA root as an anchor, beside a public one.
	Write(t, R("/etc/pki/ca-trust/source/anchors/isca-2024.pem"), PEMOf(t, "kz-2024-isca"))
	Write(t, R("/etc/pki/ca-trust/source/anchors/public.pem"), Mozilla(3))

	// NSS: Chrome's database of root with the ISCA CA root trusted "C,,"
	// and a public root; a Firefox profile of alice trusting Qaznet.
	nss := func(dir string, certs map[string]string) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		Run(t, "certutil", "-N", "-d", "sql:"+dir, "--empty-password")
		for nick, spec := range certs {
			trust, pemText, _ := strings.Cut(spec, "|")
			file := filepath.Join(t.TempDir(), "c.pem")
			Write(t, file, pemText)
			Run(t, "certutil", "-A", "-d", "sql:"+dir, "-n", nick, "-t", trust, "-i", file)
		}
	}
	nss(R("/root/.pki/nssdb"), map[string]string{
		"ISCA":       "C,,|" + PEMOf(t, "kz-2020-isca-ca"),
		"Public One": "C,,|" + Mozilla(4),
	})
	nss(R("/home/alice/.mozilla/firefox/abcd1234.default-release"), map[string]string{
		"Qaznet Trust Network": "CT,C,C|" + PEMOf(t, "kz-2019-qaznet"),
	})

	// Java: a JKS cacerts with a public root and the 2020 ISCA root.
	if _, err := exec.LookPath("keytool"); err == nil {
		f.Java = true
		ks := R("/etc/ssl/certs/java/cacerts")
		if err := os.MkdirAll(filepath.Dir(ks), 0o755); err != nil {
			t.Fatal(err)
		}
		for alias, pemText := range map[string]string{"publicroot": Mozilla(5), "iscaroot": PEMOf(t, "kz-2020-isca-b13fa2e6")} {
			file := filepath.Join(t.TempDir(), "c.pem")
			Write(t, file, pemText)
			Run(t, "keytool", "-importcert", "-noprompt", "-storetype", "JKS", "-alias", alias, "-file", file,
				"-keystore", ks, "-storepass", "changeit")
		}
	} else {
		t.Logf("keytool (Debian package default-jre-headless) is missing: no Java keystore in this fixture, its checks are left out (under CI=1 the test fails)")
	}
	return f
}

// Tree records every file, symlink and folder under root: content hash or
// target, mode, owner and group. The folders that lead to the distrust
// journal (var/lib/mitmguard) are left out: an apply makes them and an undo
// leaves them, empty, as a package manager would.
func Tree(t testing.TB, root string) map[string]string {
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
		owner := owner(fi)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			out[rel] = "link:" + tgt + owner
		case fi.IsDir() && rel != "var" && rel != "var/lib" && rel != "var/lib/mitmguard":
			out[rel+"/"] = fi.Mode().String() + owner
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[rel] = fi.Mode().String() + owner + ":" + hex.EncodeToString(sum[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Diff lists the paths whose records differ between two trees.
func Diff(a, b map[string]string) []string {
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

// Host is a folder outside the root under test, standing for the machine
// an audit or distrust runs on: it holds a Kazakh root (also as a p11-kit
// anchor) and a victim file, and Unchanged checks nothing there changed.
type Host struct {
	Dir    string
	before map[string]string
}

// NewHost makes the folder.
func NewHost(t testing.TB) *Host {
	t.Helper()
	h := &Host{Dir: t.TempDir()}
	Write(t, filepath.Join(h.Dir, "qaznet.crt"), PEMOf(t, "kz-2019-qaznet"))
	Write(t, filepath.Join(h.Dir, "ca-trust/source/anchors/qaznet.pem"), PEMOf(t, "kz-2019-qaznet"))
	Write(t, filepath.Join(h.Dir, "victim"), "host file")
	h.before = Tree(t, h.Dir)
	return h
}

// NewHostAt records an existing folder as the host, as it is now.
func NewHostAt(t testing.TB, dir string) *Host {
	t.Helper()
	return &Host{Dir: dir, before: Tree(t, dir)}
}

// Unchanged fails the test when a file of the host folder changed.
func (h *Host) Unchanged(t testing.TB) {
	t.Helper()
	if d := Diff(h.before, Tree(t, h.Dir)); len(d) != 0 {
		t.Fatalf("files outside the root changed: %v", d)
	}
}

// Symlink makes a link, with its folders.
func Symlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
