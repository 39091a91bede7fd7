//go:build unix

package winstore

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO planted where a hive should be: the open itself must not block
// (it would wait for a writer for ever), and the type is refused on the
// opened file, not on a check made before opening that a swap can beat.
func TestOpenHiveFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "SOFTWARE"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		f, _, err := openHive(r, "SOFTWARE")
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var nr *NotRegularError
		if !errors.As(err, &nr) || nr.Mode&os.ModeNamedPipe == 0 {
			t.Fatalf("FIFO: %v", err)
		}
	case <-time.After(time.Minute): // a guard against the blocking open, not a timing assertion
		t.Fatal("opening a FIFO as a hive blocked")
	}
}
