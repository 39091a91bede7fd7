package campaign

import (
	"context"
	"fmt"
	"path/filepath"
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
