package truststore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mitmguard/mitmguard/internal/atomicfile"
)

// JournalDir is where, under the root, an applied distrust keeps its journal
// and the snapshots that Undo restores.
const JournalDir = "/var/lib/mitmguard/distrust"

// journal records an apply, step by step. It is rewritten atomically after
// every change, so an interrupted apply leaves a journal that names every
// step that may have changed anything.
type journal struct {
	Version int            `json:"version"`
	Root    string         `json:"root"`
	Started time.Time      `json:"started"`
	Steps   []journalEntry `json:"steps"`
}

type journalEntry struct {
	Step     Step       `json:"step"`
	State    string     `json:"state"` // started, done
	Snapshot []snapItem `json:"snapshot"`
}

// JournalExistsError refuses a second apply before the first is undone.
type JournalExistsError struct{ Path string }

func (e *JournalExistsError) Error() string {
	return fmt.Sprintf("truststore: an earlier distrust was applied and not undone (journal %s): run mitmguard distrust --undo first", e.Path)
}

// NotPermittedError refuses an apply that could not write the stores.
type NotPermittedError struct {
	Path   string
	Reason string
}

func (e *NotPermittedError) Error() string {
	return fmt.Sprintf("truststore: not permitted to change %s: %s", e.Path, e.Reason)
}

// ErrNoJournal is returned by Undo when there is nothing to undo.
var ErrNoJournal = errors.New("truststore: no distrust journal found: nothing to undo")

// ApplyOptions configure Apply.
type ApplyOptions struct {
	// AfterStep, if set, is called after step i is done and journaled. Tests
	// use it to interrupt an apply between two stores.
	AfterStep func(i int)
}

// Apply carries out the plan's steps that are not manual, each after
// snapshotting what it may change. It returns the steps done.
func Apply(ctx context.Context, p *Plan, opts ApplyOptions) ([]Step, error) {
	r := rootFS{root: p.Root}
	jdir := r.real(JournalDir)
	jpath := filepath.Join(jdir, "journal.json")
	if _, err := os.Stat(jpath); err == nil {
		return nil, &JournalExistsError{Path: jpath}
	}
	if err := checkPermitted(r, p); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(jdir, 0o700); err != nil {
		return nil, &NotPermittedError{Path: jdir, Reason: err.Error()}
	}
	j := &journal{Version: 1, Root: p.Root, Started: time.Now().UTC(), Steps: []journalEntry{}}
	if err := j.write(jpath); err != nil {
		return nil, err
	}
	var done []Step
	for i, st := range p.Steps {
		if st.Manual || st.run == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
		var real []string
		for _, c := range st.Changes {
			real = append(real, r.real(c))
		}
		snap, err := snapshot(real, filepath.Join(jdir, "blobs"))
		if err != nil {
			return done, fmt.Errorf("backing up %s: %w", st.StorePath, err)
		}
		j.Steps = append(j.Steps, journalEntry{Step: st, State: "started", Snapshot: snap})
		if err := j.write(jpath); err != nil {
			return done, err
		}
		if err := st.run(ctx, r, runCommand); err != nil {
			return done, fmt.Errorf("%s %s: %w (mitmguard distrust --undo restores what was changed)", st.Store, st.StorePath, err)
		}
		j.Steps[len(j.Steps)-1].State = "done"
		if err := j.write(jpath); err != nil {
			return done, err
		}
		done = append(done, st)
		if opts.AfterStep != nil {
			opts.AfterStep(i)
		}
	}
	return done, nil
}

// Undo restores, newest first, every file that the journaled apply under
// root backed up, including a step that was interrupted, and then removes
// the journal. It returns the steps undone.
func Undo(root string) ([]Step, error) {
	r := rootFS{root: root}
	jdir := r.real(JournalDir)
	jpath := filepath.Join(jdir, "journal.json")
	data, err := os.ReadFile(jpath)
	if os.IsNotExist(err) {
		return nil, ErrNoJournal
	}
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("truststore: journal %s is damaged: %w", jpath, err)
	}
	var undone []Step
	for i := len(j.Steps) - 1; i >= 0; i-- {
		if err := restore(j.Steps[i].Snapshot, filepath.Join(jdir, "blobs")); err != nil {
			return undone, fmt.Errorf("restoring %s: %w", j.Steps[i].Step.StorePath, err)
		}
		undone = append(undone, j.Steps[i].Step)
	}
	return undone, os.RemoveAll(jdir)
}

func (j *journal) write(path string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600, nil)
}

// checkPermitted refuses early, before anything changes: the running system
// needs root, and every path a step changes must be writable.
func checkPermitted(r rootFS, p *Plan) error {
	if (r.root == "/" || r.root == "") && os.Geteuid() != 0 {
		return &NotPermittedError{Path: "/", Reason: "changing the system's trust stores needs root (run with sudo)"}
	}
	for _, st := range p.Steps {
		if st.Manual {
			continue
		}
		for _, c := range st.Changes {
			path := r.real(c)
			for {
				if _, err := os.Lstat(path); err == nil {
					break
				}
				parent := filepath.Dir(path)
				if parent == path {
					break
				}
				path = parent
			}
			if err := syscall.Access(path, 2 /* W_OK */); err != nil {
				return &NotPermittedError{Path: path, Reason: err.Error()}
			}
		}
	}
	return nil
}
