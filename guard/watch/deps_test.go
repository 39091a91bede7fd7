package watch_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/testtool"
)

// A program that watches the installed list links the guard and the reader
// of the installed list, not the update client (TUF, HTTP mirrors).
func TestWatchDependencies(t *testing.T) {
	goTool := testtool.Need(t, "go", "golang-go")
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/mitmguard/mitmguard/guard/watch":   true,
		"github.com/mitmguard/mitmguard/guard":         true,
		"github.com/mitmguard/mitmguard/update/active": true,
		"github.com/mitmguard/mitmguard/blocklist":     true,
		"github.com/mitmguard/mitmguard/chain":         true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/mitmguard/mitmguard/") && !allowed[dep] {
			t.Errorf("guard/watch depends on %s", dep)
		}
	}
}
