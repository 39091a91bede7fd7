// Package testtool decides what a test does when an outside program it
// drives (certutil, keytool, chromium, a PostgreSQL server ...) is missing.
//
// On a developer's machine a missing tool skips the test with a message that
// names the Debian package to install, so the README's test command passes on
// a fresh machine. Under CI (the CI environment variable set, as .ci/run
// does) the same test fails instead: CI installs every tool, and a test that
// silently skipped there would hide a broken install step.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be skipped
// for want of a tool.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// Need returns the path of program, or stops the test: skipped outside CI,
// failed under CI. pkg names the Debian package that provides it.
func Need(t testing.TB, program, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	Missing(t, program+" (Debian package "+pkg+")")
	return ""
}

// Missing stops the test because what (a tool or a service, with how to
// get it) is unavailable: skipped outside CI, failed under CI.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required and missing; .ci/run installs it", what)
	}
	t.Skipf("%s is missing: skipped (under CI=1 this test fails)", what)
}
