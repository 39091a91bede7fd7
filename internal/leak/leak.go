// Package leak checks, in tests, that code leaves no goroutine behind.
package leak

import (
	"runtime"
	"testing"
	"time"
)

// Check runs fn and fails the test if more goroutines remain afterwards
// than before, allowing slack for ones that are known to end on their own,
// and up to five seconds for the rest to finish.
func Check(t testing.TB, slack int, fn func()) {
	t.Helper()
	before := runtime.NumGoroutine()
	fn()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+slack && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+slack {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, g, buf[:runtime.Stack(buf, true)])
	}
}
