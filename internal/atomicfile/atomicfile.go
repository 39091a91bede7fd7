// Package atomicfile replaces files so that a crash leaves either the old
// content or the new, never a mix: the distrust of trust stores and the
// installation of a downloaded blocklist both depend on it.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data: a temporary file in the same folder,
// written, synced, then renamed over the old one, and the folder synced.
// beforeRename, if set, runs just before the rename; tests use it to
// interrupt a write at the worst moment.
func Write(path string, data []byte, mode fs.FileMode, beforeRename func() error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if beforeRename != nil {
		if err := beforeRename(); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // some file systems refuse to sync a folder; the rename stands
		d.Close()
	}
	return nil
}
