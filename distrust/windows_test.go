package distrust

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/winstore"
	"github.com/mitmguard/mitmguard/winstore/winstoretest"
)

// The live Windows stores cannot be changed here, so these tests drive the
// journal with an in-memory model of them: memStores does what
// winstore.Apply does (adding an existing certificate and removing a
// missing one succeed) and can fail after n steps.
type memStores struct {
	stores    []*winstore.Store
	failAfter int // -1: never
}

func (m *memStores) store(loc winstore.Location, name string) *winstore.Store {
	for _, s := range m.stores {
		if s.Location == loc && strings.EqualFold(s.Name, name) {
			return s
		}
	}
	s := &winstore.Store{Name: name, Location: loc}
	m.stores = append(m.stores, s)
	return s
}

func (m *memStores) apply(ctx context.Context, p *winstore.Plan) ([]winstore.Step, error) {
	var done []winstore.Step
	for _, st := range p.Steps {
		if len(done) == m.failAfter {
			return done, errors.New("access denied")
		}
		s := m.store(st.Location, st.Store)
		i := -1
		for j, e := range s.Entries {
			if e.Cert.SHA256 == st.Cert.SHA256 {
				i = j
			}
		}
		switch {
		case st.Action == winstore.Add && i < 0:
			s.Entries = append(s.Entries, winstore.Entry{Cert: st.Cert, Thumbprint: st.Thumbprint()})
		case st.Action == winstore.Remove && i >= 0:
			s.Entries = append(s.Entries[:i], s.Entries[i+1:]...)
		}
		done = append(done, st)
	}
	return done, nil
}

// contents lists each store's thumbprints.
func (m *memStores) contents() map[string]string {
	out := map[string]string{}
	for _, s := range m.stores {
		var th []string
		for _, e := range s.Entries {
			th = append(th, e.Thumbprint)
		}
		sort.Strings(th)
		out[string(s.Location)+" "+strings.ToLower(s.Name)] = strings.Join(th, ",")
	}
	return out
}

// kazakhLive reads the Kazakh volume and makes its machine and Aigerim's
// stores the "live" stores of the model.
func kazakhLive(t *testing.T) (*memStores, *winstore.Plan) {
	k := winstoretest.NewKazakh(t)
	rep := audit(t, k.Dir)
	stores := rep.WindowsStores()
	if stores == nil {
		t.Fatal("the audit read no Windows store of the volume")
	}
	p := PlanWindows(stores, rep, false)
	m := &memStores{failAfter: -1}
	for _, s := range stores {
		if s.Location == winstore.Machine || s.Location == winstore.User {
			c := *s
			c.Entries = append([]winstore.Entry(nil), s.Entries...)
			m.stores = append(m.stores, &c)
		}
	}
	return m, p
}

