package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/pgtest"
)

// Every command that takes --db accepts a postgres:// DSN (issue 13):
// probe writes a campaign into PostgreSQL, and report and export read it
// back through the same opener. export used to refuse the DSN.
func TestReadCommandsAcceptPostgres(t *testing.T) {
	db := pgtest.Schema(t)
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts.txt")
	domains := filepath.Join(dir, "domains.txt")
	if err := os.WriteFile(hosts, []byte("127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(domains, []byte("facebook.com\nvk.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("probe", "--hosts", hosts, "--domains", domains, "--db", db,
		"--vantage", "kz-almaty", "--campaign", "c1", "--no-progress"); code != 0 {
		t.Fatalf("probe: exit %d: %s", code, errOut)
	}

	code, out, errOut := runCLI("export", "--db", db, "--format", "jsonl", "--output", "-")
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	want := `"type":"record","campaign":"c1","vantage":"kz-almaty","host":"127.0.0.1:1"`
	if n := strings.Count(out, want); n != 2 {
		t.Errorf("export wrote %d records of c1, want 2:\n%s", n, out)
	}

	code, out, errOut = runCLI("report", "--db", db, "--json")
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"c1"`) {
		t.Errorf("report does not name campaign c1:\n%s", out)
	}
}
