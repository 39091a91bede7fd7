package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
	"github.com/mitmguard/mitmguard/natsd"
	"github.com/mitmguard/mitmguard/store"
)

// privatePG is a PostgreSQL server of the test's own (initdb in a temporary
// folder, loopback only), so that restarting it disturbs no other test
// sharing the CI server.
type privatePG struct {
	bin, data string
	asUser    []string // runuser prefix when the test runs as root
	DSN       string
}

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		testtool.Missing(t, "PostgreSQL's server programs (Debian package postgresql)")
	}
	slices.Sort(bins)
	p := &privatePG{bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "mitmguard-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Getuid() == 0 {
		// The server refuses to run as root: hand the folder to postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	p.data = filepath.Join(dir, "data")
	p.run(t, "initdb", "-D", p.data, "-U", "mitmguard", "--auth=trust", "-E", "UTF8", "--no-sync")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.run(t, "pg_ctl", "-D", p.data, "-l", filepath.Join(dir, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir), "start")
	t.Cleanup(func() { p.run(t, "pg_ctl", "-D", p.data, "-m", "immediate", "-w", "stop") })
	p.DSN = fmt.Sprintf("postgres://mitmguard@127.0.0.1:%d/postgres?sslmode=disable", port)
	return p
}

func (p *privatePG) run(t *testing.T, prog string, args ...string) {
	t.Helper()
	argv := append(append(slices.Clone(p.asUser), filepath.Join(p.bin, prog)), args...)
	// Output to a file, not a pipe: the server pg_ctl starts keeps the
	// pipe open, and reading it would wait for the server to end.
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, b)
	}
}

// PostgreSQL restarted while workers write loses no record: the workers
// retry their writes (or their jobs) until the server is back, and the
// campaign completes with every record once.
func TestWorkersSurvivePostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL server")
	}
	pg := startPrivatePG(t)
	nd, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	actions := make([]lab.Action, 8)
	for i := range actions {
		actions[i] = []lab.Action{lab.Intercept, lab.Pass}[i%2]
	}
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: actions, Domains: labTargeted[:2], ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	var hosts strings.Builder
	for _, h := range n.Hosts {
		fmt.Fprintln(&hosts, h.Addr)
	}
	domains := []string{labTargeted[0], labTargeted[1], labUntargeted[0]}
	os.WriteFile(filepath.Join(dir, "hosts.txt"), []byte(hosts.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "domains.txt"), []byte(strings.Join(domains, "\n")), 0o644)
	os.WriteFile(filepath.Join(dir, "roots.pem"), lab.PEM(n.PublicRoot), 0o644)

	workers := []*proc{}
	for _, v := range []string{"a", "b"} {
		w := startProc(t, "worker", "--nats", nd.URL(), "--db", pg.DSN, "--vantage", v, "--ack-wait", "3s", "--concurrency", "4", "--min-timeout", "3s")
		w.wait(t, "worker started", 1)
		workers = append(workers, w)
	}
	code, out, errOut := runCLI("campaign", "submit", "--nats", nd.URL(), "--db", pg.DSN, "--hosts", filepath.Join(dir, "hosts.txt"),
		"--domains", filepath.Join(dir, "domains.txt"), "--roots", filepath.Join(dir, "roots.pem"),
		"--vantage", "a", "--vantage", "b", "--id", "restart", "--batch", "1", "--timeout", "30s", "--rate", "2")
	if code != 0 {
		t.Fatalf("submit: exit %d %s %s", code, out, errOut)
	}
	status := func() (statusWithRecords, bool) {
		code, out, _ := runCLI("campaign", "status", "restart", "--nats", nd.URL(), "--db", pg.DSN, "--json")
		var st statusWithRecords
		return st, code == 0 && json.Unmarshal([]byte(out), &st) == nil
	}
	workers[0].wait(t, "job done", 1)
	before, _ := status()
	pg.run(t, "pg_ctl", "-D", pg.data, "-m", "fast", "-w", "restart")
	if before.Done {
		t.Fatalf("restarted after the campaign was done: %+v", before)
	}

	total := 2 * len(actions) * len(domains)
	var st statusWithRecords
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(200 * time.Millisecond) { // a bound on failure only
		if s, ok := status(); ok {
			st = s
		}
		if st.Done || time.Now().After(deadline) {
			break
		}
	}
	if !st.Done || st.Records != total {
		t.Fatalf("after the restart: %d of %d records, %+v", st.Records, total, st)
	}
	db, err := store.OpenDSN(context.Background(), pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.Campaign(context.Background(), "restart")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := db.Count(context.Background(), c); err != nil || k != total {
		t.Fatalf("%d records, %v; want %d", k, err, total)
	}
	t.Logf("PostgreSQL restarted with %d of %d records stored; campaign completed with all", before.Records, total)
}
