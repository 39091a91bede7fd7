package distrust

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/storetest"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// These tests attack truststore as a hostile disk image would (issue 9):
// every tree is built under t.TempDir(), and a folder "outside" stands for
// the machine the audit or distrust runs on.

// Issue 9 item 3: a folder link out of the image never makes apply write or
// delete on the host. Links that update-ca-certificates would follow out of
// the root refuse the step before anything changes.
func TestApplyRefusesHostLinksForTools(t *testing.T) {
	testtool.Need(t, "update-ca-certificates", "ca-certificates")
	testtool.Need(t, "openssl", "openssl")
	h := storetest.NewHost(t)
	root := t.TempDir()
	// The image's own copy at the same path as the host folder, reached
	// through an absolute link, and one reached through a relative link
	// that climbs past the root.
	storetest.Write(t, filepath.Join(root, h.Dir, "qaznet.crt"), storetest.PEMOf(t, "kz-2019-qaznet"))
	storetest.Symlink(t, h.Dir, filepath.Join(root, debianLocal, "abs"))
	storetest.Symlink(t, strings.Repeat("../", 12)+strings.TrimPrefix(h.Dir, "/"), filepath.Join(root, debianLocal, "rel"))
	if err := os.MkdirAll(filepath.Join(root, debianCerts), 0o755); err != nil {
		t.Fatal(err)
	}
	before := storetest.Tree(t, root)

	rep := audit(t, root)
	if !rep.TrustsKnownInterception() {
		t.Fatal("the image's root was not found through the links")
	}
	p := mustPlan(t, rep, root, false)
	_, err := Apply(context.Background(), p, ApplyOptions{})
	var hl *HostLinksError
	if !errors.As(err, &hl) || strings.Join(hl.Links, ",") != "/usr/local/share/ca-certificates/abs,/usr/local/share/ca-certificates/rel" {
		t.Fatalf("apply: %v, want a refusal naming both links", err)
	}
	h.Unchanged(t)
	if d := storetest.Diff(before, storetest.Tree(t, root)); len(d) != 0 {
		t.Fatalf("a refused apply changed the image: %v", d)
	}
}

