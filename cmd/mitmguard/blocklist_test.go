package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/crlset"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// writeGeneratedList writes a blocklist of n entries known by key only,
// spread over Chromium's lists, and returns its path.
func writeGeneratedList(t *testing.T, n int) string {
	t.Helper()
	type entry struct {
		ID       string   `json:"id"`
		Name     string   `json:"name"`
		Kind     string   `json:"kind"`
		SPKI     string   `json:"spki_sha256"`
		Chromium []string `json:"chromium_lists,omitempty"`
	}
	lists := [][]string{nil, {"blocked"}, {"known-interception"}, {"blocked", "known-interception"}}
	var entries []entry
	for i := range n {
		sum := sha256.Sum256(fmt.Appendf(nil, "generated key %d", i))
		entries = append(entries, entry{ID: fmt.Sprintf("gen-%05d", i), Name: fmt.Sprintf("Generated %d", i), Kind: "user", SPKI: fmt.Sprintf("%x", sum), Chromium: lists[i%len(lists)]})
	}
	data, err := json.Marshal(map[string]any{"format": "mitmguard-blocklist", "format_version": 1, "list_version": 7, "entries": entries})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), fmt.Sprintf("list-%d.json", n))
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// A generated list as large as a CRLSet can carry round-trips through
// `blocklist export --list F --format crlset` and `compare-crlset --list F`:
// every interception key is found, exit 0. Past about 1,400 keys the export
// wrote a header whose 16-bit length had wrapped (a corrupt file, exit 0);
// now a list too large for the format is refused with a clear error and no
// file. A 5,000-entry list cannot be a CRLSet at all (its header would take
// about 235 KB): it round-trips through the spki-sha256 format instead.
func TestBlocklistCRLSetRoundTrip(t *testing.T) {
	const fits = 1380
	list := writeGeneratedList(t, fits)
	out := filepath.Join(t.TempDir(), "list.crlset")
	if code, _, stderr := runCLI("blocklist", "export", "--list", list, "--format", "crlset", "--output", out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	c, err := crlset.Parse(data)
	if err != nil {
		t.Fatalf("exported CRLSet does not parse: %v", err)
	}
	if n := len(c.Header.BlockedSPKIs) + len(c.InterceptionSPKIs()); n != fits || c.Header.Sequence != 7 {
		t.Errorf("CRLSet carries %d keys (sequence %d), want %d", n, c.Header.Sequence, fits)
	}
	code, stdout, stderr := runCLI("blocklist", "compare-crlset", "--list", list, out)
	if code != 0 || !strings.Contains(stdout, "\n0 interception keys of the CRLSet are not on the blocklist") || strings.Contains(stdout, "NOT LISTED") {
		t.Fatalf("compare: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := strings.Count(stdout, "  on both "); n != len(c.InterceptionSPKIs()) || n < fits/2 {
		t.Errorf("%d keys found on both", n)
	}
	// Compared with the active list instead, the generated keys are missing.
	if _, stdout, _ := runCLI("blocklist", "compare-crlset", out); !strings.Contains(stdout, "NOT LISTED") {
		t.Error("compare without --list used the given list")
	}

	big := writeGeneratedList(t, 5000)
	tooBig := filepath.Join(t.TempDir(), "big.crlset")
	code, _, stderr = runCLI("blocklist", "export", "--list", big, "--format", "crlset", "--output", tooBig)
	if code != 1 || !strings.Contains(stderr, "5000 entries as a CRLSet") || !strings.Contains(stderr, "CRLSet format holds at most 65535 bytes") {
		t.Errorf("5,000 entries as a CRLSet: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(tooBig); err == nil {
		t.Error("a CRLSet too large for the format was written")
	}
	code, stdout, stderr = runCLI("blocklist", "export", "--list", big, "--format", "spki-sha256")
	if code != 0 {
		t.Fatalf("spki-sha256: exit %d: %s", code, stderr)
	}
	data, _ = os.ReadFile(big)
	l, err := blocklist.Load(data, big)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(stdout, "\n"); lines != 5000 || l.Len() != 5000 {
		t.Errorf("%d lines for %d entries", lines, l.Len())
	}
}

// --list and check's --roots and --blocklist read a file written by the
// real `openssl x509 -trustout` (TRUSTED CERTIFICATE blocks).
func TestTrustedCertificateFiles(t *testing.T) {
	openssl := testtool.Need(t, "openssl", "openssl")
	dir := t.TempDir()
	trustout := func(in string) string {
		out := filepath.Join(dir, filepath.Base(in)+".trusted.pem")
		if b, err := exec.Command(openssl, "x509", "-in", in, "-trustout", "-addtrust", "serverAuth", "-out", out).CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v\n%s", err, b)
		}
		return out
	}
	// The Qaznet root as a TRUSTED CERTIFICATE is a blocklist: the real
	// chain signed by it is known interception.
	qaznet := trustout("../../blocklist/testdata/chromium/b5ba8dd7f89564c2889d3d6453c84998c77824919b64ea0835aa62986591be50.pem")
	if code, stdout, stderr := runCLI("blocklist", "validate", qaznet); code != 0 || !strings.Contains(stdout, "1 entries, valid") {
		t.Fatalf("validate: exit %d %s %s", code, stdout, stderr)
	}
	if code, stdout, _ := runCLI("blocklist", "export", "--list", qaznet, "--format", "spki-sha256"); code != 0 || !strings.HasPrefix(stdout, "b5ba8dd7f89564c2") {
		t.Errorf("export --list: exit %d %q", code, stdout)
	}
	// Google's 2023 chain: its intermediate, as a TRUSTED CERTIFICATE, is
	// the only root (--roots) the lone leaf can verify to, and, as a
	// --blocklist, makes the whole chain known interception.
	google := "../../verdict/testdata/go-x509/www.google.com-2023.pem"
	chainPEM, err := os.ReadFile(google)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.SplitAfter(string(chainPEM), "-----END CERTIFICATE-----\n")
	leafFile, interFile := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "inter.pem")
	if os.WriteFile(leafFile, []byte(blocks[0]), 0o644) != nil || os.WriteFile(interFile, []byte(blocks[1]), 0o644) != nil {
		t.Fatal("cannot write the chain's parts")
	}
	inter := trustout(interFile)
	at := "2023-02-28T20:24:52Z"
	code, stdout, stderr := runCLI("check", "--no-system-roots", "--roots", inter, "--chain", leafFile, "--name", "www.google.com", "--at", at)
	if code != 0 || !strings.Contains(stdout, "OK  ok") || !strings.Contains(stdout, "matched name: www.google.com") {
		t.Errorf("check --roots TRUSTED CERTIFICATE: exit %d\n%s%s", code, stdout, stderr)
	}
	// A roots file is not a chain: more than a chain's 32 certificates read.
	many := filepath.Join(dir, "many-roots.pem")
	os.WriteFile(many, []byte(strings.Repeat(blocks[1], 40)), 0o644)
	if code, stdout, stderr := runCLI("check", "--no-system-roots", "--roots", many, "--chain", leafFile, "--name", "www.google.com", "--at", at); code != 0 {
		t.Errorf("check --roots with 40 certificates: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI("check", "--no-system-roots", "--blocklist", inter, "--chain", google, "--name", "www.google.com", "--at", at)
	if code != 2 || !strings.Contains(stdout, "mitm.known:user-") {
		t.Errorf("check --blocklist TRUSTED CERTIFICATE: exit %d\n%s%s", code, stdout, stderr)
	}
}
