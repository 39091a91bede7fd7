package distrust

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/rootfs"
)

// JournalDir is where, under the root, an applied distrust keeps its journal
// and the snapshots that Undo restores.
const JournalDir = "/var/lib/mitmguard/distrust"

const (
	journalFile    = JournalDir + "/journal.json"
	blobDir        = JournalDir + "/blobs"
	journalVersion = 2
	maxJournalSize = 64 << 20
)

// journal records an apply, step by step. It is rewritten atomically after
// every change, so an interrupted apply leaves a journal that names every
// step that may have changed anything. Every path in it is relative to the
// root, so the journal stays true when an image is mounted elsewhere, and
// cannot name a file outside the root it is undone under.
type journal struct {
	Version int            `json:"version"`
	Root    string         `json:"root"` // the root folder the apply was made under
	Started time.Time      `json:"started"`
	Steps   []journalEntry `json:"steps"`
}

type journalEntry struct {
	Step  Step   `json:"step"`
	State string `json:"state"` // started, done
	// Paths are what the step may change, resolved inside the root.
	Paths []string `json:"paths"`
	// Before is every path under Paths before the step; After, as the step
	// left them (set when done), to find changes made since.
	Before []fileState `json:"before"`
	After  []fileState `json:"after,omitempty"`
	// Certs are, for a step on the live Windows stores (instead of
	// paths), the changes made to them in order, with each DER.
	Certs []certChange `json:"cert_changes,omitempty"`
}

// JournalExistsError refuses a second apply before the first is undone.
type JournalExistsError struct{ Path string }

func (e *JournalExistsError) Error() string {
	return fmt.Sprintf("distrust: an earlier distrust was applied and not undone (journal %s): run mitmguard distrust --undo first", e.Path)
}

// NotPermittedError refuses an apply that could not write the stores.
type NotPermittedError struct {
	Path   string
	Reason string
}

func (e *NotPermittedError) Error() string {
	return fmt.Sprintf("distrust: not permitted to change %s: %s", e.Path, e.Reason)
}

// JournalError refuses a journal that is damaged or does not fit the root
// it is undone under: nothing is changed.
type JournalError struct {
	Path   string // device path of the journal
	Reason string
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("distrust: refusing the distrust journal %s: %s", e.Path, e.Reason)
}

// Conflict is a path changed since the apply left it.
type Conflict struct {
	Path string `json:"path"` // device path
	Left string `json:"left"` // as the apply left it
	Now  string `json:"now"`
}

// ConflictError stops an undo that would overwrite or delete work done
// since the apply; UndoOptions.Force undoes anyway.
type ConflictError struct{ Conflicts []Conflict }

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "distrust: %d path(s) changed since the distrust was applied; undo would overwrite them (--force to undo anyway):", len(e.Conflicts))
	for _, c := range e.Conflicts {
		fmt.Fprintf(&b, "\n  %s: left as %s, now %s", c.Path, c.Left, c.Now)
	}
	return b.String()
}

// ErrNoJournal is returned by Undo when there is nothing to undo.
var ErrNoJournal = errors.New("distrust: no distrust journal found: nothing to undo")

// ApplyOptions configure Apply.
type ApplyOptions struct {
	// AfterStep, if set, is called after step i is done and journaled. Tests
	// use it to interrupt an apply between two stores.
	AfterStep func(i int)
}

