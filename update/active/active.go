// Package active owns the one place where the installed blocklist lives and
// how it is read: mitmguard update writes it there, and every command (check,
// audit, distrust, probe, blocklist) and the guard's default read it from
// there. It depends on nothing but the blocklist package, so that a library
// can read the active list without linking the update machinery.
//
// One location matters: the list is installed by root (a systemd timer) and
// read by users, so a per-user folder would leave every other user on the
// embedded list without a word.
package active

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
)

// DefaultDir holds the installed list, the trusted update metadata and the
// distrust journal: state that must survive a cache purge (losing the trusted
// metadata would lose rollback protection).
const DefaultDir = "/var/lib/mitmguard"

// EnvDir names the environment variable that moves the folder, for a user
// without root who updates a list of their own, or for tests. It must then be
// set for every command, not only for update.
const EnvDir = "MITMGUARD_DIR"

// legacyEnvDir is the variable of earlier releases, still honoured so that an
// existing installation keeps its list.
const legacyEnvDir = "MITMGUARD_CACHE"

// ListFile and StateFile are the names of the installed list and of its
// state inside the folder.
const (
	ListFile  = "active.json"
	StateFile = "state.json"
)

// Dir returns the folder of the active list: $MITMGUARD_DIR, else
// $MITMGUARD_CACHE (earlier releases), else DefaultDir.
func Dir() string {
	for _, env := range []string{EnvDir, legacyEnvDir} {
		if d := os.Getenv(env); d != "" {
			return d
		}
	}
	return DefaultDir
}

// State describes the installed list.
type State struct {
	Version   int       `json:"version"`
	Source    string    `json:"source"`
	Installed time.Time `json:"installed"`
	SHA256    string    `json:"sha256"`
	Entries   int       `json:"entries"`
}

// DamagedError reports an installed list that cannot be read; the embedded
// list is used instead, and the caller should say so.
type DamagedError struct {
	Path string
	Err  error
}

func (e *DamagedError) Error() string {
	if errors.Is(e.Err, fs.ErrPermission) {
		return fmt.Sprintf("cannot read the installed list %s (%v); using the embedded list", e.Path, e.Err)
	}
	return fmt.Sprintf("the installed list %s is damaged (%v); using the embedded list", e.Path, e.Err)
}
func (e *DamagedError) Unwrap() error { return e.Err }

// MovedError reports a list that an earlier release installed in the user's
// cache folder, which is no longer read.
type MovedError struct{ Old, Dir string }

func (e *MovedError) Error() string {
	return fmt.Sprintf("%s was installed by an earlier release and is no longer read: the active list lives in %s; run 'mitmguard update' there (as root) or set %s for every command; using the embedded list",
		e.Old, e.Dir, EnvDir)
}

// legacyList returns the list an earlier release installed in the user's
// cache folder, when the default folder is in use and holds none.
func legacyList(dir string) string {
	if dir != DefaultDir {
		return ""
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	p := filepath.Join(cache, "mitmguard", ListFile)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// Load returns the list in force in dir: the installed list over the
// embedded one, which stays the floor (an embedded entry goes only when a
// newer installed list withdraws it by id). Without an installed list it is
// the embedded list and a nil state. On error the embedded list is returned
// too, so a caller can warn and carry on.
func Load(dir string) (*blocklist.List, *State, error) {
	emb := blocklist.Embedded()
	if dir == "" {
		return emb, nil, nil
	}
	path := filepath.Join(dir, ListFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if old := legacyList(dir); old != "" {
			return emb, nil, &MovedError{Old: old, Dir: dir}
		}
		return emb, nil, nil
	}
	if err != nil {
		return emb, nil, &DamagedError{path, err}
	}
	l, err := blocklist.Parse(data, "installed")
	if err != nil {
		return emb, nil, &DamagedError{path, err}
	}
	st := &State{}
	if sj, err := os.ReadFile(filepath.Join(dir, StateFile)); err == nil {
		json.Unmarshal(sj, st) // the state only describes the list; the list is what counts
	}
	st.Version, st.Entries = l.Version, l.Len()
	floor := emb
	if l.Version > emb.Version && len(l.Withdrawn) > 0 {
		floor = emb.Without(l.Withdrawn)
	}
	merged := blocklist.Merge(l, floor)
	merged.Version, merged.Published, merged.Source = l.Version, l.Published, st.Source
	return merged, st, nil
}

// List returns the list in force in Dir(), or the embedded list when none
// is installed or the installed one is damaged: the default of a library
// that cannot report a warning.
func List() *blocklist.List {
	l, _, _ := Load(Dir())
	return l
}
