package guard

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mitmguard/mitmguard/blocklist"
)

// Policy holds the blocklist that guarded configurations enforce, so that a
// long-running program picks up a newer list without a restart: every
// handshake reads the list in force at that moment, and Update replaces it
// in one atomic store. A handshake never sees a half-built list or no list.
//
// A new root used for interception is listed within hours of being found;
// a server that runs for months on the list it started with would keep
// trusting it. Give the same *Policy to Config, Transport or Client (through
// Options.Policy), then call Update, or let a watcher (package guard/watch)
// call it when the installed list changes.
type Policy struct {
	cur atomic.Pointer[blocklist.List]
	mu  sync.Mutex // serialises Update's compare-and-swap of versions
}

// NewPolicy returns a policy enforcing list (the embedded list when nil).
func NewPolicy(list *blocklist.List) *Policy {
	if list == nil {
		list = blocklist.Embedded()
	}
	p := &Policy{}
	p.cur.Store(list)
	return p
}

// List returns the list in force.
func (p *Policy) List() *blocklist.List { return p.cur.Load() }

// Update makes list the list in force when it is newer than the current one,
// and reports whether it did. Newer means a higher version, or the same
// version blocking every key the current list blocks and more (the list
// installed over the embedded one: both may carry version 1). A list with
// the current version and the same keys is left alone (the same publication,
// read again). An older list, or one of the same version that lacks a
// blocked key, is refused with a *RollbackError and the current list keeps
// enforcing, since an attacker who can replace the file could otherwise
// bring back a list from before their root was listed.
func (p *Policy) Update(list *blocklist.List) (bool, error) {
	if list == nil {
		return false, fmt.Errorf("guard: Update with a nil list")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.cur.Load()
	if list.Version < cur.Version {
		return false, &RollbackError{Current: cur.Version, Offered: list.Version, Source: list.Source}
	}
	if list.Version == cur.Version {
		for _, e := range cur.Entries() {
			if list.Lookup(e.SPKI()) == nil {
				return false, &RollbackError{Current: cur.Version, Offered: list.Version, Source: list.Source, Lacks: e.ID}
			}
		}
		if list.Len() == cur.Len() {
			return false, nil
		}
	}
	p.cur.Store(list)
	return true, nil
}

// RollbackError reports a list older than the one in force, which Update
// refuses.
type RollbackError struct {
	Current, Offered int
	Source           string // where the offered list came from
	// Lacks is the id of an entry in force that the offered list, of the
	// same version, does not have.
	Lacks string
}

func (e *RollbackError) Error() string {
	if e.Lacks != "" {
		return fmt.Sprintf("guard: list %s has version %d, as the list in force, but lacks its entry %s; keeping the list in force",
			e.Source, e.Offered, e.Lacks)
	}
	return fmt.Sprintf("guard: list %s has version %d, older than version %d in force; keeping version %d",
		e.Source, e.Offered, e.Current, e.Current)
}
