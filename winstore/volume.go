package winstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/mitmguard/mitmguard/internal/regf"
)

// The machine hive of a Windows volume, as a path whose every name is matched
// case-insensitively (NTFS is case-insensitive; a mount may show any case).
var softwarePath = []string{"Windows", "System32", "config", "SOFTWARE"}

const ntuserName = "NTUSER.DAT"

// maxUsers bounds the profiles read from one volume.
const maxUsers = 1000

// Volume is what a Windows volume's hives hold.
type Volume struct {
	Stores []*Store
	// Problems are hives that could not be opened or read at all.
	Problems []Problem
}

// IsVolume reports whether fsys looks like a mounted Windows system
// volume: it has Windows/System32/config/SOFTWARE (any case).
func IsVolume(fsys fs.FS) bool {
	_, ok := findCI(fsys, ".", softwarePath...)
	return ok
}

// ReadDir reads the Windows volume mounted at dir, confined to it through
// os.Root: a symbolic link leading outside dir is refused, not followed.
func ReadDir(ctx context.Context, dir string, lim regf.Limits) (*Volume, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ReadFS(ctx, r.FS(), lim)
}

// ReadFS reads the machine SOFTWARE hive and every Users/*/NTUSER.DAT of
// the Windows volume fsys and marks the distrusted certificates. fsys must
// confine reads to the volume (an os.Root's FS does; os.DirFS follows
// symbolic links out of it). A hive that cannot be read is a Problem of
// the Volume; the error is for the volume itself (not a Windows volume, or
// ctx done).
func ReadFS(ctx context.Context, fsys fs.FS, lim regf.Limits) (*Volume, error) {
	sw, ok := findCI(fsys, ".", softwarePath...)
	if !ok {
		return nil, &NotWindowsError{}
	}
	v := &Volume{}
	if stores, err := readHive(fsys, sw, lim, func(h *regf.Hive) []*Store { return ReadSoftware(h, sw) }); err != nil {
		v.Problems = append(v.Problems, Problem{Path: sw, Err: err})
	} else {
		v.Stores = append(v.Stores, stores...)
	}
	for _, u := range users(fsys) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		stores, err := readHive(fsys, u.hive, lim, func(h *regf.Hive) []*Store { return ReadNTUser(h, u.hive, u.name) })
		if err != nil {
			v.Problems = append(v.Problems, Problem{Path: u.hive, Err: err})
			continue
		}
		v.Stores = append(v.Stores, stores...)
	}
	MarkDistrusted(v.Stores)
	return v, nil
}

// NotWindowsError says the folder is not a Windows volume.
type NotWindowsError struct{}

func (*NotWindowsError) Error() string {
	return "winstore: not a Windows volume (no Windows/System32/config/SOFTWARE)"
}

type profile struct{ name, hive string }

// users lists the profiles under Users that have an NTUSER.DAT, including
// Default, whose stores every new account starts with.
func users(fsys fs.FS) []profile {
	dir, ok := findCI(fsys, ".", "Users")
	if !ok {
		return nil
	}
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil
	}
	var out []profile
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if hive, ok := findCI(fsys, path.Join(dir, e.Name()), ntuserName); ok {
			out = append(out, profile{name: e.Name(), hive: hive})
			if len(out) == maxUsers {
				break
			}
		}
	}
	return out
}

// findCI resolves names below the folder base one by one, each matched
// case-insensitively against the folder's entries.
func findCI(fsys fs.FS, base string, names ...string) (string, bool) {
	cur := base
	for _, n := range names {
		ents, err := fs.ReadDir(fsys, cur)
		if err != nil {
			return "", false
		}
		found := false
		for _, e := range ents {
			if strings.EqualFold(e.Name(), n) {
				cur, found = path.Join(cur, e.Name()), true
				break
			}
		}
		if !found {
			return "", false
		}
	}
	return cur, true
}

// NotRegularError refuses a hive path that is not a regular file (a
// device, a FIFO that would block, a folder).
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("winstore: %s is not a regular file (%v)", e.Path, e.Mode)
}

// readHive opens the hive file at name within the limits and reads it.
func readHive(fsys fs.FS, name string, lim regf.Limits, read func(*regf.Hive) []*Store) ([]*Store, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: name, Mode: fi.Mode()}
	}
	max := lim.MaxSize
	if max <= 0 {
		max = regf.DefaultLimits().MaxSize
	}
	if fi.Size() > max {
		return nil, &regf.TooLargeError{Size: fi.Size(), Max: max}
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	size := fi.Size()
	if !ok {
		b, err := io.ReadAll(io.LimitReader(f, max+1))
		if err != nil {
			return nil, err
		}
		ra, size = bytes.NewReader(b), int64(len(b))
	}
	h, err := regf.Open(ra, size, lim)
	if err != nil {
		return nil, err
	}
	stores := read(h)
	if h.Dirty() {
		for _, s := range stores {
			s.Problems = append(s.Problems, Problem{Path: name, Err: errDirty})
		}
	}
	return stores, nil
}

var errDirty = errors.New("winstore: the hive was not cleanly written; changes in its .LOG1/.LOG2 transaction logs are not applied")
