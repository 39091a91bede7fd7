package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/pgtest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/natsd"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// proc is a mitmguard process started from the test binary, its standard
// error kept and watched.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced on every new line
	done  chan struct{} // closed when standard error ends
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), more: make(chan struct{}), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), mainEnv+"=1", "MITMGUARD_DIR="+t.TempDir())
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// wait waits for a line containing s (the n-th such line), failing the
// test when the process ends or the bound passes first.
func (p *proc) wait(t *testing.T, s string, n int) {
	t.Helper()
	bound := time.After(3 * time.Minute) // a bound on failure only
	for {
		p.mu.Lock()
		k := 0
		for _, l := range p.lines {
			if strings.Contains(l, s) {
				k++
			}
		}
		more := p.more
		p.mu.Unlock()
		if k >= n {
			return
		}
		select {
		case <-more:
		case <-p.done:
			t.Fatalf("the process ended before printing %q", s)
		case <-bound:
			t.Fatalf("no %q after 3 minutes", s)
		}
	}
}

// A campaign measured by three worker processes from two vantage points,
// one of them SIGKILLed midway: the campaign completes, with exactly one
// record per (vantage point, host, SNI), and the outcomes a single-machine
// probe finds from each vantage point.
//
// The two vantage points are two lab networks with the same number of
// hosts: "kz" sees network A, where middleboxes intercept, reset or pass;
// "clean" sees network B, where every host is clean. The campaign names
// network A's addresses; the clean worker's hidden --lab-route sends each
// handshake to the matching host of network B, as a vantage point on
// another path would reach the same address without the middlebox.
func TestWorkersCampaign(t *testing.T) {
	db := pgtest.Schema(t)
	nd, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	actions := make([]lab.Action, 8)
	for i := range actions {
		actions[i] = []lab.Action{lab.Intercept, lab.Pass, lab.Reset, lab.Pass}[i%4]
	}
	targeted, domains := labTargeted[:2], []string{labTargeted[0], labTargeted[1], labUntargeted[0]}
	netA, err := lab.StartNetwork(lab.NetworkConfig{Hosts: actions, Domains: targeted, ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer netA.Close()
	netB, err := lab.StartNetwork(lab.NetworkConfig{Hosts: make([]lab.Action, len(actions)), Domains: targeted})
	if err != nil {
		t.Fatal(err)
	}
	defer netB.Close()

	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var hostsA, hostsB, route strings.Builder
	bToA := map[string]string{}
	for i := range actions {
		a, b := netA.Hosts[i].Addr, netB.Hosts[i].Addr
		fmt.Fprintln(&hostsA, a)
		fmt.Fprintln(&hostsB, b)
		fmt.Fprintln(&route, a, b)
		bToA[b] = a
	}
	hostsAFile, hostsBFile := write("hosts-a.txt", hostsA.String()), write("hosts-b.txt", hostsB.String())
	routeFile := write("route.txt", route.String())
	domainsFile := write("domains.txt", strings.Join(domains, "\n"))
	roots := write("roots.pem", string(lab.PEM(netA.PublicRoot, netB.PublicRoot)))

	// Workers first: they create their vantage points' consumers with a
	// short ack wait, so the killed worker's job comes back quickly. A low
	// rate per host makes each job take a few seconds.
	worker := func(vantage string, more ...string) *proc {
		args := append([]string{"worker", "--nats", nd.URL(), "--db", db, "--vantage", vantage,
			"--ack-wait", "3s", "--concurrency", "4", "--min-timeout", "3s"}, more...)
		return startProc(t, args...)
	}
	// Their operators declare where they stand: kz's w1 a part of it, w2
	// all of it (the same values: no conflict; w1, killed at its first
	// job, may die before it declares), clean its country alone.
	w1, w2 := worker("kz", "--vantage-asn", "9198"), worker("kz", "--vantage-asn", "AS9198", "--vantage-country", "kz")
	w3 := worker("clean", "--lab-route", routeFile, "--vantage-country", "DE")
	for _, w := range []*proc{w1, w2, w3} {
		w.wait(t, "worker started", 1)
	}
	code, out, errOut := runCLI("campaign", "submit", "--nats", nd.URL(), "--db", db, "--hosts", hostsAFile, "--domains", domainsFile,
		"--roots", roots, "--vantage", "kz", "--vantage", "clean", "--id", "multi", "--batch", "1", "--timeout", "30s", "--rate", "2")
	if code != 0 {
		t.Fatalf("submit: exit %d %s %s", code, out, errOut)
	}

	status := func() statusWithRecords {
		t.Helper()
		code, out, errOut := runCLI("campaign", "status", "multi", "--nats", nd.URL(), "--db", db, "--json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		var st statusWithRecords
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v: %s", err, out)
		}
		return st
	}
	// Kill w1 as soon as it starts a job: a job takes over a second
	// (--rate 2 per host), so the kill lands before its records are
	// committed and acknowledged, and the job must come back. (Waiting for
	// a job to end first races with the next one ending: its ack could
	// land between this side's look and the kill.)
	w1.wait(t, `msg="job started"`, 1)
	if err := w1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w1.cmd.Wait()
	atKill := status()
	if atKill.Done || atKill.Vantages[1].PendingJobs == 0 {
		t.Fatalf("killed after the kz vantage point was done: not midway: %+v", atKill)
	}

	var st statusWithRecords
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(200 * time.Millisecond) { // a bound on failure only
		if st = status(); st.Done || time.Now().After(deadline) {
			break
		}
	}
	total := len(actions) * len(domains)
	if !st.Done || st.Records != 2*total || st.PendingJobs != 0 {
		t.Fatalf("after the workers: %+v", st)
	}
	for _, v := range st.Vantages {
		if v.Records != total || !v.Done {
			t.Errorf("vantage point %s: %+v", v.Vantage, v)
		}
	}
	if d := st.Vantages; d[0].Vantage != "clean" || d[0].ASN != 0 || d[0].Country != "DE" || d[1].Vantage != "kz" || d[1].ASN != 9198 || d[1].Country != "KZ" {
		t.Errorf("declared vantage points in status: %+v", d)
	}
	code, out, errOut = runCLI("report", "--db", db, "--campaign", "multi")
	if code != 0 || !strings.Contains(out, "clean                -            DE") || !strings.Contains(out, "kz                   AS9198       KZ") {
		t.Errorf("report: exit %d %s\n%s", code, errOut, out)
	}
	for _, w := range []*proc{w1, w2, w3} {
		if strings.Contains(w.output(), "declaration differs") {
			t.Errorf("a worker saw a conflict:\n%s", w.output())
		}
	}
	// The job w1 held was handed to w2 again and done.
	if !strings.Contains(w2.output(), "delivery=2") {
		t.Error("no job was redelivered after the kill")
	}
	t.Logf("killed with %d of %d records stored and %d kz jobs pending", atKill.Records, 2*total, atKill.Vantages[1].PendingJobs)

	// The same pairs from one machine: probe network A as kz, network B as
	// clean (its records named by network A's addresses).
	dbFile := filepath.Join(dir, "single.db")
	for _, p := range []struct{ vantage, hosts string }{{"kz", hostsAFile}, {"clean", hostsBFile}} {
		code, out, errOut := runCLI("probe", "--hosts", p.hosts, "--domains", domainsFile, "--roots", roots, "--db", dbFile,
			"--vantage", p.vantage, "--campaign", "single-"+p.vantage, "--timeout", "30s", "--min-timeout", "3s", "--no-progress")
		if code != 0 {
			t.Fatalf("probe %s: exit %d %s %s", p.vantage, code, out, errOut)
		}
	}
	single := map[string]outcome.Outcome{}
	ctx := context.Background()
	sq, err := store.Open(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for _, id := range []string{"single-kz", "single-clean"} {
		c, err := sq.Campaign(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sq.Records(ctx, c, func(r measure.Record, _ measure.Control) error {
			host := r.Host
			if a, ok := bToA[host]; ok {
				host = a
			}
			single[r.Vantage+" "+host+" "+r.SNI] = r.Outcome
			return nil
		})
	}

	pg, err := store.OpenDSN(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	c, err := pg.Campaign(ctx, "multi")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]outcome.Outcome{}
	var oneSide []string
	err = pg.Records(ctx, c, func(r measure.Record, _ measure.Control) error {
		key := r.Vantage + " " + r.Host + " " + r.SNI
		if _, dup := seen[key]; dup {
			t.Errorf("two records for %s", key)
		}
		seen[key] = r.Outcome
		if r.Vantage == "kz" && r.Outcome.Intercepted() {
			oneSide = append(oneSide, r.Host+" "+r.SNI)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2*total || len(single) != 2*total {
		t.Fatalf("%d records from the workers, %d from probe; want %d", len(seen), len(single), 2*total)
	}
	for k, o := range seen {
		if single[k] != o {
			t.Errorf("%s: workers found %s, probe %s", k, o, single[k])
		}
	}
	// Intercepted from kz only: exactly the intercepting hosts' targeted
	// SNIs, each clean from the other vantage point.
	var want []string
	for i, a := range actions {
		for _, d := range targeted {
			if a == lab.Intercept {
				want = append(want, netA.Hosts[i].Addr+" "+d)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(oneSide)
	if !slices.Equal(oneSide, want) {
		t.Errorf("intercepted from kz: %q, want %q", oneSide, want)
	}
	for _, p := range want {
		if o := seen["clean "+p]; o != outcome.OK {
			t.Errorf("clean %s: %s", p, o)
		}
	}
	w2.cmd.Process.Signal(syscall.SIGTERM)
	w3.cmd.Process.Signal(syscall.SIGTERM)
	for _, w := range []*proc{w2, w3} {
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("worker after SIGTERM: %v", err)
		}
		w.wait(t, "worker stopped", 1)
	}
}

// A worker told a wrong password stops at once with a clear error; one
// whose PostgreSQL or NATS cannot be reached says so and keeps retrying
// until stopped.
func TestWorkerBadInput(t *testing.T) {
	db := pgtest.DSN(t)
	nd, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()

	code, _, errOut := runCLI("worker", "--nats", nd.URL(), "--db", pgtest.WithPassword(t, db, "wr0ngpassw0rd"), "--vantage", "a")
	if code != 1 || !strings.Contains(errOut, "refused the password (SQLSTATE 28P01)") || strings.Contains(errOut, "wr0ngpassw0rd") {
		t.Errorf("wrong password: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI("worker", "--nats", nd.URL(), "--db", db, "--vantage", "a.b")
	if code != 1 || !strings.Contains(errOut, "vantage name") {
		t.Errorf("bad vantage: exit %d: %s", code, errOut)
	}

	// Nothing listens on port 1 of loopback.
	p := startProc(t, "worker", "--nats", nd.URL(), "--db", "postgres://u:secretpw@127.0.0.1:1/db?sslmode=disable", "--vantage", "a")
	p.wait(t, "PostgreSQL unreachable; retrying", 2)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
	<-p.done
	if strings.Contains(p.output(), "secretpw") {
		t.Errorf("the password was printed:\n%s", p.output())
	}

	p = startProc(t, "worker", "--nats", "nats://127.0.0.1:1", "--db", pgtest.Schema(t), "--vantage", "a")
	p.wait(t, "NATS unreachable; retrying", 2)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
}

// probe and report take a postgres:// --db as they take a file.
func TestProbeReportPostgres(t *testing.T) {
	db := pgtest.Schema(t)
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: []lab.Action{lab.Intercept, lab.Pass}, Domains: labTargeted[:1], ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts.txt")
	os.WriteFile(hosts, []byte(n.Hosts[0].Addr+"\n"+n.Hosts[1].Addr+"\n"), 0o644)
	domains := filepath.Join(dir, "domains.txt")
	os.WriteFile(domains, []byte(labTargeted[0]+"\n"+labUntargeted[0]+"\n"), 0o644)
	roots := filepath.Join(dir, "roots.pem")
	os.WriteFile(roots, lab.PEM(n.PublicRoot), 0o644)
	code, out, errOut := runCLI("probe", "--hosts", hosts, "--domains", domains, "--roots", roots, "--db", db, "--campaign", "pg1",
		"--timeout", "30s", "--min-timeout", "3s", "--no-progress", "--json")
	if code != 0 {
		t.Fatalf("probe: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI("report", "--db", db, "--json")
	if code != 0 {
		t.Fatalf("report: exit %d %s", code, errOut)
	}
	if !strings.Contains(out, `"pg1"`) || !strings.Contains(out, string(outcome.Suspected)) {
		t.Errorf("report of the PostgreSQL store: %s", out)
	}
	st, err := store.OpenDSN(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Campaign(context.Background(), "pg1")
	if err != nil {
		t.Fatal(err)
	}
	counts, err := st.OutcomeCounts(context.Background(), c)
	if err != nil || counts[outcome.Suspected] != 1 || counts[outcome.OK] != 3 {
		t.Errorf("outcomes %v %v", counts, err)
	}
}