// Apply carries out the plan's steps that are not manual, each after
// snapshotting what it may change. It returns the steps done.
func Apply(ctx context.Context, p *Plan, opts ApplyOptions) ([]Step, error) {
	fsys, err := rootfs.Open(p.Root)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	r := rootFS{fsys}
	if _, err := r.Lstat(journalFile); err == nil {
		return nil, &JournalExistsError{Path: r.Real(journalFile)}
	}
	if err := checkPermitted(r, p); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(p.Steps, func(st Step) bool { return !st.Manual && st.run != nil }) {
		return nil, nil // nothing to change, nothing to journal
	}
	// Every step's paths are resolved, and its tool checked, before
	// anything changes.
	stepPaths := map[int][]string{}
	for i, st := range p.Steps {
		if st.Manual || st.run == nil {
			continue
		}
		paths, err := changePaths(r, st)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", st.Store, st.StorePath, err)
		}
		if err := checkHostLinks(r, st, paths); err != nil {
			return nil, err
		}
		stepPaths[i] = paths
	}
	// The folder the journal lives in is shared (update keeps the active
	// list there, which every user reads): only the journal's own folders
	// are private.
	if _, err := r.MkdirAll(path.Dir(JournalDir), 0o755); err != nil {
		return nil, &NotPermittedError{Path: r.Real(path.Dir(JournalDir)), Reason: err.Error()}
	}
	if _, err := r.MkdirAll(blobDir, 0o700); err != nil {
		return nil, &NotPermittedError{Path: r.Real(blobDir), Reason: err.Error()}
	}
	j := &journal{Version: journalVersion, Root: r.Root(), Started: time.Now().UTC(), Steps: []journalEntry{}}
	if err := j.write(r); err != nil {
		return nil, err
	}
	keep := func(sum string, data []byte) error {
		if _, err := r.Lstat(blobDir + "/" + sum); err == nil {
			return nil
		}
		return r.WriteFile(blobDir+"/"+sum, data, 0o600)
	}
	var done []Step
	for i, st := range p.Steps {
		if st.Manual || st.run == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
		paths := stepPaths[i]
		before, err := capture(r, paths, keep)
		if err != nil {
			return done, fmt.Errorf("backing up %s: %w", st.StorePath, err)
		}
		e := journalEntry{Step: st, State: "started", Before: before}
		for _, p := range paths {
			e.Paths = append(e.Paths, relPath(p))
		}
		j.Steps = append(j.Steps, e)
		if err := j.write(r); err != nil {
			return done, err
		}
		if err := st.run(ctx, r, runCommand); err != nil {
			return done, fmt.Errorf("%s %s: %w (mitmguard distrust --undo restores what was changed)", st.Store, st.StorePath, err)
		}
		after, err := capture(r, paths, nil)
		if err != nil {
			return done, fmt.Errorf("recording %s after the change: %w", st.StorePath, err)
		}
		last := &j.Steps[len(j.Steps)-1]
		last.State, last.After = "done", after
		if err := j.write(r); err != nil {
			return done, err
		}
		done = append(done, st)
		if opts.AfterStep != nil {
			opts.AfterStep(i)
		}
	}
	return done, nil
}

