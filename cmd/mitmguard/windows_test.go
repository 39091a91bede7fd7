package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/winstore"
	"github.com/mitmguard/mitmguard/winstore/winstoretest"
)

// Issue 17, done when: audit --root on a Windows volume whose hives hivexsh
// wrote reports Qaznet (machine ROOT) and ISCA (Aigerim's NTUSER.DAT Root)
// as trusted known-interception roots, the Group Policy corporate root as
// not public, the ISCA CA in Disallowed as distrusted, and exits 2.
func TestAuditWindowsVolume(t *testing.T) {
	t.Setenv("MITMGUARD_DIR", t.TempDir())
	k := winstoretest.NewKazakh(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"audit", "--root", k.Dir, "--json"}, &out, &errOut); code != exitIntercepted {
		t.Fatalf("exit %d, want 2\n%s%s", code, out.String(), errOut.String())
	}
	var rep auditJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || rep.Summary["known_interception_trusted"] != 2 || rep.Summary["not_public_trusted"] != 1 || rep.Summary["stores"] != 4 {
		t.Fatalf("summary %v complete %v (%s)", rep.Summary, rep.Complete, rep.Incomplete)
	}
	th := winstore.Thumbprint
	var got []string
	for _, f := range rep.Findings {
		got = append(got, strings.Join([]string{string(f.Status), string(f.Trust), string(f.Store), f.Owner, f.Label, f.EntryID}, " "))
	}
	sort.Strings(got)
	want := []string{
		"known-interception distrusted windows-disallowed machine " + th(k.ISCACA) + " kz-2020-isca-ca",
		"known-interception distrusted windows-root machine " + th(k.ISCACA) + " kz-2020-isca-ca",
		"known-interception trusted windows-root machine " + th(k.Qaznet) + " kz-2019-qaznet",
		"known-interception trusted windows-root user Aigerim " + th(k.ISCA) + " kz-2021-isca",
		"not-public trusted windows-root machine (Group Policy) " + th(k.Corp) + " ",
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Issue 17 item 2 through the CLI: hives that cannot be read make the audit
// partial (exit 1, "PARTIAL AUDIT"), each with its reason, and never read
// as a clean result.
func TestAuditWindowsPartial(t *testing.T) {
	t.Setenv("MITMGUARD_DIR", t.TempDir())
	k := winstoretest.NewKazakh(t)
	sw := filepath.Join(k.Dir, "Windows", "system32", "CONFIG", "SOFTWARE")
	if err := os.Truncate(sw, 1<<30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	user := filepath.Join(k.Dir, "Users", "Aigerim", "ntuser.dat")
	outside := filepath.Join(t.TempDir(), "NTUSER.DAT")
	if err := os.Rename(user, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, user); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"audit", "--root", k.Dir}, &out, &errOut); code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	for _, s := range []string{
		"windows-volume",
		"problem: /Windows/system32/CONFIG/SOFTWARE: regf: hive is 1073741824 bytes, larger than the 536870912-byte limit",
		"problem: /Users/Aigerim/ntuser.dat: winstore: Users/Aigerim/ntuser.dat is a symbolic link to " + outside + ", out of the volume: refused",
		"PARTIAL AUDIT: 2 file(s)",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "PARTIAL AUDIT") {
		t.Errorf("stderr: %s", errOut.String())
	}
	if strings.Contains(out.String(), "KNOWN INTERCEPTION") {
		t.Errorf("a finding from an unread hive:\n%s", out.String())
	}
}

// A profile folder's name is the volume's, not the user's: control
// characters in it (a terminal escape, a line break that forges a line of
// the report) never reach the terminal as they are.
func TestAuditHostileProfileName(t *testing.T) {
	t.Setenv("MITMGUARD_DIR", t.TempDir())
	k := winstoretest.NewKazakh(t)
	evil := "Aigerim\x1b]0;pwned\x07\u202e\n\nno trusted root is known to intercept"
	if err := os.Rename(filepath.Join(k.Dir, "Users", "Aigerim"), filepath.Join(k.Dir, "Users", evil)); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"audit", "--root", k.Dir}, &out, &errOut); code != exitIntercepted {
		t.Fatalf("exit %d, want 2\n%s%s", code, out.String(), errOut.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "no trusted root") || strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f || r == '\u202e' }) {
			t.Fatalf("hostile profile name reached the output as it is: %q\n%s", line, out.String())
		}
	}
	if !strings.Contains(out.String(), "user Aigerim?]0;pwned????no trusted root") {
		t.Errorf("the profile is not named:\n%s", out.String())
	}
}

// The distrust plan of that volume names the profile the same safe way.
func TestDistrustPlanHostileProfileName(t *testing.T) {
	t.Setenv("MITMGUARD_DIR", t.TempDir())
	k := winstoretest.NewKazakh(t)
	evil := "Aigerim\x1b[2J\ndone: nothing"
	if err := os.Rename(filepath.Join(k.Dir, "Users", "Aigerim"), filepath.Join(k.Dir, "Users", evil)); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	run([]string{"distrust", "--root", k.Dir}, &out, &errOut)
	if !strings.Contains(out.String(), "of user Aigerim?[2J?done: nothing") {
		t.Fatalf("plan:\n%s%s", out.String(), errOut.String())
	}
	if strings.ContainsAny(out.String(), "\x1b") || strings.Contains(out.String(), "\ndone: nothing") {
		t.Fatalf("hostile profile name reached the plan as it is:\n%s", out.String())
	}
}