func readJournal(t *testing.T, root string) *journal {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, JournalDir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := parseJournal(data)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Issue 17 item 3: the plan of the Kazakh volume moves Qaznet and ISCA to
// the machine's Disallowed store and out of the Root stores that hold them
// (the machine's, Aigerim's); the ISCA CA is already distrusted.
func TestPlanWindows(t *testing.T) {
	_, p := kazakhLive(t)
	var got []string
	for _, s := range p.Steps {
		got = append(got, string(s.Action)+" "+string(s.Location)+" "+s.Store+" "+s.User+" "+s.Cert.Subject())
	}
	want := []string{
		"add machine Disallowed  CN=Qaznet Trust Network,C=KZ",
		"remove machine Root  CN=Qaznet Trust Network,C=KZ",
		"add machine Disallowed  CN=Information Security Certification Authority,O=ISCA,L=Nur-Sultan,ST=Nur-Sultan,C=KZ",
		"remove user Root Aigerim CN=Information Security Certification Authority,O=ISCA,L=Nur-Sultan,ST=Nur-Sultan,C=KZ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The journal records every change with its DER before any is made, the
// steps done after, and its undo puts the stores back as they were.
func TestWindowsJournalApplyUndo(t *testing.T) {
	for _, failAfter := range []int{-1, 3, 0} {
		m, p := kazakhLive(t)
		before := m.contents()
		m.failAfter = failAfter
		root := t.TempDir()
		done, err := applyWindows(context.Background(), jdir(root), p, m.apply)
		if (err != nil) != (failAfter >= 0) {
			t.Fatalf("fail after %d: %v", failAfter, err)
		}
		j := readJournal(t, root)
		if !j.windows() || j.Steps[0].State != "done" || len(j.Steps[0].Certs) != len(done) {
			t.Fatalf("journal %+v", j.Steps)
		}
		for i, c := range j.Steps[0].Certs {
			if string(c.DER) != string(done[i].Cert.DER) || c.Action != done[i].Action || c.Store != done[i].Store {
				t.Fatalf("change %d: %+v", i, c)
			}
		}
		if _, err := applyWindows(context.Background(), jdir(root), p, m.apply); !errors.As(err, new(*JournalExistsError)) {
			t.Fatalf("second apply: %v", err)
		}
		undo, kept, err := windowsUndo(j, m.stores, notKazakh(t))
		if err != nil {
			t.Fatal(err)
		}
		m.failAfter = -1
		if _, err := m.apply(context.Background(), undo); err != nil {
			t.Fatal(err)
		}
		after := m.contents()
		// Stopped after 3 steps, the apply put ISCA into Disallowed but
		// left it in Aigerim's Root: the undo keeps it distrusted rather
		// than trust it again from a journal that did not take it out of
		// Root (rule 2 of the undo).
		var wantKept []string
		if failAfter == 3 {
			isca := p.Steps[2].Cert
			wantKept = []string{winstore.Thumbprint(isca.DER)}
			before["machine disallowed"] = thumbs(append(strings.Split(before["machine disallowed"], ","), winstore.Thumbprint(isca.DER))...)
		}
		if got := keptThumbs(kept); strings.Join(got, ",") != strings.Join(wantKept, ",") {
			t.Errorf("fail after %d: kept %+v, want %v", failAfter, kept, wantKept)
		}
		for k, v := range before {
			if after[k] != v {
				t.Errorf("fail after %d: %s is %q after undo, was %q", failAfter, k, after[k], v)
			}
		}
	}
}

// notKazakh is a blocklist in force without the Kazakh roots, so that the
// undo of their distrust is a plain restore.
func notKazakh(t *testing.T) *blocklist.List {
	l := blocklist.Embedded().Without([]string{"kz-2019-qaznet", "kz-2021-isca", "kz-2020-isca-ca"})
	if l.Len() != blocklist.Embedded().Len()-3 {
		t.Fatalf("the embedded list does not hold the three Kazakh entries")
	}
	return l
}

// thumbs is a store's contents as memStores.contents lists them.
func thumbs(th ...string) string {
	th = slices.DeleteFunc(slices.Clone(th), func(s string) bool { return s == "" })
	sort.Strings(th)
	return strings.Join(th, ",")
}

func keptThumbs(kept []Kept) []string {
	var out []string
	for _, k := range kept {
		out = append(out, k.Thumbprint)
	}
	return out
}

// Issue 17 review, rule 1: with the Kazakh roots in the blocklist in
// force, the undo of a real apply keeps them in Disallowed and out of
// Root, and says why; the rest of the stores are put back.
func TestWindowsUndoKeepsKnownRoots(t *testing.T) {
	m, p := kazakhLive(t)
	before := m.contents()
	root := t.TempDir()
	if _, err := applyWindows(context.Background(), jdir(root), p, m.apply); err != nil {
		t.Fatal(err)
	}
	applied := m.contents()
	undo, kept, err := windowsUndo(readJournal(t, root), m.stores, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(undo.Steps) != 0 {
		t.Fatalf("undo steps %+v, want none", undo.Steps)
	}
	if len(kept) != 4 {
		t.Fatalf("kept %+v, want the 2 Disallowed removals and 2 Root additions", kept)
	}
	for _, k := range kept {
		if !strings.Contains(k.Reason, "known interception root (blocklist entry kz-") {
			t.Errorf("kept %+v", k)
		}
	}
	m.apply(context.Background(), undo)
	if after := m.contents(); after["machine root"] != applied["machine root"] || after["machine disallowed"] == before["machine disallowed"] {
		t.Fatalf("after undo %v", after)
	}
}

// plant writes a journal of these changes, as someone without the right
// to change the stores could, and parses it as Undo would.
func plant(t *testing.T, changes ...certChange) *journal {
	t.Helper()
	j := &journal{Version: journalVersion, Root: "/", Steps: []journalEntry{{
		Step:  Step{Store: windowsStores, StorePath: "Cert:"},
		State: "done", Certs: changes,
	}}}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	pj, err := parseJournal(b)
	if err != nil {
		t.Fatal(err)
	}
	return pj
}

// Issue 17 review: a planted journal must never make undo take out of
// Disallowed a root that a Root store still holds (Microsoft's own
// Disallowed list blocking an installed root): neither "added K to
// Disallowed" nor "removed K from Root + added K to Disallowed" while K is
// still in Root. Rule 1 catches a known interception root, rule 2 any root.
func TestWindowsUndoPlantedJournal(t *testing.T) {
	m, p := kazakhLive(t)
	qaznet := p.Steps[0].Cert.DER
	attacker := winstoretest.PrivateRoot(t, "Attacker Root")
	for _, der := range [][]byte{qaznet, attacker} {
		cert := mustCert(t, der)
		// K is installed in Root and blocked by Disallowed.
		m.apply(context.Background(), &winstore.Plan{Steps: []winstore.Step{
			{Action: winstore.Add, Location: winstore.Machine, Store: "Root", Cert: cert},
			{Action: winstore.Add, Location: winstore.Machine, Store: winstore.Disallowed, Cert: cert},
		}})
	}
	before := m.contents()
	add := func(der []byte) certChange {
		return certChange{Action: winstore.Add, Location: winstore.Machine, Store: winstore.Disallowed, DER: der}
	}
	remove := func(der []byte) certChange {
		return certChange{Action: winstore.Remove, Location: winstore.Machine, Store: "Root", DER: der}
	}
	for name, tc := range map[string]struct {
		j      *journal
		reason string
	}{
		"known root added to Disallowed":             {plant(t, add(qaznet)), "known interception root"},
		"known root moved from Root to Disallowed":   {plant(t, add(qaznet), remove(qaznet)), "known interception root"},
		"private root added to Disallowed":           {plant(t, add(attacker)), "a root store still holds it"},
		"private root moved from Root to Disallowed": {plant(t, add(attacker), remove(attacker)), "a root store still holds it"},
	} {
		undo, kept, err := windowsUndo(tc.j, m.stores, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(kept) != 1 || kept[0].Store != winstore.Disallowed || !strings.Contains(kept[0].Reason, tc.reason) {
			t.Errorf("%s: kept %+v, want the Disallowed entry kept: %s", name, kept, tc.reason)
		}
		m.apply(context.Background(), undo)
		for k, v := range before {
			if got := m.contents()[k]; got != v {
				t.Errorf("%s: %s is %q after undo, was %q", name, k, got, v)
			}
		}
	}
}

func mustCert(t *testing.T, der []byte) *chain.Cert {
	t.Helper()
	c, err := chain.NewCert(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An apply that crashed left the journal "started" with every planned
// change: its undo reverts what may have been done and nothing else.
func TestWindowsJournalCrash(t *testing.T) {
	m, p := kazakhLive(t)
	before := m.contents()
	m.failAfter = 2
	root := t.TempDir()
	crash := func(ctx context.Context, p *winstore.Plan) ([]winstore.Step, error) {
		m.apply(ctx, p)
		j := readJournal(t, root)
		if j.Steps[0].State != "started" || len(j.Steps[0].Certs) != len(p.Steps) {
			t.Fatalf("journal before the changes: %+v", j.Steps[0])
		}
		panic("crash")
	}
	func() {
		defer func() { recover() }()
		applyWindows(context.Background(), jdir(root), p, crash)
	}()
	undo, _, err := windowsUndo(readJournal(t, root), m.stores, notKazakh(t))
	if err != nil {
		t.Fatal(err)
	}
	m.failAfter = -1
	m.apply(context.Background(), undo)
	for k, v := range before {
		if got := m.contents()[k]; got != v {
			t.Errorf("%s is %q after undo, was %q", k, got, v)
		}
	}
}

// Hostile Windows journals are refused before anything changes.
func TestWindowsJournalHostile(t *testing.T) {
	m, p := kazakhLive(t)
	root := t.TempDir()
	if _, err := applyWindows(context.Background(), jdir(root), p, m.apply); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(root, JournalDir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(j map[string]any)) []byte {
		var j map[string]any
		if err := json.Unmarshal(good, &j); err != nil {
			t.Fatal(err)
		}
		f(j)
		b, _ := json.Marshal(j)
		return b
	}
	change := func(j map[string]any) map[string]any {
		return j["steps"].([]any)[0].(map[string]any)["cert_changes"].([]any)[0].(map[string]any)
	}
	for name, b := range map[string][]byte{
		"unknown action":     edit(func(j map[string]any) { change(j)["action"] = "delete-all" }),
		"policy location":    edit(func(j map[string]any) { change(j)["location"] = "machine-group-policy" }),
		"store outside set":  edit(func(j map[string]any) { change(j)["store"] = "My'; rm -r C:\\" }),
		"not a certificate":  edit(func(j map[string]any) { change(j)["der"] = "AAECAw==" }),
		"files in a Windows": edit(func(j map[string]any) { j["steps"].([]any)[0].(map[string]any)["paths"] = []string{"etc"} }),
		"mixed steps": edit(func(j map[string]any) {
			j["steps"] = append(j["steps"].([]any), map[string]any{"step": map[string]any{"store": "debian-local"}, "state": "done", "paths": []string{"etc"}, "after": []any{map[string]any{"path": "etc", "type": "dir"}}})
		}),
	} {
		if _, err := parseJournal(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A planted journal that "restores" a root nobody distrusted into
	// Root: refused, since an apply leaves every root it removed in the
	// machine's Disallowed store.
	planted := edit(func(j map[string]any) {
		j["steps"].([]any)[0].(map[string]any)["cert_changes"] = []any{map[string]any{
			"action": "remove", "location": "machine", "store": "Root", "der": winstoretest.PrivateRoot(t, "Attacker Root")}}
	})
	j, err := parseJournal(planted)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := kazakhLive(t)
	if _, _, err := windowsUndo(j, fresh.stores, nil); err == nil || !strings.Contains(err.Error(), "Disallowed store does not hold it") {
		t.Fatalf("planted journal: %v", err)
	}
	// Off Windows, a Windows journal is refused with where to undo it.
	var je *JournalError
	if _, err := Undo(root, UndoOptions{}); !errors.As(err, &je) || !strings.Contains(je.Reason, "on that Windows") {
		t.Fatalf("undo off Windows: %v", err)
	}
}

// jdir is the journal folder the tests give applyWindows: where Undo
// under root finds (and, off Windows, refuses) a Windows journal.
func jdir(root string) string { return filepath.Join(root, JournalDir) }

// The undo of the running Windows reads its journal from the journal
// folder, undoes it on the stores and removes the folder; a second undo
// finds no journal.
func TestWindowsUndoLive(t *testing.T) {
	m, p := kazakhLive(t)
	before := m.contents()
	dir := filepath.Join(t.TempDir(), "mitmguard", "distrust")
	if _, err := applyWindows(context.Background(), dir, p, m.apply); err != nil {
		t.Fatal(err)
	}
	read := func(context.Context) ([]*winstore.Store, error) { return m.stores, nil }
	res, err := undoLiveWindows(context.Background(), dir, UndoOptions{List: notKazakh(t)}, read, m.apply)
	if err != nil || len(res.Kept) != 0 || len(res.Steps) != 1 || !res.Windows {
		t.Fatalf("undo: %+v %v", res, err)
	}
	for k, v := range before {
		if got := m.contents()[k]; got != v {
			t.Errorf("%s is %q after undo, was %q", k, got, v)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal folder left: %v", err)
	}
	if _, err := undoLiveWindows(context.Background(), dir, UndoOptions{}, read, m.apply); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("second undo: %v", err)
	}
}

// On Windows, when CryptoAPI could not be read the audit has no Windows
// store and the CLI's plan is nil: --apply then does nothing instead of
// panicking.
func TestApplyWindowsNilPlan(t *testing.T) {
	done, err := ApplyWindows(context.Background(), nil)
	if err != nil || done != nil {
		t.Fatalf("ApplyWindows(nil plan) = %v, %v; want nothing done", done, err)
	}
}
