package update

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFile is the file in the list folder that an update holds locked for
// its whole run, so that two runs on one folder (the systemd timer and a
// user, say) never interleave their metadata and list writes. It stays in
// the folder between runs; what it holds is the PID of the last run to
// take it, read only to name the holder to a run that must wait.
const LockFile = "update.lock"

// BusyError reports a folder that another run holds, when the caller asked
// not to wait (Client.NoWait).
type BusyError struct {
	Path string // the lock file
	PID  int    // the holder's process ID; 0 when it could not be read
}

func (e *BusyError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("another mitmguard update holds %s (%s); try again when it has finished", e.Path, holder)
}

// dirLock is an exclusive hold on a list folder; release gives it up. The
// operating system also gives it up when the process dies, so a killed run
// leaves nothing to clean up (except with the fallback of lock_other.go).
type dirLock struct {
	f       *os.File
	release func() error
}

// Unlock gives the folder up, first emptying the file so that no later
// reader takes this run's PID for a holder's.
func (l *dirLock) Unlock() error {
	l.f.Truncate(0)
	err := l.release()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockPoll bounds how long a waiting run sleeps between two tries: the
// wait is a poll so that the context can end it.
const (
	lockPollMin = 20 * time.Millisecond
	lockPollMax = 500 * time.Millisecond
)

// lockDir takes the folder's lock. When another run holds it, lockDir
// returns a *BusyError if noWait, else calls waiting once with the
// holder's PID (0 if unknown) and waits until the lock is free or ctx ends.
func lockDir(ctx context.Context, dir string, noWait bool, waiting func(pid int)) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	pause := lockPollMin
	for told := false; ; {
		release, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if release != nil {
			// Name this run as the holder. A run that reads the file in
			// between sees no PID, and says so.
			if err := f.Truncate(0); err == nil {
				f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			}
			return &dirLock{f: f, release: release}, nil
		}
		if noWait {
			f.Close()
			return nil, &BusyError{Path: path, PID: holderPID(path)}
		}
		if !told && waiting != nil {
			waiting(holderPID(path))
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, lockPollMax)
	}
}

// holderPID reads the PID the holder wrote, bounded: the file is in the
// folder whose writers are trusted, but a damaged one must not be read whole.
func holderPID(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 32))
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
