package main

import (
	"errors"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/storetest"
	"github.com/mitmguard/mitmguard/internal/testtool"
	"github.com/mitmguard/mitmguard/winstore"
	"github.com/mitmguard/mitmguard/winstore/winstoretest"
)

// mainEnv makes the test binary run mitmguard's main, for tests that need
// a real process to kill.
const mainEnv = "MITMGUARD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	testscript.Main(m, map[string]func(){
		"mitmguard": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the transcripts in testdata/script. Each script gets a
// running lab: $MIDDLEBOX, $ORIGIN, $INCOMPLETE are its addresses, and
// public-root.pem and national-root.pem its roots, in $WORK.
func TestScripts(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("MITMGUARD_DIR", env.WorkDir+"/mitmguard-state") // not this machine's active list
			env.Setenv("MIDDLEBOX", l.MiddleboxAddr)
			env.Setenv("ORIGIN", l.OriginAddr)
			env.Setenv("INCOMPLETE", l.IncompleteAddr)
			env.Setenv("DATA", mustAbs("../../verdict/testdata/go-x509"))
			env.Setenv("BLOCKED", mustAbs("../../blocklist/testdata/chromium"))
			if strings.HasPrefix(path.Base(env.T().(testing.TB).Name()), "store_") {
				// Scripts about trust stores get a device built with the
				// real tools under $WORK/device: skipped without them,
				// except under CI.
				t := env.T().(testing.TB)
				testtool.Need(t, "update-ca-certificates", "ca-certificates")
				testtool.Need(t, "certutil", "libnss3-tools")
				testtool.Need(t, "openssl", "openssl")
				f := storetest.New(t)
				env.Setenv("DEVICE", f.Root)
				env.Setenv("JAVA", strconv.FormatBool(f.Java))
			}
			if strings.HasPrefix(path.Base(env.T().(testing.TB).Name()), "win_") {
				// Scripts about Windows get the Kazakh volume, its hives
				// written by hivexsh, under $WINVOL.
				k := winstoretest.NewKazakh(env.T().(testing.TB))
				env.Setenv("WINVOL", k.Dir)
				env.Setenv("QAZNET", winstore.Thumbprint(k.Qaznet))
				env.Setenv("ISCA", winstore.Thumbprint(k.ISCA))
			}
			return l.WriteFiles(env.WorkDir)
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){"status": status},
	})
}

// status N CMD ARGS... runs CMD like exec and checks that it exits with N.
func status(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: %v", err)
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("status: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

func mustAbs(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return wd + "/" + p
}
