//go:build windows

package update

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is where the locked byte lies: far past the PID the file
// holds, because Windows locks are mandatory and a waiting run must still
// read the PID.
const lockOffset = 1 << 32

// tryLock takes an exclusive LockFileEx lock without waiting: nil, nil
// when another handle holds it. Windows releases it when the process dies.
func tryLock(f *os.File) (func() error, error) {
	h := windows.Handle(f.Fd())
	ol := func() *windows.Overlapped { return &windows.Overlapped{OffsetHigh: lockOffset >> 32} }
	err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol())
	switch {
	case err == nil:
		return func() error { return windows.UnlockFileEx(h, 0, 1, 0, ol()) }, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return nil, nil
	default:
		return nil, err
	}
}
