package winstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/mitmguard/mitmguard/internal/regf"
)

// The machine hive of a Windows volume, as a path whose every name is matched
// case-insensitively (NTFS is case-insensitive; a mount may show any case).
var softwarePath = []string{"Windows", "System32", "config", "SOFTWARE"}

const ntuserName = "NTUSER.DAT"

// maxUsers bounds the entries of the Users folder looked at: a real
// machine has a handful of profiles; a hostile image may have millions of
// entries, and the listing stops at the bound rather than reading them all.
const maxUsers = 1000

// maxScan bounds the entries of one folder looked at while matching a name
// case-insensitively (a real System32 has a few thousand).
const maxScan = 1 << 15

// maxProfileScan bounds the entries of one profile folder looked at to
// find its NTUSER.DAT (a real one has a few dozen), so that maxUsers
// hostile profiles cannot make the listing long.
const maxProfileScan = 1024

// VolumeHives bounds the bytes read from all the hives of one volume
// together, in hives' worth of regf.Limits.MaxRead: a hostile hive that
// spends its whole budget, hard-linked as the NTUSER.DAT of maxUsers
// profiles, would otherwise cost maxUsers budgets. A real profile's stores
// cost a small part of one budget, so a machine with many profiles is
// still read whole.
const VolumeHives = 16

// listChunk is how many entries one directory read returns.
const listChunk = 256

// Volume is what a Windows volume's hives hold.
type Volume struct {
	Stores []*Store
	// Problems are hives or folders that could not be read at all; the
	// audit of the volume is then partial.
	Problems []Problem
}

// IsVolume reports whether fsys looks like a mounted Windows system
// volume: it has Windows/System32/config/SOFTWARE (any case).
func IsVolume(fsys fs.FS) bool {
	_, err := findCI(fsys, ".", maxScan, softwarePath...)
	return err == nil
}

// HasWindowsFolder reports whether the root of fsys holds an entry named
// Windows (any case): a volume whose hive cannot be found or read is then
// reported as a problem rather than taken for another system.
func HasWindowsFolder(fsys fs.FS) bool {
	_, err := findCI(fsys, ".", maxScan, softwarePath[0])
	return err == nil
}

// ReadDir reads the Windows volume mounted at dir, confined to it through
// os.Root: a symbolic link leading outside dir is refused, not followed.
func ReadDir(ctx context.Context, dir string, lim regf.Limits) (*Volume, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ReadRoot(ctx, r, lim)
}

// ReadRoot reads the machine SOFTWARE hive and every Users/*/NTUSER.DAT of
// the Windows volume whose root folder r is, and marks the distrusted
// certificates. Every read goes through r, so nothing outside it is
// opened. A hive that cannot be read is a Problem of the Volume; the error
// is for the volume itself (not a Windows volume, or ctx done).
func ReadRoot(ctx context.Context, r *os.Root, lim regf.Limits) (*Volume, error) {
	fsys := volumeFS{r}
	if !HasWindowsFolder(fsys) {
		return nil, &NotWindowsError{}
	}
	v := &Volume{}
	b := newBudget(lim)
	sw, err := findCI(fsys, ".", maxScan, softwarePath...)
	if err != nil {
		v.Problems = append(v.Problems, Problem{Path: path.Join(softwarePath...), Err: err})
	} else if stores, err := b.readHive(r, sw, func(h *regf.Hive) []*Store { return ReadSoftware(h, sw) }); err != nil {
		v.Problems = append(v.Problems, Problem{Path: sw, Err: err})
	} else {
		v.Stores = append(v.Stores, stores...)
	}
	profiles, problems := users(fsys)
	v.Problems = append(v.Problems, problems...)
	for _, u := range profiles {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		stores, err := b.readHive(r, u.hive, func(h *regf.Hive) []*Store { return ReadNTUser(h, u.hive, u.name) })
		if err != nil {
			v.Problems = append(v.Problems, Problem{Path: u.hive, Err: err})
			continue
		}
		v.Stores = append(v.Stores, stores...)
	}
	MarkDistrusted(v.Stores)
	return v, nil
}

// volumeFS is the volume seen through its root, with every open done
// without blocking (openFlags): a FIFO planted where a folder is listed
// (Users, Windows) is then refused as not a folder instead of waiting
// forever for a writer.
type volumeFS struct{ r *os.Root }

func (v volumeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return v.r.OpenFile(name, os.O_RDONLY|openFlags, 0)
}

func (v volumeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return v.r.Stat(name)
}

// NotWindowsError says the folder is not a Windows volume.
type NotWindowsError struct{}

func (*NotWindowsError) Error() string {
	return "winstore: not a Windows volume (no Windows/System32/config/SOFTWARE)"
}

// TooManyEntriesError says a folder holds more entries than a bound lets
// be read: the rest was not looked at.
type TooManyEntriesError struct {
	Path string
	Max  int
}

func (e *TooManyEntriesError) Error() string {
	return fmt.Sprintf("winstore: %s holds more than %d entries (a hostile or damaged volume): the rest is not read", e.Path, e.Max)
}

type profile struct{ name, hive string }

