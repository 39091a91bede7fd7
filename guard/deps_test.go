package guard_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/testtool"
)

// A program that imports guard links the blocklist and the chain reader, not
// the classifier, the root program or the network probes: guard is the
// part of mitmguard other programs embed. It linked verdict (and with it
// the Mozilla root bundle) for three advice strings before.
func TestGuardDependencies(t *testing.T) {
	goTool := testtool.Need(t, "go", "golang-go")
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/mitmguard/mitmguard/guard":     true,
		"github.com/mitmguard/mitmguard/blocklist": true,
		"github.com/mitmguard/mitmguard/chain":     true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/mitmguard/mitmguard/") && !allowed[dep] {
			t.Errorf("guard depends on %s", dep)
		}
	}
}
