package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mitmguard/mitmguard/campaign"
	"github.com/mitmguard/mitmguard/internal/pgtest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/natsd"
	"github.com/mitmguard/mitmguard/store"
)

// The coordinator (campaign submit) SIGKILLed while it publishes a large
// campaign's jobs loses no job and duplicates none: the same submit run
// again publishes exactly the jobs missing, the workers run every job
// exactly once, and the campaign completes with one record per (vantage
// point, host, SNI).
//
// The hosts are loopback addresses on a port nothing listens on, so each
// job is measured in milliseconds (connection refused) and the campaign
// can hold thousands of one-host jobs.
func TestCoordinatorKilledMidSubmit(t *testing.T) {
	db := pgtest.Schema(t)
	nd, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // refused from now on (a port on 127.0.0.1 the system may reuse only for another listener of its own)

	const hosts = 1500
	vantages := []string{"va", "vb"}
	jobs := hosts * len(vantages) // --batch 1
	dir := t.TempDir()
	var hb strings.Builder
	for i := range hosts {
		fmt.Fprintf(&hb, "127.0.%d.%d:%d\n", i/250, 1+i%250, port)
	}
	hostsFile, domainsFile := filepath.Join(dir, "hosts.txt"), filepath.Join(dir, "domains.txt")
	if err := os.WriteFile(hostsFile, []byte(hb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(domainsFile, []byte("facebook.com\nvk.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	submitArgs := []string{"campaign", "submit", "--nats", nd.URL(), "--db", db, "--hosts", hostsFile, "--domains", domainsFile,
		"--vantage", vantages[0], "--vantage", vantages[1], "--id", "killed", "--batch", "1", "--retries", "0", "--timeout", "5s"}

	// Watch the jobs as they are published, and kill the submit on the
	// first one: the stream then holds some but not all of them.
	nc, err := nats.Connect(nd.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	firstJob := make(chan struct{})
	sub, err := nc.Subscribe(campaign.SubjectPrefix+".>", func(*nats.Msg) {
		select {
		case <-firstJob:
		default:
			close(firstJob)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	submit := startProc(t, submitArgs...)
	select {
	case <-firstJob:
	case <-submit.done:
		t.Fatal("submit ended before publishing a job")
	case <-time.After(2 * time.Minute): // a bound on failure only
		t.Fatal("no job published in 2 minutes")
	}
	if err := submit.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	submit.cmd.Wait()
	sub.Unsubscribe()

	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, campaign.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	q, err := campaign.OpenQueue(ctx, nc, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := q.Spec(ctx, "killed")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if spec.State != campaign.StateSubmitting || info.State.Msgs == 0 || info.State.Msgs >= uint64(jobs) {
		t.Fatalf("not killed midway: campaign %s, %d of %d jobs on the stream", spec.State, info.State.Msgs, jobs)
	}
	t.Logf("submit killed with %d of %d jobs on the stream", info.State.Msgs, jobs)

	// The same submit again finishes the campaign: exactly the missing
	// jobs are added, none twice.
	code, out, errOut := runCLI(submitArgs...)
	if code != 0 || strings.TrimSpace(out) != "killed" {
		t.Fatalf("submit again: exit %d %q %s", code, out, errOut)
	}
	if info, err = stream.Info(ctx); err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(jobs) || info.State.LastSeq != uint64(jobs) {
		t.Fatalf("after the second submit the stream holds %d jobs and took %d; want %d and %d", info.State.Msgs, info.State.LastSeq, jobs, jobs)
	}
	if spec, err = q.Spec(ctx, "killed"); err != nil || spec.State != campaign.StateSubmitted {
		t.Fatalf("campaign after the second submit: %+v, %v", spec, err)
	}
	// A third submit adds nothing.
	if code, _, errOut := runCLI(submitArgs...); code != 0 || !strings.Contains(errOut, "already submitted") {
		t.Fatalf("third submit: exit %d %s", code, errOut)
	}

	var workers []*proc
	for _, v := range vantages {
		w := startProc(t, "worker", "--nats", nd.URL(), "--db", db, "--vantage", v, "--jobs", "8", "--min-timeout", "1s")
		workers = append(workers, w)
	}
	var st statusWithRecords
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) { // a bound on failure only
		st = campaignStatus(t, nd.URL(), db, "killed")
		if st.Done || time.Now().After(deadline) {
			break
		}
	}
	pairs := hosts * 2
	if !st.Done || st.Records != len(vantages)*pairs {
		t.Fatalf("after the workers: %+v", st)
	}
	if info, err = stream.Info(ctx); err != nil || info.State.LastSeq != uint64(jobs) {
		t.Fatalf("the stream took %d jobs in all, want %d (%v)", info.State.LastSeq, jobs, err)
	}
	for _, w := range workers {
		w.cmd.Process.Signal(syscall.SIGTERM)
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("worker after SIGTERM: %v", err)
		}
		w.wait(t, "worker stopped", 1)
	}

	// Every job ran exactly once: one "job done" per (vantage point,
	// seq), each delivered once.
	done := regexp.MustCompile(`msg="job done" vantage=(\S+) campaign=killed seq=(\d+) hosts=1 delivery=(\d+)`)
	ran := map[string]int{}
	for _, w := range workers {
		for _, line := range strings.Split(w.output(), "\n") {
			m := done.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if m[3] != "1" {
				t.Errorf("job %s/%s delivered %s times", m[1], m[2], m[3])
			}
			ran[m[1]+"/"+m[2]]++
		}
	}
	for _, v := range vantages {
		for seq := 1; seq <= hosts; seq++ {
			if n := ran[v+"/"+strconv.Itoa(seq)]; n != 1 {
				t.Errorf("job %s/%d ran %d times", v, seq, n)
			}
		}
	}
	if len(ran) != jobs {
		t.Errorf("%d distinct jobs ran, want %d", len(ran), jobs)
	}

	// One record per (vantage point, host, SNI).
	pg, err := store.OpenDSN(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	c, err := pg.Campaign(ctx, "killed")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	if err := pg.Records(ctx, c, func(r measure.Record, _ measure.Control) error {
		key := r.Vantage + " " + r.Host + " " + r.SNI
		if seen[key] {
			t.Errorf("two records for %s", key)
		}
		seen[key] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(vantages)*pairs {
		t.Fatalf("%d records, want %d", len(seen), len(vantages)*pairs)
	}
}

// campaignStatus runs campaign status --json.
func campaignStatus(t *testing.T, natsURL, db, id string) statusWithRecords {
	t.Helper()
	code, out, errOut := runCLI("campaign", "status", id, "--nats", natsURL, "--db", db, "--json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st statusWithRecords
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, out)
	}
	return st
}
