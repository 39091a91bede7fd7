package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostile builds a root whose links all point out of it, at a folder
// holding a secret file, in the three shapes an image can use.
func hostile(t *testing.T) (root, outside string) {
	t.Helper()
	outside = t.TempDir()
	root = t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o644))
	relOut, err := filepath.Rel(filepath.Join(root, "etc"), outside)
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	// 1. a relative link with ".." past the root
	must(t, os.Symlink(relOut, filepath.Join(root, "etc", "rel")))
	// 2. an absolute link in an intermediate component
	must(t, os.Symlink(outside, filepath.Join(root, "etc", "abs")))
	// 3. a link to the host's root, then down
	must(t, os.Symlink("/", filepath.Join(root, "etc", "slash")))
	return root, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadsStayInRoot(t *testing.T) {
	root, outside := hostile(t)
	f, err := Open(root)
	must(t, err)
	defer f.Close()
	for _, p := range []string{"/etc/rel/secret", "/etc/abs/secret", "/etc/slash" + outside + "/secret", "/../../../../" + outside + "/secret"} {
		if data, err := f.ReadFile(p, 1<<20); err == nil || strings.Contains(string(data), "host secret") {
			t.Errorf("%s: read %q, %v: escaped the root", p, data, err)
		}
		if files := f.WalkFiles(filepathDir(p), func(string) bool { return true }, func(string, error) {}); len(files) != 0 {
			t.Errorf("walk %s found %v outside the root", filepathDir(p), files)
		}
	}
	// The same links resolve to the image's own files, as a chroot would.
	must(t, os.MkdirAll(filepath.Join(root, outside), 0o755))
	must(t, os.WriteFile(filepath.Join(root, outside, "secret"), []byte("image file"), 0o644))
	for _, p := range []string{"/etc/abs/secret", "/etc/slash" + outside + "/secret"} {
		if data, err := f.ReadFile(p, 1<<20); err != nil || string(data) != "image file" {
			t.Errorf("%s: %q, %v: want the image's own file", p, data, err)
		}
	}
	if got, _ := f.Glob("/etc/*/secret"); strings.Join(got, ",") != "/etc/abs/secret" {
		t.Errorf("glob: %v", got)
	}
}

func filepathDir(p string) string { return filepath.Dir(p) }

func TestWritesStayInRoot(t *testing.T) {
	root, outside := hostile(t)
	f, err := Open(root)
	must(t, err)
	defer f.Close()
	for _, p := range []string{"/etc/rel/secret", "/etc/abs/secret", "/etc/slash" + outside + "/secret"} {
		f.WriteFile(p, []byte("pwned"), 0o644)
		f.Remove(p)
		f.RemoveAll(p)
		f.Chmod(p, 0o777)
		f.MkdirAll(p+"/x", 0o755)
	}
	f.RemoveAll("/etc/abs/")
	if data, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(data) != "host secret" {
		t.Fatalf("the file outside the root was changed: %q, %v", data, err)
	}
	if fi, _ := os.Stat(filepath.Join(outside, "secret")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode outside changed: %v", fi.Mode())
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Fatalf("entries outside the root: %v", ents)
	}
	// Removing a link removes the link.
	must(t, f.Remove("/etc/abs"))
	if _, err := os.Lstat(filepath.Join(root, "etc", "abs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link not removed: %v", err)
	}
	if err := f.RemoveAll("/"); err == nil {
		t.Error("removing the root was accepted")
	}
}

// Two links to ".." in a folder multiply the paths exponentially; each
// folder is walked once.
func TestWalkLinkLoops(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "certs")
	must(t, os.MkdirAll(filepath.Join(d, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(d, "sub", "a.crt"), nil, 0o644))
	for _, n := range []string{"x", "y", "sub/z"} {
		must(t, os.Symlink("..", filepath.Join(d, n)))
	}
	must(t, os.Symlink("/certs", filepath.Join(d, "sub", "w")))
	must(t, os.Symlink("loop", filepath.Join(d, "loop")))
	f, err := Open(root)
	must(t, err)
	defer f.Close()
	var problems []string
	var loopErr error
	files := f.WalkFiles("/certs", func(string) bool { return true }, func(p string, err error) {
		problems = append(problems, p+": "+err.Error())
		loopErr = err
	})
	if strings.Join(files, ",") != "/certs/sub/a.crt" {
		t.Errorf("files %v", files)
	}
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "/certs/loop: ") || !errors.Is(loopErr, ErrSymlinkLoop) {
		t.Errorf("problems %v (%v)", problems, loopErr)
	}
}

func TestWalkBudget(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "d")
	must(t, os.MkdirAll(d, 0o755))
	for i := range 3 {
		must(t, os.Mkdir(filepath.Join(d, string(rune('a'+i))), 0o755))
	}
	f, err := Open(root)
	must(t, err)
	defer f.Close()
	work := 0
	f.walkBudget = 2
	var got error
	f.WalkFiles("/d", func(string) bool { work++; return true }, func(_ string, err error) { got = err })
	if !errors.Is(got, ErrTooMuchWork) {
		t.Errorf("budget not enforced: %v", got)
	}
}

func TestOpenMissingRoot(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nonexistent")); err == nil {
		t.Fatal("a missing root opened")
	}
}

