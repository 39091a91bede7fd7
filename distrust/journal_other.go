//go:build !windows

package distrust

import "os"

// liveJournalDir is where the running Windows keeps its journal: only on
// Windows.
func liveJournalDir() (string, error) { return "", errNotWindows }

// makeJournalDir makes the Windows journal folder; off Windows (the tests'
// stand-in), readable by its owner only.
func makeJournalDir(dir string) error { return os.MkdirAll(dir, 0o700) }

// checkJournalOwner: off Windows the Windows journal is only a test's, in
// a folder of its own.
func checkJournalOwner(string) error { return nil }
