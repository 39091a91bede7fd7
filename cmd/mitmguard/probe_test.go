package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// A campaign killed with SIGKILL midway and resumed has exactly one record
// per (host, SNI) pair, each with the lab's truth.
func TestProbeKillAndResume(t *testing.T) {
	actions := make([]lab.Action, 16)
	for i := range actions {
		actions[i] = networkActions[i%len(networkActions)]
	}
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: actions, Domains: labTargeted, ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	var hosts strings.Builder
	for _, h := range n.Hosts {
		fmt.Fprintln(&hosts, h.Addr)
	}
	domains := append(append([]string{}, labTargeted...), labUntargeted...)
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostsFile := write("hosts.txt", hosts.String())
	domainsFile := write("domains.txt", strings.Join(domains, "\n"))
	rootFile := write("root.pem", string(lab.PEM(n.PublicRoot)))
	db := filepath.Join(dir, "m.db")
	jsonl := filepath.Join(dir, "out.jsonl")
	args := []string{"probe", "--hosts", hostsFile, "--domains", domainsFile, "--roots", rootFile, "--db", db, "--jsonl", jsonl,
		"--campaign", "killed", "--concurrency", "2", "--per-host", "1", "--no-progress"}
	// The timeouts bound only the lab's stalls: on a busy machine (load 10
	// on 2 cores) an honest handshake takes seconds, and a timeout it
	// exceeds would read as blocked.timeout.
	timeouts := []string{"--timeout", "30s", "--min-timeout", "3s"}
	args = append(args, timeouts...)

	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	count := func() int {
		c, err := st.Campaign(ctx, "killed")
		if err != nil {
			return 0
		}
		k, _ := st.Count(ctx, c)
		return k
	}
	deadline := time.Now().Add(5 * time.Minute) // a bound on failure only
	for count() < 2*len(domains) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	total := len(n.Hosts) * len(domains)
	killedAt := count()
	if killedAt == 0 || killedAt >= total {
		t.Fatalf("killed with %d of %d records: not midway", killedAt, total)
	}
	if killedAt%len(domains) != 0 {
		t.Fatalf("%d records: a host was half recorded", killedAt)
	}

	resume := []string{"probe", "--resume", "--campaign", "killed", "--hosts", hostsFile, "--roots", rootFile, "--db", db, "--jsonl", jsonl,
		"--concurrency", "8", "--no-progress"}
	resume = append(resume, timeouts...)
	var out strings.Builder
	if code := run(resume, &out, &out); code != 0 {
		t.Fatalf("resume exited %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "hosts were already stored") {
		t.Errorf("resume did not skip stored hosts:\n%s", out.String())
	}
	c, _ := st.Campaign(ctx, "killed")
	seen := map[string]bool{}
	err = st.Records(ctx, c, func(r measure.Record, _ measure.Control) error {
		key := r.Host + " " + r.SNI
		if seen[key] {
			t.Errorf("duplicate record %s", key)
		}
		seen[key] = true
		want := outcome.OK
		switch n.Truth(r.Host, r.SNI) {
		case lab.Intercept:
			want = outcome.Suspected
		case lab.Reset:
			want = outcome.BlockedReset
		case lab.Stall:
			want = outcome.BlockedTimeout
		case lab.Close:
			want = outcome.BlockedClosed
		}
		if r.Outcome != want {
			t.Errorf("%s: %s, want %s", key, r.Outcome, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("%d records after resume, want %d (killed at %d)", len(seen), total, killedAt)
	}
	// The JSON Lines hold the same records, once each, whatever the kill
	// cut (a line, or the lines of hosts already committed).
	data, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{} // records by host and SNI, certificates by hash
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var l struct{ Type, Host, SNI, SHA256 string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("jsonl line %d: %v", i+1, err)
		}
		key := l.Host + " " + l.SNI
		if l.Type == "certificate" {
			key = l.SHA256
		}
		if lines[key] {
			t.Errorf("jsonl line %d written twice: %.80s", i+1, line)
		}
		if l.Type == "record" && !seen[key] {
			t.Errorf("jsonl record %s is not in the database", key)
		}
		lines[key] = true
	}
	if len(lines) < total+1 {
		t.Errorf("%d JSON Lines records, want %d", len(lines), total)
	}
	t.Logf("killed at %d of %d records; resumed to %d", killedAt, total, len(seen))
}

// The domain lists that README, probe --help and the --domains error point
// at are in the repository, readable as --domains files.
func TestDomainListsShipped(t *testing.T) {
	for _, name := range []string{"kz-2019.txt", "kz-2024-ooni.txt", "README.md"} {
		path := filepath.Join("..", "..", domainLists, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(name, ".txt") {
			continue
		}
		d, err := measure.ReadDomains(strings.NewReader(string(data)))
		if err != nil || len(d) < 10 {
			t.Errorf("%s: %d domains, %v", path, len(d), err)
		}
	}
	readme, _ := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if !strings.Contains(string(readme), domainLists+"/kz-2019.txt") || strings.Contains(string(readme), "shared/data/domains") {
		t.Error("README does not point at the shipped lists")
	}
}