// A root given through a link of this machine (/tmp -> /private/tmp) is
// the same root for HostEscapes: links inside it are not escapes.
func TestHostEscapesRootThroughLink(t *testing.T) {
	real := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(real, "certs"), 0o755))
	must(t, os.WriteFile(filepath.Join(real, "certs", "a.pem"), nil, 0o644))
	must(t, os.Symlink(filepath.Join(real, "certs", "a.pem"), filepath.Join(real, "certs", "b.pem")))
	out := t.TempDir()
	must(t, os.Symlink(out, filepath.Join(real, "certs", "out")))
	via := filepath.Join(t.TempDir(), "via")
	must(t, os.Symlink(real, via))
	f, err := Open(via)
	must(t, err)
	defer f.Close()
	got, err := f.HostEscapes([]string{"/certs"})
	must(t, err)
	if strings.Join(got, ",") != "/certs/out" {
		t.Errorf("escapes %v, want only /certs/out", got)
	}
}

// FuzzResolve: link targets in an image are outside bytes. Whatever links
// a tree holds, a path resolves inside the root and a read never returns a
// file outside it.
func FuzzResolve(f *testing.F) {
	f.Add("../../../../secret", "/etc/x", "x/secret")
	f.Add("/", "..", "a/../../b/secret")
	f.Add("a", "a", "a/secret")
	f.Fuzz(func(t *testing.T, target1, target2, p string) {
		if strings.ContainsRune(target1+target2+p, 0) || target1 == "" || target2 == "" || len(target1+target2+p) > 512 {
			return
		}
		outside := t.TempDir()
		must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o644))
		root := t.TempDir()
		must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
		os.Symlink(strings.ReplaceAll(target1, "OUT", outside), filepath.Join(root, "etc", "x"))
		os.Symlink(strings.ReplaceAll(target2, "OUT", outside), filepath.Join(root, "a"))
		fsys, err := Open(root)
		must(t, err)
		defer fsys.Close()
		for _, q := range []string{p, "/etc/" + p, strings.ReplaceAll(p, "OUT", outside)} {
			if r, err := fsys.Resolve(q); err == nil {
				if r != Clean(r) || !strings.HasPrefix(fsys.Real(r)+"/", root+"/") {
					t.Fatalf("%q resolved to %q, outside the root", q, r)
				}
			}
			if data, err := fsys.ReadFile(q, 1<<10); err == nil && string(data) == "host secret" {
				t.Fatalf("%q read the host's file", q)
			}
		}
	})
}

// More folders than are kept open: every file is still read, and the open
// folders stay bounded.
func TestManyFolders(t *testing.T) {
	root := t.TempDir()
	for i := range 3 * maxOpenDirs {
		d := filepath.Join(root, "d", strings.Repeat("x", 1+i%7)+string(rune('a'+i%26))+filepath.Base(t.TempDir()))
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644))
	}
	f, err := Open(root)
	must(t, err)
	defer f.Close()
	files := f.WalkFiles("/d", func(string) bool { return true }, func(p string, err error) { t.Errorf("%s: %v", p, err) })
	for _, p := range files {
		if data, err := f.ReadFile(p, 10); err != nil || string(data) != "x" {
			t.Fatalf("%s: %q %v", p, data, err)
		}
	}
	if len(files) != 3*maxOpenDirs || len(f.dirs) > maxOpenDirs {
		t.Errorf("%d files, %d folders open", len(files), len(f.dirs))
	}
}

// Every refusal of the tree is a *PathError naming the operation and the
// device path, whose Err is a Reason a caller can match without reading
// the text; the text is the one earlier releases printed.
func TestRefusalsAreTyped(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc", "dir"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc", "file"), nil, 0o644))
	must(t, os.Symlink("loop", filepath.Join(root, "etc", "loop")))
	must(t, os.Symlink("file", filepath.Join(root, "etc", "link")))
	must(t, os.Symlink("/nowhere", filepath.Join(root, "etc", "dangling")))
	f, err := Open(root)
	must(t, err)
	defer f.Close()
	f.walkBudget = 2

	for _, tt := range []struct {
		op, path string
		reason   Reason
		text     string
		do       func() error
	}{
		{"resolve", "/etc/loop", ErrSymlinkLoop, "too many levels of symbolic links",
			func() error { _, err := f.Stat("etc/loop"); return err }},
		{"glob", "/etc/*", ErrTooMuchWork, "too many directory entries (a hostile or looping tree): the rest is not read",
			func() error { _, err := f.Glob("/etc/*"); return err }},
		{"read", "/etc/dir", ErrNotRegular, "not a regular file",
			func() error { _, err := f.ReadFile("/etc/dir", 1<<20); return err }},
		{"chmod", "/etc/link", ErrIsLink, "is a link",
			func() error { return f.Chmod("etc/link", 0o600) }},
		{"mkdir", "/etc/dangling", ErrLinkInTheWay, "a dangling link is in the way",
			func() error { _, err := f.MkdirAll("/etc/dangling/sub", 0o755); return err }},
		{"remove", "/", ErrRemoveRoot, "refusing to remove the root",
			func() error { return f.RemoveAll("etc/..") }},
	} {
		err := tt.do()
		var pe *PathError
		var r Reason
		if !errors.As(err, &pe) || !errors.As(err, &r) || !errors.Is(err, tt.reason) {
			t.Errorf("%s %s: %v (%T), want a *PathError with reason %d", tt.op, tt.path, err, err, tt.reason)
			continue
		}
		if pe.Op != tt.op || pe.Path != tt.path || r != tt.reason {
			t.Errorf("%s %s: got op %q path %q reason %d", tt.op, tt.path, pe.Op, pe.Path, r)
		}
		if want := tt.op + " " + tt.path + ": " + tt.text; err.Error() != want {
			t.Errorf("text %q, want %q", err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "etc")); err != nil {
		t.Errorf("a refused removal removed: %v", err)
	}
}
