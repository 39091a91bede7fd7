package distrust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/mitmguard/mitmguard/internal/rootfs"
)

// fileState is one path as it was at a moment: before a step ran (with its
// content kept in the journal's blobs) or as the step left it (its hash
// only, to find what changed since).
type fileState struct {
	Path   string `json:"path"` // relative to the root: "etc/ca-certificates.conf"
	Type   string `json:"type"` // file, symlink, dir, absent
	Mode   uint32 `json:"mode,omitempty"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Target string `json:"target,omitempty"` // symlink target
	SHA256 string `json:"sha256,omitempty"` // file content; the blob's name
}

// modeBits are the mode bits a snapshot keeps and restores.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// maxBlobSize bounds one file kept by a snapshot (an NSS database is a few
// MB at most).
const maxBlobSize = 256 << 20

// maxSnapshotSize bounds what one step backs up.
const maxSnapshotSize = 1 << 30

// same reports whether two states of one path are equal.
func (a fileState) same(b fileState) bool { return a == b }

func (a fileState) String() string {
	switch a.Type {
	case "absent":
		return "absent"
	case "symlink":
		return "link to " + a.Target
	case "dir":
		return fmt.Sprintf("folder %04o %d:%d", a.Mode&0o7777, a.UID, a.GID)
	}
	return fmt.Sprintf("file %04o %d:%d sha256 %.12s", a.Mode&0o7777, a.UID, a.GID, a.SHA256)
}

func devPath(rel string) string { return "/" + rel }

func relPath(dev string) string { return strings.TrimPrefix(rootfs.Clean(dev), "/") }

// capture records paths (resolved device paths: files, links, or whole
// folders, recursively, never through a link) in order, a folder before its
// entries. With keep set, each file's content is kept as a blob.
func capture(r rootFS, paths []string, keep func(sum string, data []byte) error) ([]fileState, error) {
	var out []fileState
	var total int64
	var add func(p string) error
	add = func(p string) error {
		if len(out) >= rootfs.MaxWalkEntries {
			return fmt.Errorf("more than %d paths to back up; refusing at %s (a hostile or runaway tree)", rootfs.MaxWalkEntries, p)
		}
		fi, err := r.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			out = append(out, fileState{Path: relPath(p), Type: "absent"})
			return nil
		}
		if err != nil {
			return err
		}
		st := fileState{Path: relPath(p), Mode: uint32(fi.Mode() & modeBits)}
		st.UID, st.GID = owner(fi)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			st.Type, st.Mode = "symlink", 0
			if st.Target, err = r.Readlink(p); err != nil {
				return err
			}
			out = append(out, st)
		case fi.IsDir():
			st.Type = "dir"
			out = append(out, st)
			ents, err := r.ListDir(p)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if err := add(path.Join(p, e.Name())); err != nil {
					return err
				}
			}
		case fi.Mode().IsRegular():
			data, err := r.ReadFile(p, maxBlobSize)
			if err != nil {
				return err
			}
			if total += int64(len(data)); total > maxSnapshotSize {
				return fmt.Errorf("more than %d bytes to back up; refusing (a hostile or runaway tree)", maxSnapshotSize)
			}
			sum := sha256.Sum256(data)
			st.Type, st.SHA256 = "file", hex.EncodeToString(sum[:])
			if keep != nil {
				if err := keep(st.SHA256, data); err != nil {
					return err
				}
			}
			out = append(out, st)
		default:
			return fmt.Errorf("%s: not a file, link or folder; refusing to back it up", p)
		}
		return nil
	}
	for _, p := range paths {
		if err := add(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// restore puts every path of a snapshot back as it was: files byte for byte
// with their mode, owner and group, links with their target, folders with
// exactly their old entries (what a step added is removed). blob returns a
// file's verified content.
func restore(r rootFS, items []fileState, blob func(sum string) ([]byte, error)) error {
	want := map[string]bool{}
	for _, it := range items {
		if it.Type != "absent" {
			want[it.Path] = true
		}
	}
	// Remove what was not there, deepest first.
	for _, it := range items {
		switch it.Type {
		case "absent":
			if err := r.RemoveAll(devPath(it.Path)); err != nil {
				return err
			}
		case "dir":
			extra, err := extraEntries(r, it.Path, want)
			if err != nil {
				return err
			}
			for _, p := range extra {
				if err := r.RemoveAll(devPath(p)); err != nil {
					return err
				}
			}
		}
	}
	// Recreate, parents first (a snapshot lists a folder before its entries).
	for _, it := range items {
		p := devPath(it.Path)
		cur, err := r.Lstat(p)
		switch it.Type {
		case "absent":
			continue
		case "dir":
			if err != nil || !cur.IsDir() {
				if err := r.RemoveAll(p); err != nil {
					return err
				}
				if err := mkdir(r, p); err != nil {
					return err
				}
			}
			if err := r.Chmod(p, fs.FileMode(it.Mode)); err != nil {
				return err
			}
		case "symlink":
			if t, err := r.Readlink(p); err != nil || t != it.Target {
				if err := r.RemoveAll(p); err != nil {
					return err
				}
				if err := r.Symlink(it.Target, p); err != nil {
					return err
				}
			}
		case "file":
			data, err := blob(it.SHA256)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if cur == nil || !cur.Mode().IsRegular() {
				if err := r.RemoveAll(p); err != nil {
					return err
				}
			}
			if old, err := r.ReadFile(p, maxBlobSize); err != nil || !bytes.Equal(old, data) {
				if err := r.WriteFile(p, data, fs.FileMode(it.Mode)&fs.ModePerm); err != nil {
					return err
				}
			}
			if err := r.Chmod(p, fs.FileMode(it.Mode)); err != nil {
				return err
			}
		}
		// The owner last: chown clears setuid and setgid bits.
		if err := r.Lchown(p, it.UID, it.GID); err != nil {
			return err
		}
		if it.Type != "symlink" && it.Mode&uint32(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			if err := r.Chmod(p, fs.FileMode(it.Mode)); err != nil {
				return err
			}
		}
	}
	return nil
}

func mkdir(r rootFS, p string) error {
	_, err := r.MkdirAll(p, 0o700)
	return err
}

// extraEntries lists what is under a folder now and was not in the
// snapshot, deepest first, without following links.
func extraEntries(r rootFS, dir string, want map[string]bool) ([]string, error) {
	var extra []string
	var walk func(d string) error
	walk = func(d string) error {
		ents, err := r.ListDir(devPath(d))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // recreated below
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := path.Join(d, e.Name())
			if !want[p] {
				extra = append(extra, p)
				continue
			}
			if e.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(extra)))
	return extra, nil
}
