// Package watch keeps a guard.Policy on the blocklist that mitmguard update
// installs, so that a Go program running for months enforces a root listed
// this morning without a restart.
//
// It polls the installed list's file (its identity, size and modification
// time) rather than subscribing to file system events: update installs the
// list by renaming a complete file over the old one, a poll sees either the
// old file or the new, and polling works the same on every system and on
// network and container file systems where events are not delivered. A
// poll is one stat call; reading happens only when the file changed.
//
// A list that cannot be read, or is older than the one in force, is never
// swapped in: the previous list keeps enforcing and the problem is reported
// (Options.OnError, by default the program's slog logger).
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/update/active"
)

// DefaultInterval is how often the installed list is looked at. The update
// timer runs every few hours; a minute of delay after it is nothing, and a
// stat a minute costs nothing.
const DefaultInterval = time.Minute

// Options configure a watcher. The zero value watches active.Dir() every
// DefaultInterval and logs problems with slog.
type Options struct {
	// Dir is the folder of the installed list; "" means active.Dir().
	Dir string
	// Interval between two looks at the file; 0 means DefaultInterval.
	Interval time.Duration
	// OnSwap, if set, is called after a newer list took effect.
	OnSwap func(old, new *blocklist.List)
	// OnError, if set, is called with every list that was not swapped in
	// (an *active.DamagedError, a *guard.RollbackError, a *RemovedError)
	// instead of logging it. The previous list is still in force.
	OnError func(error)
}

// Watcher polls the installed list and updates a policy.
type Watcher struct {
	policy *guard.Policy
	opts   Options
	path   string
	mu     sync.Mutex  // one Poll at a time (Run and a caller's own Poll)
	last   fs.FileInfo // the file as it was at the last load; nil when absent
}

// New returns a watcher that keeps policy on the list installed in opts.Dir.
func New(policy *guard.Policy, opts Options) *Watcher {
	if opts.Dir == "" {
		opts.Dir = active.Dir()
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	return &Watcher{policy: policy, opts: opts, path: filepath.Join(opts.Dir, active.ListFile)}
}

// Start returns a policy enforcing the list in force in opts.Dir now (the
// installed list over the embedded one, as every mitmguard command reads
// it) and keeps it current until ctx is done. A damaged installed list is
// reported and the embedded list enforced until a good one appears.
func Start(ctx context.Context, opts Options) *guard.Policy {
	w := New(nil, opts)
	// Looked at before reading, as in Poll: a file replaced meanwhile is
	// read again at the first poll.
	w.last, _ = os.Stat(w.path)
	l, _, err := active.Load(w.opts.Dir)
	if err != nil {
		w.report(err)
	}
	w.policy = guard.NewPolicy(l)
	go w.Run(ctx)
	return w.policy
}

// Run polls until ctx is done, then returns ctx's error. It looks at the file
// once at once, so a list installed before Run started is picked up.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		w.Poll()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll looks at the installed list once and swaps it in when it changed and
// is newer. It reports whether the policy now enforces another list.
func (w *Watcher) Poll() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := os.Stat(w.path)
	if err != nil {
		if w.last != nil || !errors.Is(err, fs.ErrNotExist) {
			w.last = nil
			w.report(&RemovedError{Path: w.path, Err: err})
		}
		return false
	}
	if w.last != nil && os.SameFile(w.last, fi) && fi.Size() == w.last.Size() && fi.ModTime().Equal(w.last.ModTime()) {
		return false
	}
	// Recorded before reading: a file replaced while it is read differs
	// from fi at the next poll and is read again.
	w.last = fi
	l, st, err := active.Load(w.opts.Dir)
	if err != nil {
		w.report(err)
		return false
	}
	if st == nil { // removed between Stat and Load
		w.last = nil
		w.report(&RemovedError{Path: w.path, Err: fs.ErrNotExist})
		return false
	}
	old := w.policy.List()
	swapped, err := w.policy.Update(l)
	if err != nil {
		w.report(err)
		return false
	}
	if swapped && w.opts.OnSwap != nil {
		w.opts.OnSwap(old, l)
	}
	return swapped
}

func (w *Watcher) report(err error) {
	if w.opts.OnError != nil {
		w.opts.OnError(err)
		return
	}
	slog.Warn("mitmguard guard: the installed blocklist was not taken; the previous list stays in force", "err", err)
}

// RemovedError reports an installed list that disappeared or cannot be
// looked at. The list in force stays: a removed file must not lift blocks.
type RemovedError struct {
	Path string
	Err  error
}

func (e *RemovedError) Error() string {
	return fmt.Sprintf("the installed list %s cannot be looked at (%v); the list in force stays", e.Path, e.Err)
}

func (e *RemovedError) Unwrap() error { return e.Err }
