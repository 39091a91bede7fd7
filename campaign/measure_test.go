package campaign

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/store"
)

// The jobs a worker runs at once share its Concurrency: two jobs of many
// slow hosts never have more handshakes in flight together than one job
// may, and together they do fill the budget.
func TestRunnerSharesConcurrency(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const budget = 6
	var mu sync.Mutex
	inFlight, peak := 0, 0
	full := make(chan struct{}) // closed once the budget was full
	release := make(chan struct{})
	slow := func(ctx context.Context, tg probe.Target, _ probe.Options) *probe.Result {
		mu.Lock()
		inFlight++
		if inFlight > peak {
			peak = inFlight
			if peak == budget {
				close(full)
			}
		}
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return &probe.Result{Target: tg, Start: time.Now(), Failure: outcome.ErrorDial, Err: fmt.Errorf("refused")}
	}
	r := &MeasureRunner{Store: st, Concurrency: budget, Prober: slow}
	spec := &Spec{Version: Version, ID: "c", Vantages: []string{"kz"}, Domains: []string{"a.com", "b.com"},
		ControlDomains: []string{"control.invalid"}, Limits: Limits{PerHost: 2, Rate: 1000, Retries: -1, TimeoutMS: 5000}}
	job := func(seq int) Work {
		var hosts []string
		for i := range 10 {
			hosts = append(hosts, fmt.Sprintf("127.0.%d.%d:443", seq, i+1))
		}
		return Work{Job: &Job{Version: Version, Campaign: "c", Vantage: "kz", Seq: seq, Hosts: hosts}, Spec: spec, Delivery: 1}
	}
	errs := make(chan error, 2)
	for seq := 1; seq <= 2; seq++ {
		go func() { errs <- r.Run(context.Background(), job(seq)) }()
	}
	select {
	case <-full:
	case <-time.After(time.Minute): // a bound on failure only
		t.Fatalf("the budget of %d was never full", budget)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if peak != budget {
		t.Errorf("%d handshakes in flight at most, want the shared budget %d", peak, budget)
	}
	c, err := st.Campaign(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.Count(context.Background(), c); err != nil || n != 2*10*2 {
		t.Errorf("%d records stored (%v), want %d", n, err, 2*10*2)
	}
}

// A worker takes the next job while one host of its job stalls: the
// budget the stalled job leaves idle goes to the next jobs' hosts, as in
// one probe, instead of every job waiting for its slowest host. With a
// fixed job slot (one job at a time) the other jobs' hosts would never be
// probed before the stall ends.
func TestWorkerFillsIdleBudget(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	req := request("fill", 6, "kz")
	req.Batch = 2 // three jobs; the stalling host is the first job's
	req.Domains = []string{"a.example"}
	req.Limits = Limits{PerHost: 1, Rate: 1000, Retries: -1, TimeoutMS: 60_000}
	if _, err := q.Submit(ctx, req); err != nil {
		t.Fatal(err)
	}
	hosts, _ := hostList(6)
	stalled := hosts[0]
	probed := make(chan string, 100)
	release := make(chan struct{})
	prober := func(ctx context.Context, tg probe.Target, _ probe.Options) *probe.Result {
		probed <- tg.Address
		if tg.Address == stalled {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return &probe.Result{Target: tg, Start: time.Now(), Failure: outcome.ErrorDial, Err: fmt.Errorf("refused")}
	}
	r := &MeasureRunner{Store: st, Concurrency: 4, Prober: prober}
	runWorker(t, &Worker{Conn: connect(t, s.URL()), Vantage: "kz", Runner: r, PollWait: 100 * time.Millisecond})

	seen := map[string]bool{}
	for len(seen) < len(hosts) {
		select {
		case h := <-probed:
			seen[h] = true
		case <-ctx.Done():
			t.Fatalf("while %s stalls only %d of the %d hosts were probed: the worker did not take the next jobs", stalled, len(seen), len(hosts))
		}
	}
	close(release)
	waitFor(t, "the campaign to finish", func() bool {
		st, err := q.Status(ctx, "fill")
		return err == nil && st.Done
	})
	c, err := st.Campaign(ctx, "fill")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.Count(ctx, c); err != nil || n != len(hosts) {
		t.Errorf("%d records stored (%v), want %d", n, err, len(hosts))
	}
}

// The budget says it has room only when a slot is free and nothing waits
// for one, and wakes whoever waits when that may have changed: the worker
// takes no job its budget could not start.
func TestBudgetRoom(t *testing.T) {
	r := &MeasureRunner{Concurrency: 1}
	if idle, _ := r.Room(); !idle {
		t.Fatal("an unused budget has no room")
	}
	b := r.shared()
	job := b.enter(2) // a job's two hosts, not yet taken by its engine
	idle, changed := r.Room()
	if idle {
		t.Fatal("room while hosts are queued")
	}
	b.took(2)
	receive(t, changed)
	if !b.acquire(context.Background(), job) {
		t.Fatal("no slot from a free budget")
	}
	idle, changed = r.Room()
	if idle {
		t.Fatal("room while the only slot is held")
	}
	b.release()
	receive(t, changed)
	if idle, _ := r.Room(); !idle {
		t.Fatal("no room once the slot is free again")
	}
}

// A freed slot goes to the oldest job waiting, whatever the order the
// handshakes asked in; a handshake that stops waiting leaves no slot lost.
func TestBudgetOldestJobFirst(t *testing.T) {
	b := &budget{size: 1}
	old, young := b.enter(0), b.enter(0)
	ctx := context.Background()
	if !b.acquire(ctx, young) {
		t.Fatal("no slot from a free budget")
	}
	got := make(chan uint64, 3)
	wait := func(job uint64) {
		waiting := len(b.waitersNow())
		go func() {
			if b.acquire(ctx, job) {
				got <- job
			}
		}()
		for len(b.waitersNow()) == waiting { // until it queued: an event, not a delay
			runtime.Gosched()
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	gone := make(chan bool)
	go func() { gone <- b.acquire(cctx, old) }()
	for len(b.waitersNow()) == 0 {
		runtime.Gosched()
	}
	wait(young)
	wait(old)
	cancel()
	if <-gone {
		t.Fatal("a cancelled wait got a slot")
	}
	b.release()
	if j := receive(t, got); j != old {
		t.Fatalf("the slot went to job %d, want the older job %d", j, old)
	}
	b.release()
	if j := receive(t, got); j != young {
		t.Fatalf("the slot went to job %d, want %d", j, young)
	}
	b.release()
	if idle, _ := b.room(); !idle {
		t.Fatal("a slot was lost")
	}
}

// waitersNow returns a copy of the handshakes waiting (tests).
func (b *budget) waitersNow() []*waiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*waiter(nil), b.waiters...)
}

// Two workers of one vantage point declared differently: the first
// declaration is stored, the second worker says so in its log and still
// measures its job.
func TestRunnerDeclaresVantage(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	refused := func(ctx context.Context, tg probe.Target, _ probe.Options) *probe.Result {
		return &probe.Result{Target: tg, Start: time.Now(), Failure: outcome.ErrorDial, Err: fmt.Errorf("refused")}
	}
	spec := &Spec{Version: Version, ID: "c", Vantages: []string{"kz"}, Domains: []string{"a.com"},
		ControlDomains: []string{"control.invalid"}, Limits: Limits{PerHost: 2, Rate: 1000, Retries: -1, TimeoutMS: 5000}}
	job := func(seq int) Work {
		return Work{Job: &Job{Version: Version, Campaign: "c", Vantage: "kz", Seq: seq, Hosts: []string{fmt.Sprintf("127.0.0.%d:443", seq)}}, Spec: spec, Delivery: 1}
	}
	var logs syncBuffer
	first := &MeasureRunner{Store: st, Prober: refused, Declared: measure.Vantage{ASN: 9198, Country: "KZ"}}
	second := &MeasureRunner{Store: st, Prober: refused, Declared: measure.Vantage{ASN: 4242}, Logger: testLogger(&logs)}
	ctx := context.Background()
	if err := first.Run(ctx, job(1)); err != nil {
		t.Fatal(err)
	}
	if err := second.Run(ctx, job(2)); err != nil {
		t.Fatal(err)
	}
	c, err := st.Campaign(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := st.Vantages(ctx, c)
	if err != nil || len(vs) != 1 || vs[0] != (measure.Vantage{Name: "kz", ASN: 9198, Country: "KZ"}) {
		t.Fatalf("declarations %+v %v", vs, err)
	}
	if !strings.Contains(logs.String(), "declared as AS4242") || !strings.Contains(logs.String(), "declared first as AS9198, KZ") {
		t.Errorf("log:\n%s", logs.String())
	}
	if n, err := st.Count(ctx, c); err != nil || n != 2 {
		t.Errorf("%d records (%v), want both jobs'", n, err)
	}
}
