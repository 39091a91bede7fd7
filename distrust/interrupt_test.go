//go:build unix

package distrust

import (
	"github.com/mitmguard/mitmguard/truststore"

	"context"
	"errors"
	"fmt"
	"github.com/mitmguard/mitmguard/internal/storetest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// helperEnv makes the test binary act as `mitmguard distrust --apply` that
// is killed (SIGKILL, no cleanup) right after its first store.
const helperEnv = "MITMGUARD_TRUSTSTORE_APPLY_AND_DIE"

// asUserEnv makes the test binary try to apply to the running system, run
// as an unprivileged user by TestNotRoot.
const asUserEnv = "MITMGUARD_TRUSTSTORE_APPLY_AS_USER"

func TestMain(m *testing.M) {
	if os.Getenv(asUserEnv) != "" {
		_, err := Apply(context.Background(), &Plan{Root: "/"}, ApplyOptions{})
		fmt.Println(err)
		os.Exit(4)
	}
	if root := os.Getenv(helperEnv); root != "" {
		stores, err := truststore.Read(truststore.Options{Root: root})
		if err != nil {
			panic(err)
		}
		plan, err := MakePlan(truststore.Audit(stores, nil), root, true)
		if err != nil {
			panic(err)
		}
		_, err = Apply(context.Background(), plan, ApplyOptions{AfterStep: func(int) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}})
		fmt.Fprintln(os.Stderr, "helper was not killed:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestInterruptedApply(t *testing.T) {
	f := storetest.New(t)
	before := storetest.Tree(t, f.Root)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+f.Root)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper: %v\n%s", err, out)
	}

	// The journal names exactly the first step, done; every file outside
	// that step's changes is untouched.
	data, err := os.ReadFile(filepath.Join(f.Root, JournalDir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := parseJournal(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Steps) != 1 || j.Steps[0].State != "done" {
		t.Fatalf("journal: %d steps, %+v", len(j.Steps), j.Steps)
	}
	changed := storetest.Diff(before, storetest.Tree(t, f.Root))
	inStep := func(p string) bool {
		for _, c := range append(j.Steps[0].Paths, strings.TrimPrefix(JournalDir, "/")) {
			if p == c || strings.HasPrefix(p, c+"/") {
				return true
			}
		}
		return false
	}
	if len(changed) == 0 {
		t.Fatal("the first step changed nothing")
	}
	for _, p := range changed {
		p = strings.TrimSuffix(p, " (added)")
		if !inStep(p) {
			t.Errorf("%s changed outside the journaled step", p)
		}
	}
	// A new apply is refused until the interrupted one is undone.
	if _, err := Apply(context.Background(), mustPlan(t, audit(t, f.Root), f.Root, true), ApplyOptions{}); err == nil {
		t.Fatal("apply over an interrupted journal was accepted")
	}
	if err := undo(f.Root); err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, f.Root)); len(d) != 0 {
		t.Fatalf("undo after interruption left differences: %v", d)
	}
}

// Applying to the running system without root is refused before anything
// is touched.
func TestNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		// Already unprivileged: check directly.
		_, err := Apply(context.Background(), &Plan{Root: "/"}, ApplyOptions{})
		var np *NotPermittedError
		if !errors.As(err, &np) {
			t.Fatalf("err = %v", err)
		}
		return
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), asUserEnv+"=1")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "needs root") {
		t.Fatalf("unprivileged apply: %s", out)
	}
}
