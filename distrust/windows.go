package distrust

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/rootfs"
	"github.com/mitmguard/mitmguard/truststore"
	"github.com/mitmguard/mitmguard/winstore"
)

// windowsStores is the journal's name for a step that changed the live
// Windows certificate stores.
const windowsStores truststore.Kind = "windows-certificate-stores"

// Bounds of a journal's Windows changes: a plan has a few steps per root.
const (
	maxCertChanges = 10000
	maxCertDER     = 64 << 10
)

// certChange is one change a Windows apply made to a live store, with the
// certificate's DER, so that an undo can put a removed root back.
type certChange struct {
	Action   winstore.Action   `json:"action"`   // add or remove
	Location winstore.Location `json:"location"` // machine or user
	Store    string            `json:"store"`    // Root, AuthRoot, CA or Disallowed
	DER      []byte            `json:"der"`
}

// ErrVolumeApply refuses --apply on a mounted Windows volume: its hives are
// not edited offline.
var ErrVolumeApply = errors.New("distrust: --apply does not edit the registry hives of a mounted Windows volume; " +
	"run mitmguard distrust --root DIR --script powershell and run that script on the Windows itself, in PowerShell opened as administrator " +
	"(and once as each user the plan names), or run mitmguard distrust --apply on that Windows")

// IsLiveWindows reports whether root is the running Windows itself, whose
// stores are read and changed through CryptoAPI. It follows the audit
// (truststore.LiveRoot): a root the audit read as a volume (`\`, say),
// with other profiles' hives in the plan, must not be applied live.
func IsLiveWindows(root string) bool {
	return runtime.GOOS == "windows" && truststore.LiveRoot(root)
}

// PlanWindows plans distrusting, the way Microsoft's tooling does, each root
// that the audit found trusted in a Windows store: known-interception ones,
// and not-public ones with includeNotPublic. The stores are those the
// audit read (truststore.Report.WindowsStores).
func PlanWindows(stores []*winstore.Store, rep *truststore.Report, includeNotPublic bool) *winstore.Plan {
	var targets []*chain.Cert
	seen := map[chain.Hash]bool{}
	for _, f := range rep.Findings {
		if !truststore.IsWindows(f.Store) || !picked(f, includeNotPublic) {
			continue
		}
		c := f.Certificate()
		if !seen[c.SHA256] {
			seen[c.SHA256] = true
			targets = append(targets, c)
		}
	}
	return winstore.PlanDistrust(stores, targets)
}

// picked says whether a finding is distrusted.
func picked(f truststore.Finding, includeNotPublic bool) bool {
	return f.Trust == truststore.Trusted && (f.Status == truststore.KnownInterception || includeNotPublic && f.Status == truststore.NotPublic)
}

// ApplyWindows carries out a plan on the running Windows's stores through
// CryptoAPI, journaled in %ProgramData%\mitmguard\distrust (a folder only
// Administrators and SYSTEM may change) so that Undo puts the stores back.
// A nil plan (the audit could read no Windows store, and says why) does
// nothing.
func ApplyWindows(ctx context.Context, p *winstore.Plan) ([]winstore.Step, error) {
	if p == nil || len(p.Steps) == 0 {
		return nil, nil
	}
	dir, err := liveJournalDir()
	if err != nil {
		return nil, err
	}
	return applyWindows(ctx, dir, p, applyLiveWindows)
}

// winJournalFile is the journal inside the Windows journal folder.
const winJournalFile = "/journal.json"

// applyWindows journals the plan's steps (with each certificate's DER) in
// the folder dir before doing any, so that an apply interrupted at any
// point can be undone, does them with do, and records the steps done.
func applyWindows(ctx context.Context, dir string, p *winstore.Plan, do func(context.Context, *winstore.Plan) ([]winstore.Step, error)) ([]winstore.Step, error) {
	if len(p.Steps) == 0 {
		return nil, nil
	}
	if err := makeJournalDir(dir); err != nil {
		return nil, &NotPermittedError{Path: dir, Reason: err.Error()}
	}
	fsys, err := rootfs.Open(dir)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	r := rootFS{fsys}
	if _, err := r.Lstat(winJournalFile); err == nil {
		return nil, &JournalExistsError{Path: r.Real(winJournalFile)}
	}
	e := journalEntry{
		Step:  Step{Store: windowsStores, StorePath: "Cert:", Owner: "machine and current user", Description: "add roots to Disallowed and remove them from Root", Changes: []string{}},
		State: "started", Certs: changesOf(p.Steps),
	}
	j := &journal{Version: journalVersion, Root: "/", Started: time.Now().UTC(), Steps: []journalEntry{e}}
	if err := j.writeTo(r, winJournalFile); err != nil {
		return nil, err
	}
	done, err := do(ctx, p)
	j.Steps[0].State, j.Steps[0].Certs = "done", changesOf(done)
	if werr := j.writeTo(r, winJournalFile); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return done, fmt.Errorf("%w (mitmguard distrust --undo restores what was changed)", err)
	}
	return done, nil
}

