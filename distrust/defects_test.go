package distrust

import (
	"github.com/mitmguard/mitmguard/truststore"

	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/storetest"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// Issue 12: undo gives every file back its owner, group and mode, not
// root's: a user's files stay theirs after sudo mitmguard distrust --undo.
func TestUndoRestoresOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	f := storetest.New(t)
	conf := filepath.Join(f.Root, "etc/ca-certificates.conf")
	profile := filepath.Join(f.Root, "home/alice/.mozilla/firefox/abcd1234.default-release")
	for _, p := range []string{conf, profile, profile + "/cert9.db", profile + "/key4.db"} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(conf, 0o640|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	before := storetest.Tree(t, f.Root)
	applyAll(t, f.Root)
	if d := storetest.Diff(before, storetest.Tree(t, f.Root)); !strings.Contains(strings.Join(d, ","), "etc/ca-certificates.conf") {
		t.Fatalf("apply did not rewrite the conf: %v", d)
	}
	if err := undo(f.Root); err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, f.Root)); len(d) != 0 {
		t.Fatalf("undo did not restore owner, group and mode: %v", d)
	}
}

// Issue 12: the truststore.Java alias may already be gone (Debian's hook removes it);
// apply does not depend on keytool's message, which is localised.
func TestJavaAliasGoneInAnyLocale(t *testing.T) {
	testtool.Need(t, "keytool", "default-jre-headless")
	f := storetest.New(t)
	plan := mustPlan(t, audit(t, f.Root), f.Root, false)
	ks := filepath.Join(f.Root, "etc/ssl/certs/java/cacerts")
	storetest.Run(t, "keytool", "-delete", "-noprompt", "-alias", "iscaroot", "-keystore", ks, "-storepass", truststore.DefaultJavaPassword)
	t.Setenv("JAVA_TOOL_OPTIONS", "-Duser.language=de -Duser.country=DE")
	t.Setenv("LANG", "de_DE.UTF-8")
	if _, err := Apply(context.Background(), plan, ApplyOptions{}); err != nil {
		t.Fatalf("apply with the alias already gone, German locale: %v", err)
	}
	if audit(t, f.Root).TrustsKnownInterception() {
		t.Error("still trusted")
	}
	if err := undo(f.Root); err != nil {
		t.Fatal(err)
	}
}

// Issue 11 item 1: ssl-cert's snakeoil certificate (make-ssl-cert: CN=the
// host name, CA:FALSE) in /etc/ssl/certs is not a root: the audit does not
// flag it and distrust --include-not-public never removes it. A CA that a
// package installed there is kept too.
func TestSnakeoilIsNotARoot(t *testing.T) {
	testtool.Need(t, "openssl", "openssl")
	testtool.Need(t, "update-ca-certificates", "ca-certificates")
	root := t.TempDir()
	certs := filepath.Join(root, debianCerts)
	cnf := filepath.Join(t.TempDir(), "ssleay.cnf")
	// The template of Debian's make-ssl-cert (/usr/share/ssl-cert/ssleay.cnf).
	storetest.Write(t, cnf, `[ req ]
default_bits = 2048
distinguished_name = req_distinguished_name
prompt = no
policy = policy_anything
req_extensions = v3_req
x509_extensions = v3_req
[ req_distinguished_name ]
commonName = mailhost.example
[ v3_req ]
basicConstraints = CA:FALSE
subjectAltName = DNS:mailhost.example
`)
	storetest.Write(t, filepath.Join(root, "etc/ssl/private/.keep"), "")
	storetest.Write(t, filepath.Join(certs, ".keep"), "")
	storetest.Run(t, "openssl", "req", "-config", cnf, "-new", "-x509", "-days", "3650", "-nodes", "-sha256",
		"-out", filepath.Join(certs, "ssl-cert-snakeoil.pem"), "-keyout", filepath.Join(root, "etc/ssl/private/ssl-cert-snakeoil.key"))
	// A corporate CA copied in by hand, and one installed by a package.
	caCnf := filepath.Join(t.TempDir(), "ca.cnf")
	storetest.Write(t, caCnf, "[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=v3\n[dn]\nCN=%s\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
	for _, name := range []string{"by-hand-ca", "packaged-ca"} {
		c := strings.ReplaceAll(mustRead(t, caCnf), "%s", name)
		storetest.Write(t, caCnf+name, c)
		storetest.Run(t, "openssl", "req", "-config", caCnf+name, "-new", "-x509", "-days", "30", "-nodes",
			"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", filepath.Join(certs, name+".pem"), "-keyout", filepath.Join(t.TempDir(), "k"))
	}
	storetest.Write(t, filepath.Join(root, "var/lib/dpkg/info/corp-ca.list"), "/.\n/etc\n/etc/ssl/certs/packaged-ca.pem\n")
	storetest.Run(t, "openssl", "rehash", certs)
	before := storetest.Tree(t, root)

	rep := audit(t, root)
	var flagged []string
	for _, f := range rep.Flagged() {
		flagged = append(flagged, f.Subject)
	}
	if got := strings.Join(flagged, ","); strings.Contains(got, "mailhost") || !strings.Contains(got, "by-hand-ca") {
		t.Fatalf("flagged: %v", flagged)
	}
	plan := mustPlan(t, rep, root, true)
	if len(plan.Steps) != 1 {
		t.Fatalf("plan: %+v", plan.Steps)
	}
	d := plan.Steps[0].Description
	if strings.Contains(d, "snakeoil") || !strings.Contains(d, "remove /etc/ssl/certs/by-hand-ca.pem") || !strings.Contains(d, "keep /etc/ssl/certs/packaged-ca.pem (installed by corp-ca)") {
		t.Fatalf("plan: %s", d)
	}
	if _, err := Apply(context.Background(), plan, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"ssl-cert-snakeoil.pem", "packaged-ca.pem"} {
		if _, err := os.Stat(filepath.Join(certs, keep)); err != nil {
			t.Errorf("%s removed: %v", keep, err)
		}
	}
	if err := undo(root); err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, root)); len(d) != 0 {
		t.Fatalf("undo: %v", d)
	}
}

// Issue 9 item 10: a root that does not exist is an error, never an empty
// (clean) audit.
func TestReadMissingRoot(t *testing.T) {
	_, err := truststore.Read(truststore.Options{Root: filepath.Join(t.TempDir(), "nonexistent")})
	var re *truststore.RootError
	if !errors.As(err, &re) {
		t.Fatalf("Read of a missing root: %v", err)
	}
}

// The journal's parent holds update's active list, which every user reads:
// apply makes it 0755 and keeps only the journal's own folders private.
func TestApplyJournalParentReadable(t *testing.T) {
	f := storetest.New(t)
	if err := os.RemoveAll(filepath.Join(f.Root, "var/lib/mitmguard")); err != nil {
		t.Fatal(err)
	}
	applyAll(t, f.Root)
	for p, want := range map[string]os.FileMode{
		"var/lib/mitmguard":                0o755,
		"var/lib/mitmguard/distrust":       0o700,
		"var/lib/mitmguard/distrust/blobs": 0o700,
	} {
		fi, err := os.Stat(filepath.Join(f.Root, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s is %o, want %o", p, got, want)
		}
	}
}
