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

// Update makes list the list in force when its version is newer than the
// current one, and reports whether it did. A list with the current version
// is left alone (it is the same publication, read again); an older one is
// refused with a *RollbackError and the current list keeps enforcing, since
// an attacker who can replace the file could otherwise bring back a list
// from before their root was listed.
func (p *Policy) Update(list *blocklist.List) (bool, error) {
	if list == nil {
		return false, fmt.Errorf("guard: Update with a nil list")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.cur.Load()
	switch {
	case list.Version < cur.Version:
		return false, &RollbackError{Current: cur.Version, Offered: list.Version, Source: list.Source}
	case list.Version == cur.Version:
		return false, nil
	}
	p.cur.Store(list)
	return true, nil
}

// RollbackError reports a list older than the one in force, which Update
// refuses.
type RollbackError struct {
	Current, Offered int
	Source           string // where the offered list came from
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("guard: list %s has version %d, older than version %d in force; keeping version %d",
		e.Source, e.Offered, e.Current, e.Current)
}
