// Package rootfs confines file operations to a device tree under a root
// folder, resolving every path as a chroot would.
//
// mitmguard reads and changes the trust stores of a system mounted or
// unpacked under a folder (--root), which may be a hostile disk image: a
// link /etc/ssl/certs -> / or ../../../../etc inside it must not make a
// root-privileged distrust delete, write or read files of the machine it
// runs on. Every path is therefore a device path ("/etc/ssl/certs"), split
// into components that are resolved one by one inside the root: an absolute
// link target starts again at the root, ".." stops at the root, and at most
// MaxLinkHops links are followed. The resolved path is then used through an
// os.Root, which refuses any link out of the root should the tree change in
// between.
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// MaxLinkHops bounds the links followed in one resolution, as the kernel
// does (ELOOP).
const MaxLinkHops = 40

// MaxWalkEntries bounds the directory entries one walk or glob looks at, so
// a hostile tree (millions of files, links that multiply paths) cannot make
// an audit run for ever.
const MaxWalkEntries = 200000

// Reason is why the tree refused a path or a walk: the ways a hostile tree
// could try to reach out of the root, hide its files, or make the work
// endless. It is the Err of a *PathError, which says which path and which
// operation, so a caller tells the kinds apart with errors.Is (or gets
// the kind with errors.As) instead of reading the text.
type Reason int

// The reasons. Their texts are the messages of earlier releases.
const (
	// ErrSymlinkLoop: a chain of links that does not end within MaxLinkHops.
	ErrSymlinkLoop Reason = iota + 1
	// ErrTooMuchWork: a walk, glob or folder listing past MaxWalkEntries.
	ErrTooMuchWork
	// ErrNotRegular: a read of something other than a regular file (a
	// device, a FIFO that would block, a folder).
	ErrNotRegular
	// ErrIsLink: a change of mode asked of a link, which would act on
	// its target.
	ErrIsLink
	// ErrLinkInTheWay: a dangling link where a folder is to be made.
	ErrLinkInTheWay
	// ErrRemoveRoot: a removal that resolves to the root itself.
	ErrRemoveRoot
)

var reasonText = map[Reason]string{
	ErrSymlinkLoop:  "too many levels of symbolic links",
	ErrTooMuchWork:  "too many directory entries (a hostile or looping tree): the rest is not read",
	ErrNotRegular:   "not a regular file",
	ErrIsLink:       "is a link",
	ErrLinkInTheWay: "a dangling link is in the way",
	ErrRemoveRoot:   "refusing to remove the root",
}

func (r Reason) Error() string {
	if t, ok := reasonText[r]; ok {
		return t
	}
	return fmt.Sprintf("rootfs reason %d", int(r))
}

// PathError says which device path an operation failed on. Err is a
// Reason when the tree itself refused, else the system's error.
type PathError struct {
	Op   string
	Path string // device path: relative to the root, starting with "/"
	Err  error
}