// certutil is given the profile folder and follows its links as this
// machine does: a cert9.db that links out of the image refuses the step,
// and the host's database is not touched.
func TestApplyRefusesNSSLinkOut(t *testing.T) {
	f := storetest.New(t)
	h := storetest.NewHost(t)
	profile := filepath.Join(f.Root, "home/alice/.mozilla/firefox/abcd1234.default-release")
	hostDB := filepath.Join(h.Dir, "cert9.db")
	// The host's database, and the image's own copy at the same path (what
	// the audit reads, inside the root).
	if err := os.MkdirAll(filepath.Join(f.Root, h.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{hostDB, filepath.Join(f.Root, hostDB)} {
		if out, err := exec.Command("cp", "-a", filepath.Join(profile, "cert9.db"), dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	h = storetest.NewHostAt(t, h.Dir)
	if err := os.Remove(filepath.Join(profile, "cert9.db")); err != nil {
		t.Fatal(err)
	}
	storetest.Symlink(t, hostDB, filepath.Join(profile, "cert9.db"))
	before := storetest.Tree(t, f.Root)
	_, err := Apply(context.Background(), mustPlan(t, audit(t, f.Root), f.Root, false), ApplyOptions{})
	var hl *HostLinksError
	if !errors.As(err, &hl) || !strings.Contains(strings.Join(hl.Links, ","), "abcd1234.default-release/cert9.db") {
		t.Fatalf("apply: %v, want a refusal naming the profile's cert9.db", err)
	}
	h.Unchanged(t)
	if d := storetest.Diff(before, storetest.Tree(t, f.Root)); len(d) != 0 {
		t.Fatalf("a refused apply changed the image: %v", d)
	}
}

// Issue 9 item 3, the write side: the p11-kit blocklist folder of the image
// is a link to a host folder; the distrust writes into the image's own
// folder of that name, and undo restores the image exactly.
func TestApplyThroughFolderLink(t *testing.T) {
	h := storetest.NewHost(t)
	root := p11kitTree(t)
	storetest.Symlink(t, h.Dir, filepath.Join(root, "etc/pki/ca-trust/source/blocklist"))
	if err := os.MkdirAll(filepath.Join(root, h.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	before := storetest.Tree(t, root)
	applyAll(t, root)
	h.Unchanged(t)
	if audit(t, root).TrustsKnownInterception() {
		t.Error("still trusted after apply")
	}
	if files, _ := filepath.Glob(filepath.Join(root, h.Dir, "mitmguard-*.pem")); len(files) != 1 {
		t.Errorf("blocklist files in the image: %v", files)
	}
	if err := undo(root); err != nil {
		t.Fatal(err)
	}
	h.Unchanged(t)
	if d := storetest.Diff(before, storetest.Tree(t, root)); len(d) != 0 {
		t.Fatalf("undo did not restore the image: %v", d)
	}
}

// p11kitTree is an image with the 2024 ISCA root as a p11-kit anchor: its
// distrust writes only files (no tool runs for an image).
func p11kitTree(t *testing.T) string {
	root := t.TempDir()
	storetest.Write(t, filepath.Join(root, "etc/pki/ca-trust/source/anchors/isca.pem"), storetest.PEMOf(t, "kz-2024-isca"))
	return root
}

func applyAll(t *testing.T, root string) {
	t.Helper()
	if _, err := Apply(context.Background(), mustPlan(t, audit(t, root), root, false), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Issue 9 item 1: a journal shipped in an image that names paths out of the
// root, or blobs that do not match, is refused and nothing changes.
func TestUndoRefusesHostileJournal(t *testing.T) {
	h := storetest.NewHost(t)
	victim := filepath.Join(h.Dir, "victim")
	sum := strings.Repeat("ab", 32)
	step := func(paths []string, items ...fileState) journalEntry {
		return journalEntry{State: "done", Paths: paths, Before: items, After: items}
	}
	cases := map[string]struct {
		j    any
		want string
	}{
		"version 1 with absolute paths": {map[string]any{"version": 1, "root": "/", "steps": []any{
			map[string]any{"state": "done", "snapshot": []any{map[string]any{"path": h.Dir, "type": "absent"}}}}}, "version 1"},
		"absolute path":         {journal{Version: 2, Root: "/mnt", Steps: []journalEntry{step([]string{victim}, fileState{Path: victim, Type: "absent"})}}, "absolute path"},
		"climbing path":         {journal{Version: 2, Root: "/mnt", Steps: []journalEntry{step([]string{"../../../../../../.." + victim}, fileState{Path: "../../../../../../.." + victim, Type: "absent"})}}, "climbs out"},
		"item outside its step": {journal{Version: 2, Root: "/mnt", Steps: []journalEntry{step([]string{"etc/ssl"}, fileState{Path: "etc/passwd", Type: "absent"})}}, "outside the paths"},
		"the whole root":        {journal{Version: 2, Root: "/mnt", Steps: []journalEntry{step([]string{"."}, fileState{Path: ".", Type: "absent"})}}, "whole root"},
		"relative root":         {journal{Version: 2, Root: "mnt/../x", Steps: []journalEntry{}}, "not an absolute clean path"},
		"bad mode":              {journal{Version: 2, Root: "/mnt", Steps: []journalEntry{step([]string{"etc/x"}, fileState{Path: "etc/x", Type: "file", SHA256: sum, Mode: 1 << 31})}}, "mode"},
		"blob missing":          {journal{Version: 2, Root: "/mnt", Steps: []journalEntry{step([]string{"etc/x"}, fileState{Path: "etc/x", Type: "file", SHA256: sum, Mode: 0o644})}}, "backup of /etc/x is missing"},
		"journal folder":        {journal{Version: 2, Root: "/mnt", Steps: []journalEntry{step([]string{"var/lib"}, fileState{Path: "var/lib", Type: "absent"})}}, "journal itself"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			storetest.Symlink(t, h.Dir, filepath.Join(root, "etc/ssl"))
			data, _ := json.Marshal(c.j)
			storetest.Write(t, filepath.Join(root, JournalDir, "journal.json"), string(data))
			before := storetest.Tree(t, root)
			err := undo(root)
			var je *JournalError
			if !errors.As(err, &je) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("undo: %v, want a JournalError about %q", err, c.want)
			}
			h.Unchanged(t)
			if d := storetest.Diff(before, storetest.Tree(t, root)); len(d) != 0 {
				t.Errorf("a refused journal changed the root: %v", d)
			}
		})
	}

	// A blob that does not match its hash is refused.
	root := p11kitTree(t)
	applyAll(t, root)
	data, _ := os.ReadFile(filepath.Join(root, JournalDir, "journal.json"))
	j, err := parseJournal(data)
	if err != nil {
		t.Fatal(err)
	}
	// Give the step a file to restore, whose blob is then tampered with.
	j.Steps[0].Before = append(j.Steps[0].Before, fileState{Path: j.Steps[0].Paths[0] + "/x.pem", Type: "file", SHA256: sum, Mode: 0o644})
	b, _ := json.Marshal(j)
	storetest.Write(t, filepath.Join(root, JournalDir, "journal.json"), string(b))
	storetest.Write(t, filepath.Join(root, JournalDir, "blobs", sum), "not what the hash says")
	if err := undo(root); err == nil || !strings.Contains(err.Error(), "does not match its hash") {
		t.Fatalf("tampered blob: %v", err)
	}
}

// Issue 9 item 2: undo after the admin changed or added files since apply
// stops with the list, unless forced; after the image moved, undo works
// under the new root and leaves the old location alone.
func TestUndoDetectsChanges(t *testing.T) {
	root := p11kitTree(t)
	before := storetest.Tree(t, root)
	applyAll(t, root)
	block := filepath.Join(root, "etc/pki/ca-trust/source/blocklist")
	storetest.Write(t, filepath.Join(block, "corporate.pem"), storetest.Mozilla(1))
	changed := storetest.Tree(t, root)

	err := undo(root)
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Conflicts) != 1 || ce.Conflicts[0].Path != "/etc/pki/ca-trust/source/blocklist/corporate.pem" {
		t.Fatalf("undo over the admin's new file: %v", err)
	}
	if d := storetest.Diff(changed, storetest.Tree(t, root)); len(d) != 0 {
		t.Fatalf("a refused undo changed files: %v", d)
	}
	res, err := Undo(root, UndoOptions{Force: true})
	if err != nil || len(res.Forced) != 1 {
		t.Fatalf("forced undo: %+v, %v", res, err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, root)); len(d) != 0 {
		t.Fatalf("forced undo: %v", d)
	}

	// Moved: apply, copy the image elsewhere, undo there.
	applyAll(t, root)
	moved := filepath.Join(t.TempDir(), "img")
	if out, err := exec.Command("cp", "-a", root, moved).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	oldAfter := storetest.Tree(t, root)
	res, err = Undo(moved, UndoOptions{})
	if err != nil || res.Moved != root {
		t.Fatalf("undo of the moved image: %+v, %v", res, err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, moved)); len(d) != 0 {
		t.Errorf("moved image not restored: %v", d)
	}
	if d := storetest.Diff(oldAfter, storetest.Tree(t, root)); len(d) != 0 {
		t.Errorf("undo of the moved image touched the old location: %v", d)
	}
}

// Issue 9 item 3: the snapshot covers exactly what apply changes. A
// certificate reached through a folder link, itself a link, is removed as a
// link; undo brings that link back.
func TestUndoRestoresRemovedLinkThroughFolderLink(t *testing.T) {
	testtool.Need(t, "update-ca-certificates", "ca-certificates")
	testtool.Need(t, "openssl", "openssl")
	root := t.TempDir()
	storetest.Write(t, filepath.Join(root, "srv/certs/qaznet.crt"), storetest.PEMOf(t, "kz-2019-qaznet"))
	storetest.Symlink(t, "../../srv/certs/qaznet.crt", filepath.Join(root, "opt/kz/qaznet.crt"))
	storetest.Symlink(t, "../../../../opt/kz", filepath.Join(root, debianLocal, "kz"))
	if err := os.MkdirAll(filepath.Join(root, debianCerts), 0o755); err != nil {
		t.Fatal(err)
	}
	before := storetest.Tree(t, root)
	applyAll(t, root)
	if _, err := os.Lstat(filepath.Join(root, "opt/kz/qaznet.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link was not removed: %v", err)
	}
	if err := undo(root); err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, root)); len(d) != 0 {
		t.Fatalf("undo: %v", d)
	}
}
