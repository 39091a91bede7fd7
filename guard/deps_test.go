package guard_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/testtool"
)

// A program that imports guard links the blocklist and the chain reader, not
// the classifier, the root program or the network probes: guard is the
// part of mitmguard other programs embed. It linked verdict (and with it
// the Mozilla root bundle) for three advice strings before. A program that
// also watches the installed list (guard/watch) adds only the reader of
// that list, not the update client (TUF, HTTP mirrors). The guard's default
// list is the installed one, so the guard itself reads it through
// update/active, which depends on nothing but blocklist.
func TestGuardDependencies(t *testing.T) {
	goTool := testtool.Need(t, "go", "golang-go")
	const mod = "github.com/mitmguard/mitmguard/"
	base := []string{mod + "guard", mod + "blocklist", mod + "chain", mod + "update/active"}
	for pkg, allowed := range map[string][]string{
		".":       base,
		"./watch": append([]string{mod + "guard/watch"}, base...),
	} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, mod) && !slices.Contains(allowed, dep) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
