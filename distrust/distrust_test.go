package distrust

import (
	"github.com/mitmguard/mitmguard/truststore"

	"context"
	"fmt"
	"github.com/mitmguard/mitmguard/internal/storetest"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func findings(rep *truststore.Report, status truststore.Status, trust truststore.Trust) map[truststore.Kind][]string {
	out := map[truststore.Kind][]string{}
	for _, f := range rep.Findings {
		if f.Status == status && f.Trust == trust {
			out[f.Store] = append(out[f.Store], f.EntryID+f.Subject)
		}
	}
	return out
}

func TestAuditDistrustUndo(t *testing.T) {
	f := storetest.New(t)
	before := storetest.Tree(t, f.Root)

	rep := audit(t, f.Root)
	if !rep.TrustsKnownInterception() {
		t.Fatal("audit missed the injected roots")
	}
	known := findings(rep, truststore.KnownInterception, truststore.Trusted)
	wantKinds := []truststore.Kind{truststore.DebianBundle, truststore.DebianHashedDir, truststore.DebianLocal, truststore.DebianShare, truststore.P11KitAnchors, truststore.NSS}
	if f.Java {
		wantKinds = append(wantKinds, truststore.Java)
	}
	for _, k := range wantKinds {
		if len(known[k]) == 0 {
			t.Errorf("no known-interception root found in %s", k)
		}
	}
	if len(known[truststore.NSS]) != 2 {
		t.Errorf("NSS: %v, want the ISCA CA (Chrome) and Qaznet (Firefox)", known[truststore.NSS])
	}
	notPublic := findings(rep, truststore.NotPublic, truststore.Trusted)
	if !strings.Contains(strings.Join(notPublic[truststore.DebianLocal], ","), "mitmguard lab national root") {
		t.Errorf("private root not flagged not-public: %v", notPublic)
	}
	if pub := findings(rep, truststore.Public, truststore.Trusted); len(pub[truststore.DebianBundle]) != 3 || len(pub[truststore.NSS]) != 1 {
		t.Errorf("public roots: %v", pub)
	}
	for _, s := range rep.Stores {
		if len(s.Problems) > 0 {
			t.Errorf("%s %s: problems %v", s.Kind, s.Path, s.Problems)
		}
	}

	plan := mustPlan(t, rep, f.Root, false)
	if n := len(plan.Steps); n != 4+btoi(f.Java) { // debian, p11kit, nss x2, java
		t.Fatalf("%d steps: %+v", n, plan.Steps)
	}
	if got := storetest.Tree(t, f.Root); len(storetest.Diff(before, got)) != 0 {
		t.Fatal("making a plan changed files")
	}
	if _, err := Apply(context.Background(), plan, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// A second apply before an undo is refused.
	if _, err := Apply(context.Background(), plan, ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "--undo") {
		t.Fatalf("second apply: %v", err)
	}

	after := audit(t, f.Root)
	if after.TrustsKnownInterception() {
		for _, fd := range after.Findings {
			if fd.Status == truststore.KnownInterception && fd.Trust == truststore.Trusted {
				t.Errorf("still trusted: %s in %s %s", fd.Subject, fd.Store, fd.File)
			}
		}
	}
	// The private root is still trusted: only known-interception was asked.
	if len(findings(after, truststore.NotPublic, truststore.Trusted)[truststore.DebianLocal]) != 1 {
		t.Error("the not-public root was removed without --include-not-public")
	}
	out := storetest.Run(t, "certutil", "-L", "-d", "sql:"+f.Root+"/root/.pki/nssdb")
	if !strings.Contains(out, "ISCA") || !regexpLine(out, "ISCA", "p,p,p") {
		t.Errorf("certutil -L does not show the distrust:\n%s", out)
	}
	if !strings.Contains(mustRead(t, f.Root+"/etc/ca-certificates.conf"), "!kz/ISCA_2021.crt") {
		t.Error("packaged Kazakh root not deselected")
	}

	if err := undo(f.Root); err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, f.Root)); len(d) != 0 {
		t.Fatalf("undo did not restore byte for byte: %v", d)
	}
	if err := undo(f.Root); err != ErrNoJournal {
		t.Errorf("second undo: %v", err)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func regexpLine(text, prefix, suffix string) bool {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := exec.Command("cat", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A Firefox profile that is open (its lock link exists) is not written to:
// the step is left to the user with the reason, the other stores proceed.
func TestFirefoxInUse(t *testing.T) {
	f := storetest.New(t)
	profile := f.Root + "/home/alice/.mozilla/firefox/abcd1234.default-release"
	if err := os.Symlink(fmt.Sprintf("127.0.0.1:+%d", os.Getpid()), profile+"/lock"); err != nil {
		t.Fatal(err)
	}
	plan := mustPlan(t, audit(t, f.Root), f.Root, false)
	var manual *Step
	for i, s := range plan.Steps {
		if s.Manual {
			manual = &plan.Steps[i]
		}
	}
	if manual == nil || manual.StorePath != "/home/alice/.mozilla/firefox/abcd1234.default-release" || !strings.Contains(manual.Reason, "close it") {
		t.Fatalf("manual step: %+v", manual)
	}
	before := storetest.Tree(t, profile)
	if _, err := Apply(context.Background(), plan, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(before, storetest.Tree(t, profile)); len(d) != 0 {
		t.Errorf("an open profile was changed: %v", d)
	}
	if !audit(t, f.Root).TrustsKnownInterception() {
		t.Error("the open profile's root should still be trusted")
	}
}
