package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The interner gives each value back as it was, and stays bounded however
// many distinct values a (possibly hostile) store holds: a column cache
// that grew with the data would undo the export's flat memory.
func TestInternerBounded(t *testing.T) {
	for _, runs := range []bool{false, true} {
		in := interner{runs: runs}
		for i := range 3 * maxInterned {
			v := fmt.Sprintf("error %d", i%(2*maxInterned))
			for range 2 { // a run of two, then the same value again
				if got := in.str([]byte(v)); got != v {
					t.Fatalf("runs=%v: str(%q) = %q", runs, v, got)
				}
			}
			if len(in.m) > maxInterned {
				t.Fatalf("runs=%v: %d values kept, more than %d", runs, len(in.m), maxInterned)
			}
		}
		if runs && in.m != nil {
			t.Fatalf("a runs interner kept a map of %d values", len(in.m))
		}
		if in.str(nil) != "" {
			t.Fatal("str(nil) is not the empty string")
		}
	}
}

// The export's connection never creates a file, reads only, and reports
// SQLite's own message.
func TestLiteConnErrors(t *testing.T) {
	dir := t.TempDir()
	var le *liteError
	if _, err := openLite(filepath.Join(dir, "missing.db")); !errors.As(err, &le) {
		t.Fatalf("opening a missing file: %v, want a *liteError", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening a missing file created it (%v)", err)
	}
	st, err := Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lc, err := openLite(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.close()
	if _, err := lc.query(`SELECT nope FROM records`); !errors.As(err, &le) || !strings.Contains(le.Msg, "nope") {
		t.Fatalf("a bad query: %v, want SQLite's message naming the column", err)
	}
	if err := lc.exec(`DELETE FROM campaigns`); !errors.As(err, &le) {
		t.Fatalf("a write on the export's connection: %v, want it refused", err)
	}
}
