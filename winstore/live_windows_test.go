//go:build windows

package winstore_test

import (
	"context"
	"testing"

	"github.com/mitmguard/mitmguard/winstore"
	"github.com/mitmguard/mitmguard/winstore/winstoretest"
)

// On Windows itself: a test root added to the current user's Disallowed
// store (which, unlike Root, asks no confirmation) is read back live,
// distrusted, and the undo removes it again. It runs on a Windows CI
// runner; Debian 12's wine64 (8.0) cannot start Go 1.26 binaries
// (bcryptprimitives.dll is missing).
func TestLiveApplyUndo(t *testing.T) {
	ctx := context.Background()
	c := cert(t, winstoretest.PrivateRoot(t, "mitmguard live test root"))
	p := &winstore.Plan{Steps: []winstore.Step{{Action: winstore.Add, Location: winstore.User, Store: winstore.Disallowed, Cert: c}}}
	done, err := winstore.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { winstore.Apply(ctx, (&winstore.Plan{Steps: done}).Undo()) })
	found := func() bool {
		stores, err := winstore.ReadLive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stores {
			for _, e := range s.Entries {
				if s.Location == winstore.User && s.IsDisallowed() && e.Cert.SHA256 == c.SHA256 {
					if !e.Distrusted {
						t.Fatal("an entry of Disallowed is not marked distrusted")
					}
					return true
				}
			}
		}
		return false
	}
	if !found() {
		t.Fatal("the added certificate is not read back")
	}
	if _, err := winstore.Apply(ctx, (&winstore.Plan{Steps: done}).Undo()); err != nil {
		t.Fatal(err)
	}
	if found() {
		t.Fatal("the undo left the certificate")
	}
}
