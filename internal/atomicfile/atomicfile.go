// Package atomicfile replaces files so that a crash leaves either the old
// content or the new, never a mix: the distrust of trust stores and the
// installation of a downloaded blocklist both depend on it.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Write replaces path with data: a temporary file in the same folder,
// written, synced, then renamed over the old one, and the folder synced.
// beforeRename, if set, runs just before the rename; tests use it to
// interrupt a write at the worst moment.
func Write(p string, data []byte, mode fs.FileMode, beforeRename func() error) error {
	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer root.Close()
	return WriteIn(root, filepath.Base(p), data, mode, beforeRename)
}

// WriteIn is Write for name (slash-separated) inside root: the file's
// folder is taken inside root, and a link in the file's place is replaced,
// not followed.
func WriteIn(root *os.Root, name string, data []byte, mode fs.FileMode, beforeRename func() error) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	// O_EXCL: a link planted under the temporary name is not followed.
	tmp := path.Join(path.Dir(name), "."+path.Base(name)+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer root.Remove(tmp) // a no-op once renamed
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
	if err := root.Rename(tmp, name); err != nil {
		return err
	}
	if d, err := root.Open(path.Dir(name)); err == nil {
		d.Sync() // some file systems refuse to sync a folder; the rename stands
		d.Close()
	}
	return nil
}
