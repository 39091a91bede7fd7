package rootfs

import (
	"errors"
	"io/fs"
	"path"
	"syscall"

	"github.com/mitmguard/mitmguard/internal/atomicfile"
)

// The write side: every operation resolves the folders of its path inside
// the root and acts on the last component itself, never through a link.

// WriteFile replaces a file atomically: a temporary file in the same
// folder, written, synced, renamed over the old one. A link in the file's
// place is replaced, not followed.
func (f *FS) WriteFile(dev string, data []byte, perm fs.FileMode) error {
	defer f.forget()
	p, err := f.ResolveParent(dev)
	if err != nil {
		return err
	}
	return atomicfile.WriteIn(f.r, rel(p), data, perm, nil)
}

// Remove removes a file, an empty folder, or a link itself.
func (f *FS) Remove(dev string) error {
	defer f.forget()
	p, err := f.ResolveParent(dev)
	if err != nil {
		return err
	}
	return f.r.Remove(rel(p))
}

// RemoveAll removes a path and what it holds, never following a link; a
// path that does not exist is not an error.
func (f *FS) RemoveAll(dev string) error {
	defer f.forget()
	p, err := f.ResolveParent(dev)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if p == "/" {
		return &PathError{"remove", Clean(dev), ErrRemoveRoot}
	}
	return f.r.RemoveAll(rel(p))
}

// MkdirAll makes a folder and its missing parents, following existing
// links inside the root, and returns its resolved device path.
func (f *FS) MkdirAll(dev string, perm fs.FileMode) (string, error) {
	defer f.forget()
	cur := "/"
	for _, c := range split(Clean(dev)) {
		if c == "" {
			continue
		}
		next := path.Join(cur, c)
		if r, err := f.Resolve(next); err == nil {
			fi, err := f.r.Lstat(rel(r))
			if err != nil {
				return "", err
			}
			if !fi.IsDir() {
				return "", &PathError{"mkdir", next, syscall.ENOTDIR}
			}
			cur = r
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, err := f.r.Lstat(rel(next)); err == nil {
			return "", &PathError{"mkdir", next, ErrLinkInTheWay}
		}
		if err := f.r.Mkdir(rel(next), perm); err != nil {
			return "", err
		}
		cur = next
	}
	return cur, nil
}

// Symlink makes a link at dev pointing to target (written as given).
func (f *FS) Symlink(target, dev string) error {
	defer f.forget()
	p, err := f.ResolveParent(dev)
	if err != nil {
		return err
	}
	return f.r.Symlink(target, rel(p))
}

// Lchown sets the owner and group of a path itself.
func (f *FS) Lchown(dev string, uid, gid int) error {
	p, err := f.ResolveParent(dev)
	if err != nil {
		return err
	}
	return f.r.Lchown(rel(p), uid, gid)
}

// Chmod sets the mode of a file or folder that is not a link.
func (f *FS) Chmod(dev string, mode fs.FileMode) error {
	p, err := f.ResolveParent(dev)
	if err != nil {
		return err
	}
	fi, err := f.r.Lstat(rel(p))
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &PathError{"chmod", Clean(dev), ErrIsLink}
	}
	return f.r.Chmod(rel(p), mode)
}

// ListDir lists a folder that is itself a folder, not a link to one,
// sorted by name.
func (f *FS) ListDir(dev string) ([]fs.DirEntry, error) {
	fi, err := f.Lstat(dev)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &PathError{"list", Clean(dev), syscall.ENOTDIR}
	}
	return f.ReadDir(dev)
}