// changePaths resolves inside the root every path a step may change: a
// folder reached through a link is backed up where it really is, and a path
// that does not exist yet is recorded at its first missing folder, so undo
// removes all that the step created. Nested paths are kept once.
func changePaths(r rootFS, st Step) ([]string, error) {
	var out []string
	for i, c := range append(slices.Clone(st.Changes), st.removes...) {
		p, err := resolveForChange(r, c)
		if i >= len(st.Changes) {
			// A removal removes the path itself, a link as a link.
			p, err = r.ResolveParent(c)
		}
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(p+"/", JournalDir+"/") || strings.HasPrefix(JournalDir+"/", p+"/") {
			return nil, fmt.Errorf("%s holds the distrust journal; refusing to change it", p)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	var kept []string
	for _, p := range slices.Compact(out) {
		if len(kept) > 0 && (kept[len(kept)-1] == "/" || strings.HasPrefix(p, kept[len(kept)-1]+"/")) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, nil
}

func resolveForChange(r rootFS, dev string) (string, error) {
	if p, err := r.Resolve(dev); err == nil {
		return p, nil
	}
	if fi, err := r.Lstat(dev); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return r.ResolveParent(dev) // a dangling link: the link itself
	}
	parent := path.Dir(rootfs.Clean(dev))
	if parent == dev {
		return "", fmt.Errorf("cannot resolve %s", dev)
	}
	p, err := resolveForChange(r, parent)
	if err != nil {
		return "", err
	}
	if _, err := r.Lstat(p); err != nil {
		return p, nil // the missing folder is recorded, not its contents
	}
	return path.Join(p, path.Base(dev)), nil
}

// HostLinksError refuses a step whose tool would follow links out of the
// root: this package resolves every path inside the root, but
// update-ca-certificates, certutil and keytool resolve links as this
// machine does.
type HostLinksError struct {
	Store string
	Links []string // device paths
}

func (e *HostLinksError) Error() string {
	return fmt.Sprintf("distrust: %s: refusing to run its tool: these links point out of the root as this machine resolves them, and the tool would follow them: %s (remove them, or run the distrust on that system itself)",
		e.Store, strings.Join(e.Links, ", "))
}

// checkHostLinks refuses a step that runs a tool over a tree holding links
// out of the root.
func checkHostLinks(r rootFS, st Step, paths []string) error {
	if len(st.Commands) == 0 {
		return nil
	}
	links, err := r.HostEscapes(append(slices.Clone(paths), st.reads...))
	if err == nil && len(links) == 0 {
		return nil
	}
	if err != nil {
		links = append(links, err.Error())
	}
	return &HostLinksError{Store: string(st.Store) + " " + st.StorePath, Links: links}
}

// UndoOptions configure Undo.
type UndoOptions struct {
	// Force restores even paths changed since the apply.
	Force bool
	// List is the blocklist in force (nil: the embedded one): a Windows
	// undo keeps its roots distrusted whatever the journal says.
	List *blocklist.List
}

// UndoResult says what Undo did.
type UndoResult struct {
	Steps []Step
	// Moved is set when the journal was made under another root folder
	// (the image was mounted elsewhere); the paths are relative, and the
	// check of every path as the apply left it confirms the tree.
	Moved string
	// Forced lists the changes made since the apply that --force overwrote.
	Forced []Conflict
	// Kept lists the certificates a Windows undo left distrusted, and why.
	Kept []Kept
	// Windows: the journal was of the running Windows's certificate
	// stores, undone through CryptoAPI (certificates put back, not files
	// restored byte for byte).
	Windows bool
}

// Undo restores, newest first, every file that the journaled apply under
// root backed up, including a step that was interrupted, and then removes
// the journal (on the running Windows: see undoLiveWindows). Before changing anything it refuses a journal that does not
// fit (see parseJournal) and, unless forced, any path changed since the
// apply left it.
func Undo(root string, opts UndoOptions) (*UndoResult, error) {
	if IsLiveWindows(root) {
		dir, err := liveJournalDir()
		if err != nil {
			return nil, err
		}
		return undoLiveWindows(context.Background(), dir, opts, readLiveWindows, applyLiveWindows)
	}
	fsys, err := rootfs.Open(root)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	r := rootFS{fsys}
	data, err := r.ReadFile(journalFile, maxJournalSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoJournal
	}
	if err != nil {
		return nil, &JournalError{Path: journalFile, Reason: err.Error()}
	}
	j, err := parseJournal(data)
	if err != nil {
		return nil, &JournalError{Path: journalFile, Reason: err.Error()}
	}
	if j.windows() {
		return nil, &JournalError{Path: journalFile, Reason: "it records changes to the certificate stores of a Windows: run mitmguard distrust --undo on that Windows"}
	}
	res := &UndoResult{}
	if j.Root != r.Root() {
		res.Moved = j.Root
	}
	blobs := map[string][]byte{}
	for _, e := range j.Steps {
		for _, it := range e.Before {
			if it.Type != "file" || blobs[it.SHA256] != nil {
				continue
			}
			b, err := r.ReadFile(blobDir+"/"+it.SHA256, maxBlobSize)
			if err != nil {
				return nil, &JournalError{Path: journalFile, Reason: fmt.Sprintf("the backup of /%s is missing: %v", it.Path, err)}
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != it.SHA256 {
				return nil, &JournalError{Path: journalFile, Reason: fmt.Sprintf("the backup of /%s does not match its hash", it.Path)}
			}
			blobs[it.SHA256] = b
		}
	}
	conflicts, err := changedSince(r, j)
	if err != nil {
		return nil, err
	}
	if len(conflicts) > 0 && !opts.Force {
		return nil, &ConflictError{Conflicts: conflicts}
	}
	res.Forced = conflicts
	blob := func(sum string) ([]byte, error) { return blobs[sum], nil }
	for i := len(j.Steps) - 1; i >= 0; i-- {
		if err := restore(r, j.Steps[i].Before, blob); err != nil {
			return res, fmt.Errorf("restoring %s: %w", j.Steps[i].Step.StorePath, err)
		}
		res.Steps = append(res.Steps, j.Steps[i].Step)
	}
	return res, r.RemoveAll(JournalDir)
}

// changedSince lists the paths that differ from how the apply left them:
// for each path, the state after the last step that covered it. A step that
// was interrupted left no such state; its paths are restored unchecked.
func changedSince(r rootFS, j *journal) ([]Conflict, error) {
	want := map[string]fileState{}
	var tops []string
	unchecked := func(p string) bool { return false }
	for _, e := range j.Steps {
		if e.State != "done" {
			paths := e.Paths
			unchecked = func(p string) bool {
				for _, t := range paths {
					if p == t || strings.HasPrefix(p, t+"/") {
						return true
					}
				}
				return false
			}
			continue
		}
		for _, p := range e.Paths {
			tops = append(tops, devPath(p))
			for k := range want {
				if k == p || strings.HasPrefix(k, p+"/") {
					delete(want, k) // the later step's state replaces it
				}
			}
		}
		for _, it := range e.After {
			want[it.Path] = it
		}
	}
	now, err := capture(r, tops, nil)
	if err != nil {
		return nil, fmt.Errorf("distrust: reading the stores to compare with the journal: %w", err)
	}
	got := map[string]fileState{}
	for _, it := range now {
		got[it.Path] = it
	}
	var out []Conflict
	for _, p := range sortedKeys(want, got) {
		w, okw := want[p]
		g, okg := got[p]
		if unchecked(p) || okw && okg && w.same(g) {
			continue
		}
		c := Conflict{Path: devPath(p), Left: "absent", Now: "absent"}
		if okw {
			c.Left = w.String()
		}
		if okg {
			c.Now = g.String()
		}
		if c.Left != c.Now {
			out = append(out, c)
		}
	}
	return out, nil
}

func sortedKeys(a, b map[string]fileState) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// parseJournal reads a journal and refuses one that does not fit: another
// version (version 1 held absolute paths), a root that is not an absolute
// clean path, a path that is absolute, climbs with "..", lies in the journal
// folder or outside its step's paths, a file without a well-formed hash, a
// mode or owner out of range.
func parseJournal(data []byte) (*journal, error) {
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("damaged: %v", err)
	}
	if j.Version != journalVersion {
		return nil, fmt.Errorf("version %d, want %d (a journal of an older mitmguard: undo it with that version, or restore by hand)", j.Version, journalVersion)
	}
	if !path.IsAbs(j.Root) || path.Clean(j.Root) != j.Root {
		return nil, fmt.Errorf("its root %q is not an absolute clean path", j.Root)
	}
	for i, e := range j.Steps {
		if e.State != "started" && e.State != "done" || e.State == "started" && i != len(j.Steps)-1 {
			return nil, fmt.Errorf("step %d has state %q", i+1, e.State)
		}
		if (e.Step.Store == windowsStores) != j.windows() {
			return nil, fmt.Errorf("step %d mixes changes to files and to the Windows certificate stores", i+1)
		}
		if j.windows() {
			if err := checkCertChanges(e); err != nil {
				return nil, fmt.Errorf("step %d: %v", i+1, err)
			}
			continue
		}
		if len(e.Certs) > 0 {
			return nil, fmt.Errorf("step %d changes files but lists certificate-store changes", i+1)
		}
		if len(e.Paths) == 0 {
			return nil, fmt.Errorf("step %d names no path", i+1)
		}
		for _, p := range e.Paths {
			if err := checkRel(p); err != nil {
				return nil, fmt.Errorf("step %d: %v", i+1, err)
			}
		}
		inStep := func(p string) bool {
			for _, t := range e.Paths {
				if p == t || strings.HasPrefix(p, t+"/") {
					return true
				}
			}
			return false
		}
		for _, items := range [][]fileState{e.Before, e.After} {
			for _, it := range items {
				if err := checkRel(it.Path); err != nil {
					return nil, fmt.Errorf("step %d: %v", i+1, err)
				}
				if !inStep(it.Path) {
					return nil, fmt.Errorf("step %d: %q is outside the paths the step changed", i+1, it.Path)
				}
				if err := checkState(it); err != nil {
					return nil, fmt.Errorf("step %d: %q: %v", i+1, it.Path, err)
				}
			}
		}
		if e.State == "done" && len(e.After) == 0 {
			return nil, fmt.Errorf("step %d is done but does not say how it left its paths", i+1)
		}
	}
	return &j, nil
}

func checkRel(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("an empty path (the whole root)")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path %q: journal paths are relative to the root", p)
	case path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q is not clean or climbs out of the root", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q holds a NUL byte", p)
	case "/"+p == JournalDir || strings.HasPrefix("/"+p+"/", JournalDir+"/") || strings.HasPrefix(JournalDir+"/", "/"+p+"/"):
		return fmt.Errorf("path %q holds the journal itself", p)
	}
	return nil
}