func changesOf(steps []winstore.Step) []certChange {
	out := []certChange{}
	for _, s := range steps {
		out = append(out, certChange{Action: s.Action, Location: s.Location, Store: s.Store, DER: s.Cert.DER})
	}
	return out
}

// windows reports whether a journal records changes to the live
// Windows stores (parseJournal has checked that its steps are all such).
func (j *journal) windows() bool {
	return len(j.Steps) > 0 && j.Steps[0].Step.Store == windowsStores
}

// checkCertChanges refuses a Windows step whose changes are not what an
// apply writes: an action, location or store outside the fixed sets, a
// DER that is not a certificate, too many changes.
func checkCertChanges(e journalEntry) error {
	if len(e.Paths) > 0 || len(e.Before) > 0 || len(e.After) > 0 {
		return errors.New("a Windows step names files")
	}
	if len(e.Certs) > maxCertChanges {
		return fmt.Errorf("more than %d certificate changes", maxCertChanges)
	}
	for i, c := range e.Certs {
		if c.Action != winstore.Add && c.Action != winstore.Remove {
			return fmt.Errorf("change %d: unknown action %q", i+1, c.Action)
		}
		if c.Location != winstore.Machine && c.Location != winstore.User {
			return fmt.Errorf("change %d: location %q is not machine or user", i+1, c.Location)
		}
		if !knownStore(c.Store) {
			return fmt.Errorf("change %d: unknown store %q", i+1, c.Store)
		}
		if len(c.DER) == 0 || len(c.DER) > maxCertDER {
			return fmt.Errorf("change %d: a certificate of %d bytes", i+1, len(c.DER))
		}
		if _, err := chain.NewCert(c.DER); err != nil {
			return fmt.Errorf("change %d: not a certificate: %v", i+1, err)
		}
	}
	return nil
}

// knownStore reports a store name spelled as an apply writes it.
func knownStore(s string) bool {
	n, ok := winstore.CanonicalStore(s)
	return ok && n == s
}

// Kept is a certificate that a Windows undo left distrusted although the
// journal said to restore it, and why: a journal can be planted by an
// ordinary user, so an undo never makes a known interception root, or a
// root still in a Root store, trusted again.
type Kept struct {
	Thumbprint string            `json:"thumbprint"`
	Subject    string            `json:"subject"`
	Location   winstore.Location `json:"location"`
	Store      string            `json:"store"`
	Action     winstore.Action   `json:"action"` // the undo step not taken
	Reason     string            `json:"reason"`
}

