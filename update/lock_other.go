//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package update

import (
	"errors"
	"os"
)

// tryLock is the portable fallback where there is no flock(2) or
// LockFileEx: a second file, created exclusively, marks the hold. Unlike a
// real lock it survives a killed run; the BusyError names the lock file,
// and removing its ".held" companion frees the folder.
func tryLock(f *os.File) (func() error, error) {
	held := f.Name() + ".held"
	h, err := os.OpenFile(held, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	switch {
	case err == nil:
		h.Close()
		return func() error { return os.Remove(held) }, nil
	case errors.Is(err, os.ErrExist):
		return nil, nil
	default:
		return nil, err
	}
}