func checkState(it fileState) error {
	if it.Mode&^uint32(modeBits) != 0 {
		return fmt.Errorf("mode %#o has bits other than permissions", it.Mode)
	}
	if it.UID < 0 || it.GID < 0 || it.UID > 1<<31-2 || it.GID > 1<<31-2 {
		return fmt.Errorf("owner %d:%d out of range", it.UID, it.GID)
	}
	switch it.Type {
	case "absent", "dir":
	case "symlink":
		if it.Target == "" || strings.ContainsRune(it.Target, 0) {
			return errors.New("a link without a target")
		}
	case "file":
		if b, err := hex.DecodeString(it.SHA256); err != nil || len(b) != sha256.Size || strings.ToLower(it.SHA256) != it.SHA256 {
			return fmt.Errorf("hash %q is not a SHA-256", it.SHA256)
		}
	default:
		return fmt.Errorf("unknown type %q", it.Type)
	}
	return nil
}

func (j *journal) write(r rootFS) error { return j.writeTo(r, journalFile) }

func (j *journal) writeTo(r rootFS, name string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return r.WriteFile(name, b, 0o600)
}

// checkPermitted refuses early, before anything changes: the running system
// needs root, and every path a step changes must be writable.
func checkPermitted(r rootFS, p *Plan) error {
	if r.IsSystem() && os.Geteuid() != 0 {
		return &NotPermittedError{Path: "/", Reason: "changing the system's trust stores needs root (run with sudo)"}
	}
	for _, st := range p.Steps {
		if st.Manual {
			continue
		}
		for _, c := range append(slices.Clone(st.Changes), st.removes...) {
			dev := rootfs.Clean(c)
			for {
				if res, err := r.Resolve(dev); err == nil {
					dev = res
					break
				}
				parent := path.Dir(dev)
				if parent == dev {
					break
				}
				dev = parent
			}
			if err := writable(r.Real(dev)); err != nil {
				return &NotPermittedError{Path: r.Real(dev), Reason: err.Error()}
			}
		}
	}
	return nil
}
