//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package update

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes an flock(2) lock on f without waiting: nil, nil when
// another open file holds it. flock locks belong to the open file, so two
// runs in one process exclude each other too.
func tryLock(f *os.File) (func() error, error) {
	fd := int(f.Fd())
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return func() error { return unix.Flock(fd, unix.LOCK_UN) }, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return nil, nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return nil, err
		}
	}
}