func (e *PathError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// FS is a device tree under a root folder. It serves one goroutine at a
// time.
type FS struct {
	root string // the root folder on this machine, absolute and clean
	// hostRoot is root with this machine's links resolved, to compare
	// with what the kernel resolves (HostEscapes).
	hostRoot string
	r        *os.Root
	// walkBudget is the number of entries a walk or glob may look at
	// (MaxWalkEntries; tests lower it).
	walkBudget int

	// known caches what resolution found for link-free paths: a folder
	// (""), or a link and its target. An audit resolves the same folders
	// thousands of times; every write clears it. A stale entry could only
	// name another path inside the root: os.Root still refuses a way out.
	mu    sync.Mutex
	known map[string]string
	// dirs are open folders (link-free names relative to the root), so
	// that a name in one costs one system call, not one per folder above.
	dirs map[string]*os.Root
}

// in returns the open folder holding a link-free relative name, and the
// name's last component. The folder is opened through the root, so it is
// inside it.
func (f *FS) in(name string) (*os.Root, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || dir == "." {
		return f.r, base, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.dirs[dir]; ok {
		return r, base, nil
	}
	r, err := f.r.OpenRoot(dir)
	if err != nil {
		return nil, "", err
	}
	if f.dirs == nil || len(f.dirs) >= maxOpenDirs {
		// A large tree: start again rather than hold a descriptor per
		// folder (an FS serves one goroutine at a time, so no folder
		// closed here is in use).
		for _, d := range f.dirs {
			d.Close()
		}
		f.dirs = map[string]*os.Root{}
	}
	f.dirs[dir] = r
	return r, base, nil
}

func (f *FS) lstatName(name string) (fs.FileInfo, error) {
	if name == "." {
		return f.r.Lstat(name)
	}
	r, base, err := f.in(name)
	if err != nil {
		return nil, err
	}
	return r.Lstat(base)
}

func (f *FS) readlinkName(name string) (string, error) {
	r, base, err := f.in(name)
	if err != nil {
		return "", err
	}
	return r.Readlink(base)
}

const knownDir = "\x00dir"

// maxOpenDirs bounds the folders kept open, so a hostile tree of many
// folders cannot exhaust the file descriptors.
const maxOpenDirs = 64

func (f *FS) lookup(p string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.known[p]
	return v, ok
}

func (f *FS) remember(p, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.known == nil {
		f.known = map[string]string{}
	}
	f.known[p] = v
}

// forget clears the cache after a change to the tree.
func (f *FS) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known = nil
	for _, r := range f.dirs {
		r.Close()
	}
	f.dirs = nil
}

// Open opens the tree under root ("" or "/" for the running system).
func Open(root string) (*FS, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	host, err := filepath.EvalSymlinks(abs)
	if err != nil {
		host = abs
	}
	return &FS{root: abs, hostRoot: host, r: r, walkBudget: MaxWalkEntries}, nil
}

// Close releases the root folder.
func (f *FS) Close() error {
	f.forget()
	return f.r.Close()
}

// Root is the root folder on this machine.
func (f *FS) Root() string { return f.root }

// IsSystem reports whether the tree is the running system.
func (f *FS) IsSystem() bool { return f.root == "/" }

// Real maps a device path to a path on this machine. Only a path that
// Resolve returned is free of links; give external tools nothing else.
func (f *FS) Real(dev string) string {
	return filepath.Join(f.root, Clean(dev))
}

// Clean makes a device path absolute and clean, with ".." stopped at the
// root.
func Clean(dev string) string { return path.Clean("/" + dev) }

// rel is the name of a device path for os.Root.
func rel(dev string) string {
	r := strings.TrimPrefix(Clean(dev), "/")
	if r == "" {
		return "."
	}
	return r
}

// Resolve follows every link of a device path inside the root and returns
// the device path of its target, free of links.
func (f *FS) Resolve(dev string) (string, error) {
	p, _, err := f.resolve(dev, true, false)
	return p, err
}

// ResolveParent resolves every component but the last, for operations on a
// link itself (remove, readlink, lstat).
func (f *FS) ResolveParent(dev string) (string, error) {
	p, _, err := f.resolve(dev, false, false)
	return p, err
}

// ResolveMissing resolves the components that exist and appends the rest
// as they are: the path a tool will create, free of links.
func (f *FS) ResolveMissing(dev string) (string, error) {
	p, _, err := f.resolve(dev, true, true)
	return p, err
}

// resolve does the work of Resolve, ResolveParent and ResolveMissing; it
// also returns the file info of the last component when it looked at it
// (nil for the root, a cached folder, or an unfollowed last component).
func (f *FS) resolve(dev string, followLast, missingOK bool) (string, fs.FileInfo, error) {
	queue := split(dev)
	var done []string
	var last fs.FileInfo
	hops := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			last = nil
			continue
		}
		cand := append(done[:len(done):len(done)], c)
		if len(queue) == 0 && !followLast {
			done, last = cand, nil
			break
		}
		name := strings.Join(cand, "/")
		if v, ok := f.lookup(name); ok {
			if v == knownDir {
				done, last = cand, nil
				continue
			}
			if hops++; hops > MaxLinkHops {
				return "", nil, &PathError{"resolve", Clean(dev), ErrSymlinkLoop}
			}
			if strings.HasPrefix(v, "/") {
				done = nil
			}
			queue = append(split(v), queue...)
			continue
		}
		fi, err := f.lstatName(name)
		if err != nil && missingOK && errors.Is(err, fs.ErrNotExist) {
			rest := strings.TrimPrefix(path.Clean("/"+strings.Join(queue, "/")), "/")
			return path.Join("/"+strings.Join(cand, "/"), rest), nil, nil
		}
		if err != nil {
			return "", nil, &PathError{"resolve", Clean(dev), err}
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			hops++
			if hops > MaxLinkHops {
				return "", nil, &PathError{"resolve", Clean(dev), ErrSymlinkLoop}
			}
			t, err := f.readlinkName(name)
			if err != nil {
				return "", nil, &PathError{"resolve", Clean(dev), err}
			}
			if strings.HasPrefix(t, "/") {
				done = nil
				// A link written by a tool given root-prefixed paths
				// (update-ca-certificates --etccertsdir DIR/etc/ssl/certs)
				// names the root folder itself: it still means a path
				// inside the root.
				if f.root != "/" && strings.HasPrefix(t, f.root+"/") {
					t = strings.TrimPrefix(t, f.root)
				}
			}
			if t != "" && t != knownDir {
				f.remember(name, t)
			}
			queue = append(split(t), queue...)
			continue
		}
		if len(queue) > 0 && !fi.IsDir() {
			return "", nil, &PathError{"resolve", Clean(dev), syscall.ENOTDIR}
		}
		if fi.IsDir() {
			f.remember(name, knownDir)
		}
		done, last = cand, fi
	}
	return "/" + strings.Join(done, "/"), last, nil
}