// users lists the profiles under Users that have an NTUSER.DAT, including
// Default, whose stores every new account starts with. At most maxUsers
// entries are listed; beyond that the profiles found so far are returned
// with a TooManyEntriesError problem, as is a profile folder too large to
// look into. A profile that is a link (the "All Users"
// and "Default User" junctions) is an alias, not a profile.
func users(fsys fs.FS) ([]profile, []Problem) {
	dir, err := findCI(fsys, ".", maxScan, "Users")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []Problem{{Path: "Users", Err: err}}
	}
	var problems []Problem
	var out []profile
	var dirs []string
	listErr := list(fsys, dir, maxUsers, func(e fs.DirEntry) bool {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
		return true
	})
	if listErr != nil {
		problems = append(problems, Problem{Path: dir, Err: listErr})
	}
	sort.Strings(dirs)
	for _, name := range dirs {
		hive, err := findCI(fsys, path.Join(dir, name), maxProfileScan, ntuserName)
		switch {
		case err == nil:
			out = append(out, profile{name: name, hive: hive})
		case !errors.Is(err, fs.ErrNotExist):
			// A profile that may have a hive and could not be looked at.
			problems = append(problems, Problem{Path: path.Join(dir, name), Err: err})
		}
	}
	return out, problems
}

// list calls fn for the entries of a folder, in the order the file system
// gives them, reading them a chunk at a time and stopping after max
// entries (a TooManyEntriesError) or when fn returns false.
func list(fsys fs.FS, dir string, max int, fn func(fs.DirEntry) bool) error {
	f, err := fsys.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	rd, ok := f.(fs.ReadDirFile)
	if !ok {
		return &fs.PathError{Op: "readdir", Path: dir, Err: errors.New("not a folder")}
	}
	n := 0
	for {
		ents, err := rd.ReadDir(listChunk)
		for _, e := range ents {
			if n++; n > max {
				return &TooManyEntriesError{Path: dir, Max: max}
			}
			if !fn(e) {
				return nil
			}
		}
		if err == io.EOF || len(ents) == 0 && err == nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// findCI resolves names below the folder base one by one, each matched
// case-insensitively against the folder's entries (the exact spelling is
// tried first, without listing the folder). A folder of more than max
// entries is refused.
func findCI(fsys fs.FS, base string, max int, names ...string) (string, error) {
	cur := base
	for _, n := range names {
		if _, err := fs.Stat(fsys, path.Join(cur, n)); err == nil {
			cur = path.Join(cur, n)
			continue
		}
		found := ""
		err := list(fsys, cur, max, func(e fs.DirEntry) bool {
			if strings.EqualFold(e.Name(), n) {
				found = e.Name()
				return false
			}
			return true
		})
		if err != nil {
			return "", err
		}
		if found == "" {
			return "", &fs.PathError{Op: "find", Path: path.Join(cur, n), Err: fs.ErrNotExist}
		}
		cur = path.Join(cur, found)
	}
	return cur, nil
}

// NotRegularError refuses a hive path that is not a regular file (a
// device, a FIFO, a folder).
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("winstore: %s is not a regular file (%v)", e.Path, e.Mode)
}

// OutsideError refuses a hive reached through a symbolic link that leads
// out of the volume: it is not followed.
type OutsideError struct {
	Path   string
	Target string
	Err    error
}

func (e *OutsideError) Error() string {
	return fmt.Sprintf("winstore: %s is a symbolic link to %s, out of the volume: refused, not followed (%v)", e.Path, e.Target, e.Err)
}

func (e *OutsideError) Unwrap() error { return e.Err }

// openHive opens a hive file through the volume's root. The open does not
// block on a FIFO (openFlags), and the type is checked on the opened file,
// so a file swapped after a check cannot be read in its place.
func openHive(r *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := r.OpenFile(name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		if fi, lerr := r.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 && !errors.Is(err, fs.ErrNotExist) {
			t, _ := r.Readlink(name)
			return nil, nil, &OutsideError{Path: name, Target: t, Err: err}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &NotRegularError{Path: name, Mode: fi.Mode()}
	}
	return f, fi, nil
}

// budget is what is left of a volume's bytes to read (VolumeHives).
type budget struct {
	lim  regf.Limits
	left int64
}

func newBudget(lim regf.Limits) *budget {
	if lim.MaxRead <= 0 {
		lim.MaxRead = regf.DefaultLimits().MaxRead
	}
	return &budget{lim: lim, left: VolumeHives * lim.MaxRead}
}

// readHive opens the hive file at name within the limits, with what is
// left of the volume's budget, and reads it.
func (b *budget) readHive(r *os.Root, name string, read func(*regf.Hive) []*Store) ([]*Store, error) {
	if b.left <= 0 {
		return nil, &regf.LimitError{What: "volume's bytes read", Limit: VolumeHives * b.lim.MaxRead}
	}
	f, fi, err := openHive(r, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lim := b.lim
	lim.MaxRead = min(lim.MaxRead, b.left)
	h, err := regf.Open(f, fi.Size(), lim)
	if err != nil {
		return nil, err
	}
	stores := read(h)
	b.left -= h.BytesRead()
	if h.Dirty() {
		for _, s := range stores {
			s.Problems = append(s.Problems, Problem{Path: name, Err: errDirty})
		}
	}
	return stores, nil
}

var errDirty = errors.New("winstore: the hive was not cleanly written; changes in its .LOG1/.LOG2 transaction logs are not applied")
