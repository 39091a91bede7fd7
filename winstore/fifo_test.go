//go:build unix

package winstore_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/regf"
	"github.com/mitmguard/mitmguard/winstore"
)

// A FIFO where a folder is looked into (Users, or Windows when the hive
// is looked for case-insensitively) is a problem of the volume, not an
// audit that waits forever for a writer.
func TestFIFOFolder(t *testing.T) {
	for _, fifo := range []string{"Users", "Windows/System32"} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "Windows"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(dir, fifo), 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var v *winstore.Volume
		go func() {
			var err error
			v, err = winstore.ReadDir(context.Background(), dir, regf.Limits{})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil || len(v.Problems) == 0 {
				t.Errorf("FIFO %s: %v, problems %v", fifo, err, v)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("reading a volume whose %s is a FIFO does not return", fifo)
		}
	}
}
