package truststore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/mitmguard/mitmguard/internal/atomicfile"
)

// snapItem is one path as it was before a step ran.
type snapItem struct {
	Path   string      `json:"path"` // real path
	Type   string      `json:"type"` // file, symlink, dir, absent
	Mode   fs.FileMode `json:"mode,omitempty"`
	Target string      `json:"target,omitempty"` // symlink target
	Blob   string      `json:"blob,omitempty"`   // content file in the snapshot folder, named by SHA-256
}

// snapshot records paths (files, symlinks, or whole folders, recursively)
// into dir, content-addressed, and returns the manifest. Symlinks are
// recorded as links, never followed, so restoring them is exact.
func snapshot(paths []string, dir string) ([]snapItem, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var items []snapItem
	var add func(p string) error
	add = func(p string) error {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			items = append(items, snapItem{Path: p, Type: "absent"})
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			items = append(items, snapItem{Path: p, Type: "symlink", Target: t})
		case fi.IsDir():
			items = append(items, snapItem{Path: p, Type: "dir", Mode: fi.Mode().Perm()})
			ents, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if err := add(filepath.Join(p, e.Name())); err != nil {
					return err
				}
			}
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			blob := hex.EncodeToString(sum[:])
			if _, err := os.Stat(filepath.Join(dir, blob)); err != nil {
				if err := atomicfile.Write(filepath.Join(dir, blob), data, 0o600, nil); err != nil {
					return err
				}
			}
			items = append(items, snapItem{Path: p, Type: "file", Mode: fi.Mode().Perm(), Blob: blob})
		default:
			return fmt.Errorf("%s: not a file, link or folder; refusing to snapshot it", p)
		}
		return nil
	}
	for _, p := range paths {
		if err := add(p); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// restore puts every path of a manifest back as it was: files byte for byte
// with their mode, links with their target, folders with exactly their old
// entries (what a step added is removed).
func restore(items []snapItem, dir string) error {
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
			if err := os.RemoveAll(it.Path); err != nil {
				return err
			}
		case "dir":
			var extra []string
			filepath.WalkDir(it.Path, func(p string, d fs.DirEntry, err error) error {
				if err == nil && p != it.Path && !want[p] {
					extra = append(extra, p)
					if d.IsDir() {
						return filepath.SkipDir
					}
				}
				return nil
			})
			sort.Sort(sort.Reverse(sort.StringSlice(extra)))
			for _, p := range extra {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
			}
		}
	}
	// Recreate, parents first (the manifest lists a folder before its entries).
	for _, it := range items {
		switch it.Type {
		case "dir":
			if fi, err := os.Lstat(it.Path); err != nil || !fi.IsDir() {
				os.RemoveAll(it.Path)
				if err := os.MkdirAll(it.Path, it.Mode); err != nil {
					return err
				}
			}
			if err := os.Chmod(it.Path, it.Mode); err != nil {
				return err
			}
		case "symlink":
			if t, err := os.Readlink(it.Path); err == nil && t == it.Target {
				continue
			}
			os.RemoveAll(it.Path)
			if err := os.Symlink(it.Target, it.Path); err != nil {
				return err
			}
		case "file":
			data, err := os.ReadFile(filepath.Join(dir, it.Blob))
			if err != nil {
				return fmt.Errorf("snapshot of %s is missing: %w", it.Path, err)
			}
			if cur, err := os.ReadFile(it.Path); err == nil && string(cur) == string(data) {
				if fi, err := os.Lstat(it.Path); err == nil && fi.Mode().IsRegular() {
					if err := os.Chmod(it.Path, it.Mode); err != nil {
						return err
					}
					continue
				}
			}
			if fi, err := os.Lstat(it.Path); err == nil && !fi.Mode().IsRegular() {
				os.RemoveAll(it.Path)
			}
			if err := atomicfile.Write(it.Path, data, it.Mode, nil); err != nil {
				return err
			}
		}
	}
	return nil
}
