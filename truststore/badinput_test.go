package truststore

import (
	"github.com/mitmguard/mitmguard/internal/storetest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
)

// Damaged stores give a clear problem each, and the audit goes on with the
// others: the Qaznet root placed in a healthy store is still found.
func TestBadStores(t *testing.T) {
	root := t.TempDir()
	R := func(p string) string { return filepath.Join(root, p) }
	qaznet := blocklist.Embedded().ByID("kz-2019-qaznet").Certificate
	superfish := blocklist.Embedded().ByID("superfish").Certificate

	// A bundle with garbage between certificates and a damaged block.
	storetest.Write(t, R(DebianBundleFile), qaznet+"this line is not PEM\n"+superfish+
		"-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n"+storetest.Mozilla(0))
	// A corrupt cert9.db.
	storetest.Write(t, R("/root/.pki/nssdb/cert9.db"), "SQLite format 3\x00 but then garbage")
	// A truncated JKS keystore.
	storetest.Write(t, R("/etc/ssl/certs/java/cacerts"), "\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x05\x00\x00\x00\x02\x00")
	// A symlink loop and a dangling link among local certificates.
	local := R(DebianLocalDir)
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("b.crt", filepath.Join(local, "a.crt"))
	os.Symlink("a.crt", filepath.Join(local, "b.crt"))
	os.Symlink("/nowhere/gone.crt", filepath.Join(local, "dangling.crt"))
	storetest.Write(t, filepath.Join(local, "ok.crt"), superfish)
	// A directory where a file is expected.
	os.MkdirAll(R("/etc/pki/ca-trust/source/anchors/folder.pem"), 0o755)

	stores := read(t, root)
	problems := map[Kind]string{}
	for _, s := range stores {
		for _, p := range s.Problems {
			problems[s.Kind] += p.Error() + "\n"
		}
	}
	for kind, want := range map[Kind][]string{
		DebianBundle: {"unreadable data before block 2", "block 3 is not valid PEM"},
		NSS:          {"cert9.db"},
		Java:         {"jks: truncated"},
		DebianLocal:  {"a.crt: too many levels of symbolic links", "dangling.crt"},
	} {
		for _, w := range want {
			if !strings.Contains(problems[kind], w) {
				t.Errorf("%s: problems %q lack %q", kind, problems[kind], w)
			}
		}
	}
	rep := Audit(stores, nil)
	got := map[string]bool{}
	for _, f := range rep.Findings {
		got[string(f.Store)+" "+f.EntryID] = true
	}
	for _, want := range []string{"debian-bundle kz-2019-qaznet", "debian-bundle superfish", "debian-local superfish"} {
		if !got[want] {
			t.Errorf("audit lost %s despite the damage: %v", want, got)
		}
	}
}

func TestParseCertFileFormats(t *testing.T) {
	e := blocklist.Embedded().ByID("superfish")
	der := e.Cert().DER
	if c, p := ParseCertFile(der); len(c) != 1 || len(p) != 0 {
		t.Errorf("DER: %d certs, %v", len(c), p)
	}
	p11 := "[p11-kit-object-v1]\nclass: certificate\nlabel: \"Superfish\"\ntrusted: true\n" + e.Certificate
	if c, p := ParseCertFile([]byte(p11)); len(c) != 1 || len(p) != 0 {
		t.Errorf("p11-kit object: %d certs, %v", len(c), p)
	}
	trusted := strings.ReplaceAll(e.Certificate, "CERTIFICATE", "TRUSTED CERTIFICATE")
	if c, _ := ParseCertFile([]byte(trusted)); len(c) != 1 {
		t.Error("TRUSTED CERTIFICATE block not read")
	}
	if c, p := ParseCertFile([]byte("hello")); len(c) != 0 || len(p) != 1 {
		t.Errorf("garbage: %d certs, %v", len(c), p)
	}
}