func split(p string) []string { return strings.Split(p, "/") }

// Stat returns the file info of a device path after links.
func (f *FS) Stat(dev string) (fs.FileInfo, error) {
	p, fi, err := f.resolve(dev, true, false)
	if err != nil || fi != nil {
		return fi, err
	}
	return f.lstatName(rel(p))
}

// Lstat returns the file info of a device path itself (a link is not
// followed; its folders are).
func (f *FS) Lstat(dev string) (fs.FileInfo, error) {
	p, err := f.ResolveParent(dev)
	if err != nil {
		return nil, err
	}
	return f.lstatName(rel(p))
}

// Readlink returns the target of a link, as written.
func (f *FS) Readlink(dev string) (string, error) {
	p, err := f.ResolveParent(dev)
	if err != nil {
		return "", err
	}
	return f.readlinkName(rel(p))
}

// Exists reports whether a device path exists after links.
func (f *FS) Exists(dev string) bool {
	_, err := f.Stat(dev)
	return err == nil
}

// IsDir reports whether a device path is a folder after links.
func (f *FS) IsDir(dev string) bool {
	fi, err := f.Stat(dev)
	return err == nil && fi.IsDir()
}

// TooLargeError refuses a file larger than a read allows.
type TooLargeError struct {
	Path string
	Max  int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than %d bytes", e.Path, e.Max)
}

// ReadFile reads a regular file, following links inside the root, and
// refuses one larger than max bytes.
func (f *FS) ReadFile(dev string, max int64) ([]byte, error) {
	p, err := f.Resolve(dev)
	if err != nil {
		return nil, err
	}
	dir, base, err := f.in(rel(p))
	if err != nil {
		return nil, err
	}
	fh, err := dir.OpenFile(base, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, &PathError{"read", Clean(dev), ErrNotRegular}
	}
	data, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &TooLargeError{Path: Clean(dev), Max: max}
	}
	return data, nil
}

