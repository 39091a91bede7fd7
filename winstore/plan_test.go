package winstore_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/regf"
	"github.com/mitmguard/mitmguard/winstore"
)

func cert(t testing.TB, d []byte) *chain.Cert {
	t.Helper()
	c, err := chain.NewCert(d)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func stepStrings(p *winstore.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, fmt.Sprintf("%s %s %s %s", s.Action, s.Location, s.Store, s.Thumbprint()))
	}
	return out
}

func TestPlanDistrust(t *testing.T) {
	f := newFixture(t)
	v, err := winstore.ReadDir(context.Background(), f.dir, regf.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	th := winstore.Thumbprint
	p := winstore.PlanDistrust(v.Stores, []*chain.Cert{cert(t, f.qaznet), cert(t, f.iscaCA), cert(t, f.isca), cert(t, f.corp)})
	want := []string{
		"add machine Disallowed " + th(f.qaznet),
		"remove machine Root " + th(f.qaznet),
		// already in Disallowed: only the removal
		"remove machine Root " + th(f.iscaCA),
		"add machine Disallowed " + th(f.isca),
		"remove user Root " + th(f.isca),
		// pushed by policy: distrusted, not removed
		"add machine Disallowed " + th(f.corp),
	}
	if got := stepStrings(p); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(p.Managed) != 2 || p.Managed[0].Store.Location != winstore.MachinePolicy || p.Managed[1].Store.Location != winstore.Enterprise {
		t.Fatalf("managed %+v", p.Managed)
	}

	undo := stepStrings(p.Undo())
	wantUndo := []string{
		"remove machine Disallowed " + th(f.corp),
		"add user Root " + th(f.isca),
		"remove machine Disallowed " + th(f.isca),
		"add machine Root " + th(f.iscaCA),
		"add machine Root " + th(f.qaznet),
		"remove machine Disallowed " + th(f.qaznet),
	}
	if strings.Join(undo, "\n") != strings.Join(wantUndo, "\n") {
		t.Fatalf("undo:\n%s", strings.Join(undo, "\n"))
	}

	ps := winstore.PowerShell(p)
	for _, line := range []string{
		// A user's store is changed by that user, unelevated: the machine
		// steps run only when elevated.
		"if (-not $admin) { Write-Warning",
		"if ($admin) {\n    $cer = Join-Path",
		"    Import-Certificate -FilePath $cer -CertStoreLocation Cert:\\LocalMachine\\Disallowed | Out-Null",
		`if ($env:USERNAME -eq 'Aigerim') { if (Test-Path -LiteralPath 'Cert:\CurrentUser\Root\` + th(f.isca) + `')`,
		`if (Test-Path -LiteralPath 'Cert:\LocalMachine\Root\` + th(f.qaznet) + `') { Remove-Item -LiteralPath 'Cert:\LocalMachine\Root\` + th(f.qaznet) + `' }`,
		`Remove-Item -LiteralPath 'Cert:\CurrentUser\Root\` + th(f.isca) + `'`,
		"# Not changed here: CN=Example Corp Root,O=Example Corp",
	} {
		if !strings.Contains(ps, line) {
			t.Errorf("script lacks %q:\n%s", line, ps)
		}
	}
	// Each certificate added is the DER itself.
	for _, m := range regexp.MustCompile(`FromBase64String\('([^']*)'\)`).FindAllStringSubmatch(ps, -1) {
		d, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil || !(bytes.Equal(d, f.qaznet) || bytes.Equal(d, f.isca) || bytes.Equal(d, f.corp)) {
			t.Errorf("added certificate is not a target: %v", err)
		}
	}
	if n := strings.Count(ps, "Import-Certificate"); n != 3 {
		t.Errorf("%d imports, want 3", n)
	}
	if strings.Contains(ps, "#Requires") {
		t.Error("a script that users run too requires elevation")
	}
	// Machine steps only: the script requires elevation.
	machineOnly := &winstore.Plan{Steps: p.Steps[:3]}
	if m := winstore.PowerShell(machineOnly); !strings.Contains(m, "#Requires -RunAsAdministrator") || strings.Contains(m, "$admin") {
		t.Errorf("machine-only script:\n%s", m)
	}
	if u := winstore.PowerShell(p.Undo()); !strings.Contains(u, "Import-Certificate -FilePath $cer -CertStoreLocation Cert:\\LocalMachine\\Root") ||
		!strings.Contains(u, `Remove-Item -LiteralPath 'Cert:\LocalMachine\Disallowed\`+th(f.qaznet)+`'`) {
		t.Errorf("undo script:\n%s", u)
	}
}

// A certificate's name cannot inject PowerShell: it only appears in
// comments, and a line break in it cannot end the comment.
func TestPowerShellHostileName(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "evil\nRemove-Item C:\\ -Recurse\r\u2028x'"},
		NotBefore:    time.Now(), NotAfter: time.Now().Add(time.Hour),
	}
	d, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c := cert(t, d)
	ps := winstore.PowerShell(&winstore.Plan{Steps: []winstore.Step{
		{Action: winstore.Add, Location: winstore.Machine, Store: "Disallowed", Cert: c},
		{Action: winstore.Remove, Location: winstore.User, Store: "root", Cert: c},
		{Action: winstore.Remove, Location: winstore.Machine, Store: "My'; rm -r C:\\", Cert: c},
		// A profile folder's name is the volume's: only plain names are
		// quoted into code (PowerShell also ends a string at a typographic
		// quote).
		{Action: winstore.Remove, Location: winstore.User, Store: "Root", User: "x\u2019; Remove-Item C:\\ -Recurse; \u2018", Cert: c},
		{Action: winstore.Remove, Location: winstore.User, Store: "Root", User: "eve'; rm -r C:\\ #", Cert: c},
	}})
	for _, line := range strings.Split(ps, "\n") {
		code := strings.TrimSpace(line)
		if !strings.HasPrefix(code, "#") && (strings.Contains(code, "Remove-Item C:") || strings.Contains(code, "rm -r") || strings.Contains(code, "My'")) {
			t.Fatalf("injected code %q in:\n%s", line, ps)
		}
	}
	if !strings.Contains(ps, "# Skipped: unknown store") {
		t.Fatalf("unknown store not skipped:\n%s", ps)
	}
	if !strings.Contains(ps, `Cert:\CurrentUser\Root\`+winstore.Thumbprint(d)) {
		t.Fatalf("store name not canonical:\n%s", ps)
	}
}
