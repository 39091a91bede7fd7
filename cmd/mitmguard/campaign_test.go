package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mitmguard/mitmguard/campaign"
	"github.com/mitmguard/mitmguard/internal/pgtest"
	"github.com/mitmguard/mitmguard/natsd"
)

// submit, the same submit again, status and cancel against a real NATS
// server and a real PostgreSQL.
func TestCampaignCLI(t *testing.T) {
	db := pgtest.DSN(t)
	s, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts.txt")
	domains := filepath.Join(dir, "domains.txt")
	// 10.0.0.0/8 is excluded by default; a /30 is four hosts; with the two
	// single ones, six hosts in batches of four: two jobs per vantage point.
	os.WriteFile(hosts, []byte("# test hosts\n127.0.2.0/30\n127.0.3.7:8443\n127.0.3.8\n10.1.2.3\n"), 0o644)
	os.WriteFile(domains, []byte("kz.example\nother.example\n"), 0o644)
	submit := []string{"campaign", "submit", "--nats", s.URL(), "--db", db, "--hosts", hosts, "--domains", domains,
		"--vantage", "almaty", "--vantage", "toronto", "--id", "cli1", "--batch", "4", "--timeout", "3s", "--json"}

	code, out, errOut := runCLI(submit...)
	if code != 0 {
		t.Fatalf("submit: exit %d, %q, %s", code, out, errOut)
	}
	var res map[string]string
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["campaign"] != "cli1" {
		t.Fatalf("submit --json printed %q", out)
	}
	if !strings.Contains(errOut, "6 hosts in 2 jobs for each of 2 vantage points (4 jobs new") {
		t.Fatalf("submit said: %s", errOut)
	}
	code, out, errOut = runCLI(submit...)
	if code != 0 || !strings.Contains(errOut, "already submitted: nothing added") || !strings.Contains(out, "cli1") {
		t.Fatalf("second submit: exit %d, %q, %s", code, out, errOut)
	}

	code, out, errOut = runCLI("campaign", "status", "cli1", "--nats", s.URL(), "--json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st campaign.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Done || st.PendingJobs != 4 || st.Hosts != 6 || len(st.Vantages) != 2 || st.Vantages[0].Vantage != "almaty" {
		t.Fatalf("status: %+v", st)
	}
	// The workers get what submit read: the domains and limits.
	nc, err := campaign.Connect(s.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	q, err := campaign.OpenQueue(t.Context(), nc, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := q.Spec(t.Context(), "cli1")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Domains) != 2 || spec.Limits.TimeoutMS != 3000 || len(spec.ControlDomains) != 2 {
		t.Fatalf("spec: %+v", spec)
	}

	code, out, _ = runCLI("campaign", "status", "cli1", "--nats", s.URL())
	if code != 0 || !strings.Contains(out, "campaign cli1: submitted, 6 hosts, 2 jobs per vantage point, 4 pending") {
		t.Fatalf("status text: %q", out)
	}
	code, out, _ = runCLI("campaign", "cancel", "cli1", "--nats", s.URL())
	if code != 0 || !strings.Contains(out, "4 jobs removed") {
		t.Fatalf("cancel: exit %d, %q", code, out)
	}
	code, _, errOut = runCLI("campaign", "status", "nosuch", "--nats", s.URL())
	if code != 1 || !strings.Contains(errOut, "no campaign nosuch") {
		t.Fatalf("status of an unknown campaign: exit %d, %s", code, errOut)
	}
}

// A DSN with a wrong password: a clear error naming user and server, never
// the password, and nothing submitted.
func TestCampaignSubmitWrongPassword(t *testing.T) {
	db := pgtest.WithPassword(t, pgtest.DSN(t), "wr0ngpassw0rd")
	s, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts.txt")
	domains := filepath.Join(dir, "domains.txt")
	os.WriteFile(hosts, []byte("127.0.3.1\n"), 0o644)
	os.WriteFile(domains, []byte("kz.example\n"), 0o644)
	code, _, errOut := runCLI("campaign", "submit", "--nats", s.URL(), "--db", db, "--hosts", hosts, "--domains", domains, "--vantage", "a", "--id", "pw")
	if code != 1 || !strings.Contains(errOut, "refused the password (SQLSTATE 28P01)") || strings.Contains(errOut, "wr0ngpassw0rd") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI("campaign", "status", "pw", "--nats", s.URL())
	if code != 1 || !strings.Contains(errOut, "no campaign pw") {
		t.Fatalf("a refused submit left a campaign: exit %d, %s", code, errOut)
	}
}

// mitmguard nats serves JetStream on loopback until SIGTERM, then stops
// cleanly.
func TestNatsCommand(t *testing.T) {
	cmd := exec.Command(os.Args[0], "nats", "--listen", "127.0.0.1:0", "--store", t.TempDir())
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("mitmguard nats printed nothing")
	}
	first := lines.Text()
	url, _, ok := strings.Cut(strings.TrimPrefix(first, "nats: JetStream at "), ",")
	if !ok || !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("first line %q names no loopback URL", first)
	}
	nc, err := campaign.Connect(url, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := campaign.OpenQueue(t.Context(), nc, campaign.Options{}); err != nil {
		t.Fatalf("no JetStream: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if !lines.Scan() || lines.Text() != "nats: stopped" {
		t.Fatalf("after SIGTERM: %q", lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// A schema a newer mitmguard wrote is refused by submit before any job
// goes out: the check is store.OpenPostgres's own, not a bare ping.
func TestCampaignSubmitNewerSchema(t *testing.T) {
	db := pgtest.Schema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE mitmguard_migrations(version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());
		INSERT INTO mitmguard_migrations(version) VALUES (99)`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts.txt")
	domains := filepath.Join(dir, "domains.txt")
	os.WriteFile(hosts, []byte("127.0.3.1\n"), 0o644)
	os.WriteFile(domains, []byte("kz.example\n"), 0o644)
	code, _, errOut := runCLI("campaign", "submit", "--nats", s.URL(), "--db", db, "--hosts", hosts, "--domains", domains, "--vantage", "a", "--id", "nw")
	if code != 1 || !strings.Contains(errOut, "schema version 99, newer than") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI("campaign", "status", "nw", "--nats", s.URL())
	if code != 1 || !strings.Contains(errOut, "no campaign nw") {
		t.Fatalf("a refused submit left a campaign: exit %d, %s", code, errOut)
	}
}