// ReadDir lists a folder, after links, sorted by name.
func (f *FS) ReadDir(dev string) ([]fs.DirEntry, error) {
	p, err := f.Resolve(dev)
	if err != nil {
		return nil, err
	}
	d, err := f.r.Open(rel(p))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ents, err := d.ReadDir(MaxWalkEntries + 1)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(ents) > MaxWalkEntries {
		return nil, &PathError{"read", Clean(dev), ErrTooMuchWork}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

// Glob expands a device-path pattern (path.Match syntax per component)
// inside the root, sorted. Matches are device paths as found, not resolved.
func (f *FS) Glob(pattern string) ([]string, error) {
	matches := []string{"/"}
	work := 0
	listed := false // the last component was matched in a folder listing
	for _, c := range split(Clean(pattern)) {
		if c == "" {
			continue
		}
		var next []string
		listed = hasMeta(c)
		for _, m := range matches {
			if !hasMeta(c) {
				next = append(next, path.Join(m, c))
				continue
			}
			ents, err := f.ReadDir(m)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if work++; work > f.walkBudget {
					return nil, &PathError{"glob", pattern, ErrTooMuchWork}
				}
				if ok, _ := path.Match(c, e.Name()); ok {
					next = append(next, path.Join(m, e.Name()))
				}
			}
		}
		matches = next
	}
	out := matches[:0]
	for _, m := range matches {
		if listed {
			out = append(out, m)
		} else if _, err := f.Lstat(m); err == nil {
			out = append(out, m) // as filepath.Glob: a link counts, even dangling
		}
	}
	sort.Strings(out)
	return out, nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// fileID is a folder's identity, to walk each folder once however many
// links lead to it.
type fileID struct{ dev, ino uint64 }

// WalkFiles lists the regular files (after links) under a device folder,
// recursively, sorted, as device paths through the folders walked. Each
// folder is walked once (by device and inode), however many links lead to
// it, and at most MaxWalkEntries entries are looked at; what cannot be read
// is reported to problem.
func (f *FS) WalkFiles(dir string, match func(name string) bool, problem func(string, error)) []string {
	var out []string
	seen := map[fileID]bool{}
	work := 0
	var walk func(d string, fi fs.FileInfo) bool
	walk = func(d string, fi fs.FileInfo) bool {
		if id, ok := idOf(fi); ok {
			if seen[id] {
				return true // already walked through another path
			}
			seen[id] = true
		}
		ents, err := f.ReadDir(d)
		if err != nil {
			problem(d, err)
			return true
		}
		for _, e := range ents {
			if work++; work > f.walkBudget {
				problem(d, ErrTooMuchWork)
				return false
			}
			p := path.Join(d, e.Name())
			fi, err := f.Stat(p)
			if err != nil {
				problem(p, err)
				continue
			}
			switch {
			case fi.IsDir():
				if !walk(p, fi) {
					return false
				}
			case fi.Mode().IsRegular() && match(e.Name()):
				out = append(out, p)
			}
		}
		return true
	}
	fi, err := f.Stat(dir)
	if err != nil {
		problem(dir, err)
		return nil
	}
	walk(Clean(dir), fi)
	sort.Strings(out)
	return out
}

// HostEscapes lists the links under the given device paths (recursively,
// through folder links that stay inside) that the machine's kernel would
// follow out of the root. Every read and write of this package stays in the
// root, but an external tool given a real path (update-ca-certificates,
// certutil) resolves links as the host does: a tree with such links must not
// be handed to one.
func (f *FS) HostEscapes(devs []string) ([]string, error) {
	if f.IsSystem() {
		return nil, nil
	}
	under := func(p string) bool {
		return p == f.root || strings.HasPrefix(p, f.root+"/") || p == f.hostRoot || strings.HasPrefix(p, f.hostRoot+"/")
	}
	var out []string
	seen := map[string]bool{}
	var queue []string
	for _, d := range devs {
		if p, err := f.ResolveMissing(d); err == nil {
			queue = append(queue, f.Real(p))
		}
	}
	for work := 0; len(queue) > 0; work++ {
		if work > f.walkBudget {
			return out, ErrTooMuchWork
		}
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			ev, err := filepath.EvalSymlinks(p)
			if err != nil {
				t, _ := os.Readlink(p)
				if !filepath.IsAbs(t) {
					t = filepath.Join(filepath.Dir(p), t)
				}
				ev = filepath.Clean(t)
			}
			if !under(ev) {
				out = append(out, "/"+strings.TrimPrefix(strings.TrimPrefix(p, f.root), "/"))
			} else if err == nil {
				queue = append(queue, ev)
			}
		case fi.IsDir():
			ents, err := os.ReadDir(p)
			if err != nil {
				continue
			}
			for _, e := range ents {
				queue = append(queue, filepath.Join(p, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
