package truststore

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/storetest"
)

// Issue 17 item 3: an Android tree with the ISCA root added by the user and
// a system root the user turned off. The ISCA root is known interception,
// trusted; the turned-off root is distrusted in the system store.
func TestAndroidTree(t *testing.T) {
	root := t.TempDir()
	R := func(p string) string { return filepath.Join(root, p) }
	// System files: the `openssl x509 -text` dump, then the PEM block.
	text := "Certificate:\n    Data:\n        Version: 3 (0x2)\n        Serial Number:\n            0a:01:41:42:00:00:01\n    Signature Algorithm: sha256WithRSAEncryption\n"
	storetest.Write(t, R("system/etc/security/cacerts/00000001.0"), text+storetest.Mozilla(0))
	storetest.Write(t, R("apex/com.android.conscrypt/cacerts/00000002.0"), text+storetest.Mozilla(1))
	storetest.Write(t, R("apex/com.android.conscrypt/cacerts/00000003.0"), text+storetest.Mozilla(2))
	isca := blocklist.Embedded().ByID("kz-2020-isca-ca").Cert()
	storetest.Write(t, R("data/misc/user/0/cacerts-added/aabbccdd.0"), string(isca.DER))
	storetest.Write(t, R("data/misc/user/0/cacerts-removed/00000003.0"), storetest.Mozilla(2))

	stores := read(t, root)
	rep := Audit(stores, nil)
	for _, s := range rep.Stores {
		if len(s.Problems) > 0 {
			t.Errorf("%s %s: %v", s.Kind, s.Path, s.Problems)
		}
	}
	if !rep.TrustsKnownInterception() {
		t.Fatal("the user-added ISCA root was not found trusted")
	}
	var known []string
	for _, f := range rep.Findings {
		if f.Status == KnownInterception {
			known = append(known, string(f.Store)+" "+f.File+" "+string(f.Trust)+" "+f.Owner)
		}
	}
	if strings.Join(known, ",") != "android-user-added /data/misc/user/0/cacerts-added/aabbccdd.0 trusted Android user 0" {
		t.Errorf("known interception: %v", known)
	}
	trust := map[string]Trust{}
	for _, s := range stores {
		for _, e := range s.Entries {
			trust[string(s.Kind)+" "+e.File] = e.Trust
		}
	}
	for k, want := range map[string]Trust{
		"android-system /system/etc/security/cacerts/00000001.0":            Trusted,
		"android-system /apex/com.android.conscrypt/cacerts/00000002.0":     Trusted,
		"android-system /apex/com.android.conscrypt/cacerts/00000003.0":     Distrusted,
		"android-user-removed /data/misc/user/0/cacerts-removed/00000003.0": Distrusted,
	} {
		if trust[k] != want {
			t.Errorf("%s: %q, want %q", k, trust[k], want)
		}
	}
}