// windowsUndo is the plan that reverses a Windows journal, newest step
// first, and the certificates it keeps distrusted. A journal may have been
// planted by someone else (its folder is often writable by ordinary users),
// so the undo only ever makes a root trusted again the way the apply made it
// distrusted:
//   - a known interception root (on list) is never taken out of a
//     Disallowed store nor put into a root store, whatever the journal says;
//   - a certificate is taken out of a Disallowed store only when no root
//     store holds it now, or when the undo puts it back into a root store
//     the journal says the apply removed it from (the pair the apply made);
//   - a root is put back into a root store only when the machine
//     Disallowed store holds it now (an apply leaves every root it removed
//     there) or the store still holds it (nothing to put back); otherwise
//     the journal is refused.
func windowsUndo(j *journal, now []*winstore.Store, list *blocklist.List) (*winstore.Plan, []Kept, error) {
	if list == nil {
		list = blocklist.Embedded()
	}
	in := func(c *chain.Cert, match func(*winstore.Store) bool) bool {
		for _, s := range now {
			if match(s) && slices.ContainsFunc(s.Entries, func(e winstore.Entry) bool { return e.Cert.SHA256 == c.SHA256 }) {
				return true
			}
		}
		return false
	}
	inStore := func(loc winstore.Location, store string, c *chain.Cert) bool {
		return in(c, func(s *winstore.Store) bool { return s.Location == loc && strings.EqualFold(s.Name, store) })
	}
	done := &winstore.Plan{}
	for _, e := range j.Steps {
		for _, c := range e.Certs {
			cert, err := chain.NewCert(c.DER)
			if err != nil {
				return nil, nil, err
			}
			done.Steps = append(done.Steps, winstore.Step{Action: c.Action, Location: c.Location, Store: c.Store, Cert: cert})
		}
	}
	var kept []Kept
	keep := func(s winstore.Step, reason string) {
		kept = append(kept, Kept{Thumbprint: s.Thumbprint(), Subject: s.Cert.Subject(), Location: s.Location, Store: s.Store, Action: s.Action, Reason: reason})
	}
	// restored holds the certificates that the undo puts back into a root
	// store: only those may leave Disallowed while a root store holds them.
	restored := map[chain.Hash]bool{}
	var steps []winstore.Step
	for _, s := range done.Undo().Steps {
		trusts := s.Action == winstore.Add && s.Store != winstore.Disallowed ||
			s.Action == winstore.Remove && s.Store == winstore.Disallowed
		if !trusts {
			steps = append(steps, s)
			continue
		}
		if inStore(s.Location, s.Store, s.Cert) == (s.Action == winstore.Add) {
			continue // still there, or already gone: nothing to do
		}
		if e := list.Lookup(s.Cert.SPKI); e != nil {
			keep(s, fmt.Sprintf("a known interception root (blocklist entry %s): it stays distrusted whatever the journal says", e.ID))
			continue
		}
		if s.Action == winstore.Remove {
			steps = append(steps, s)
			continue
		}
		if !inStore(winstore.Machine, winstore.Disallowed, s.Cert) {
			return nil, nil, fmt.Errorf("it would put %s (%s) back into %s of the %s, but the machine's Disallowed store does not hold it, as an apply leaves it",
				s.Thumbprint(), s.Cert.Subject(), s.Store, s.Location)
		}
		restored[s.Cert.SHA256] = true
		steps = append(steps, s)
	}
	undo := &winstore.Plan{}
	for _, s := range steps {
		if s.Action == winstore.Remove && s.Store == winstore.Disallowed && !restored[s.Cert.SHA256] &&
			in(s.Cert, (*winstore.Store).IsRoot) {
			keep(s, "a root store still holds it and the undo puts it back into none: taking it out of Disallowed would trust it")
			continue
		}
		undo.Steps = append(undo.Steps, s)
	}
	return undo, kept, nil
}

// undoLiveWindows reverses the journal of the running Windows, kept in
// dir, on the stores that read and apply change, and removes the journal.
// It refuses a journal folder or file that Administrators or SYSTEM do not
// own: someone else may have planted it.
func undoLiveWindows(ctx context.Context, dir string, opts UndoOptions,
	read func(context.Context) ([]*winstore.Store, error), apply func(context.Context, *winstore.Plan) ([]winstore.Step, error)) (*UndoResult, error) {
	file := filepath.Join(dir, filepath.FromSlash(winJournalFile))
	if _, err := os.Lstat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoJournal
	}
	for _, p := range []string{dir, file} {
		if err := checkJournalOwner(p); err != nil {
			return nil, &JournalError{Path: p, Reason: err.Error()}
		}
	}
	fsys, err := rootfs.Open(dir)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	data, err := fsys.ReadFile(winJournalFile, maxJournalSize)
	if err != nil {
		return nil, &JournalError{Path: file, Reason: err.Error()}
	}
	j, err := parseJournal(data)
	if err == nil && !j.windows() {
		err = errors.New("it records changes to files, not to the Windows certificate stores")
	}
	if err != nil {
		return nil, &JournalError{Path: file, Reason: err.Error()}
	}
	now, err := read(ctx)
	if err != nil {
		return nil, err
	}
	undo, kept, err := windowsUndo(j, now, opts.List)
	if err != nil {
		return nil, &JournalError{Path: file, Reason: err.Error()}
	}
	if _, err := apply(ctx, undo); err != nil {
		return nil, fmt.Errorf("distrust: undoing the Windows changes: %w", err)
	}
	res := &UndoResult{Kept: kept, Windows: true}
	for _, e := range j.Steps {
		res.Steps = append(res.Steps, e.Step)
	}
	return res, os.RemoveAll(dir)
}
