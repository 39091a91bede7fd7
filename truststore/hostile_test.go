package truststore

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/storetest"
)

// These tests attack truststore as a hostile disk image would (issue 9):
// every tree is built under t.TempDir(), and a folder "outside" stands for
// the machine the audit runs on.

// Issue 9 item 4: audit --root reads nothing outside the root, for each of
// the three shapes of link.
func TestAuditConfinedToRoot(t *testing.T) {
	h := storetest.NewHost(t)
	for name, build := range map[string]func(root string){
		"relative link climbing past the root": func(root string) {
			local := filepath.Join(root, DebianLocalDir)
			rel, _ := filepath.Rel(local, filepath.Join(h.Dir, "qaznet.crt"))
			storetest.Symlink(t, "../../../../../../../../.."+strings.Repeat("/..", 5)+"/"+strings.TrimPrefix(filepath.Join(local, rel), "/"), filepath.Join(local, "rel.crt"))
			storetest.Symlink(t, rel, filepath.Join(local, "rel2.crt"))
		},
		"absolute link in an intermediate component": func(root string) {
			storetest.Symlink(t, h.Dir, filepath.Join(root, "etc/pki"))
			storetest.Write(t, filepath.Join(root, "etc/pki-real/ca-trust/source/anchors/public.pem"), storetest.Mozilla(0))
		},
		"walked folder link": func(root string) {
			storetest.Write(t, filepath.Join(root, DebianLocalDir, "public.crt"), storetest.Mozilla(0))
			storetest.Symlink(t, h.Dir, filepath.Join(root, DebianLocalDir, "dir"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			build(root)
			rep := audit(t, root)
			for _, f := range rep.Findings {
				if f.Status != Public {
					t.Errorf("found %s in %s %s: read outside the root", f.Subject, f.Store, f.File)
				}
			}
		})
	}
}

// Issue 9 item 5: two links to ".." in a scanned folder made the walk
// exponential; it ends, and the certificate is found once.
func TestAuditLinkLoops(t *testing.T) {
	root := t.TempDir()
	local := filepath.Join(root, DebianLocalDir)
	storetest.Write(t, filepath.Join(local, "kz/qaznet.crt"), storetest.PEMOf(t, "kz-2019-qaznet"))
	for _, n := range []string{"a", "b", "kz/c", "kz/d"} {
		storetest.Symlink(t, "..", filepath.Join(local, n))
	}
	done := make(chan *Report)
	go func() { done <- audit(t, root) }()
	select {
	case rep := <-done:
		n := 0
		for _, f := range rep.Findings {
			if f.EntryID == "kz-2019-qaznet" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the root was found %d times, want once", n)
		}
	case <-time.After(2 * time.Minute): // a guard against the old hang, not a timing assertion
		t.Fatal("the audit of two links to .. did not end")
	}
}
