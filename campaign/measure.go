package campaign

import (
	"container/heap"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/verdict"
)

// MeasureRunner is the Runner of a real worker: it runs the measurement
// engine on a job's hosts x its campaign's domains and writes the records
// through a store. Run returns nil only once every host of the job is
// committed (the engine commits before it returns), so the worker's
// acknowledgement never runs ahead of the records. A redelivered job skips
// the hosts already stored (resume); a job delivered the first time skips
// that lookup (one query per host), and the store keeps one record per
// (campaign, vantage, host, SNI) whatever is written twice.
//
// The jobs a worker runs at once share one budget of Concurrency
// handshakes: a job waiting on its slowest host (a stalling middlebox
// holds a handshake for the whole timeout) leaves the rest of the budget
// to the other jobs, as one probe keeps all its slots busy over all its
// hosts. MeasureRunner is a Budget: the worker takes another job as soon
// as a slot would otherwise sit idle.
type MeasureRunner struct {
	Store store.Store
	// Verdict is the classifier's base options (blocklist, time); the
	// campaign's extra roots are added to them.
	Verdict verdict.Options
	// Concurrency bounds the handshakes in flight over all the jobs run
	// at once (default 100).
	Concurrency int
	// MinTimeout is the least a test handshake is given however fast the
	// control answered (the engine's default when zero): a property of the
	// worker's machine and path, not of the campaign.
	MinTimeout time.Duration
	// Prober, if set, replaces the real handshake (benchmarks).
	Prober measure.Prober
	// Declared is what the worker's operator declared of its vantage
	// point (worker --vantage-asn, --vantage-country), stored with each
	// campaign the worker measures for; the name is the job's vantage
	// point.
	Declared measure.Vantage
	// Logger receives a declaration that differs from the one another
	// worker of the vantage point stored first (default: discarded).
	Logger *slog.Logger

	mu        sync.Mutex
	campaigns map[string]*prepared
	budget    *budget
}

// budget is the handshake slots shared by the jobs of a worker, and what
// it tells the worker about idle room. A free slot goes to the oldest job
// that waits for one, as in one probe a host's tests keep their slots
// until the host is done: a job's retries and its stalling host's last
// tests do not queue behind every host of the jobs taken after it, so jobs
// end (and are acknowledged) in about the order they were taken, and the
// newest jobs only use what the older ones leave idle.
type budget struct {
	mu      sync.Mutex
	size    int
	used    int
	waiters waiters       // by job, then arrival
	queued  int           // hosts handed to a job's engine, not yet taken
	jobs    uint64        // jobs started so far: the next job's rank
	arrived uint64        // handshakes that waited so far
	changed chan struct{} // closed at the next change, made when asked for
}

// changedLocked wakes whoever waits for a change; b.mu is held.
func (b *budget) changedLocked() {
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// enter counts a job's hosts as queued and returns the job's rank.
func (b *budget) enter(hosts int) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.jobs++
	b.queued += hosts
	return b.jobs
}

// took says n hosts were taken by their engine (or never will be).
func (b *budget) took(n int) {
	b.mu.Lock()
	b.queued -= n
	b.changedLocked()
	b.mu.Unlock()
}

// acquire waits for a slot for a handshake of job; it reports false when
// ctx ended first.
func (b *budget) acquire(ctx context.Context, job uint64) bool {
	b.mu.Lock()
	if b.used < b.size && len(b.waiters) == 0 {
		b.used++
		b.mu.Unlock()
		return true
	}
	b.arrived++
	w := &waiter{job: job, n: b.arrived, ready: make(chan struct{})}
	heap.Push(&b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return true
	case <-ctx.Done():
	}
	b.mu.Lock()
	if w.index >= 0 { // still waiting
		heap.Remove(&b.waiters, w.index)
		b.changedLocked()
		b.mu.Unlock()
		return false
	}
	b.mu.Unlock()
	b.release() // granted meanwhile
	return false
}

// release frees a slot, or hands it to the oldest job waiting.
func (b *budget) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 {
		close(heap.Pop(&b.waiters).(*waiter).ready)
		return
	}
	b.used--
	b.changedLocked()
}

// room: see Budget.
func (b *budget) room() (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) == 0 && b.queued == 0 && b.used < b.size {
		return true, nil
	}
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return false, b.changed
}

// waiter is a handshake waiting for a slot.
type waiter struct {
	job, n uint64
	ready  chan struct{} // closed when the slot is handed over
	index  int           // in waiters; -1 once handed over or removed
}

// waiters is a heap of the handshakes waiting, the oldest job's first.
type waiters []*waiter

func (h waiters) Len() int { return len(h) }
func (h waiters) Less(i, j int) bool {
	if h[i].job != h[j].job {
		return h[i].job < h[j].job
	}
	return h[i].n < h[j].n
}
func (h waiters) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waiters) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waiters) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// Room reports whether the handshake budget has a free slot that no host
// of the jobs being run waits for: another job would use it at once.
func (r *MeasureRunner) Room() (bool, <-chan struct{}) { return r.shared().room() }

func (r *MeasureRunner) shared() *budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.budget == nil {
		n := r.Concurrency
		if n <= 0 {
			n = 100 // measure.Config's default
		}
		r.budget = &budget{size: n}
	}
	return r.budget
}

// prepared is what one campaign needs, made once per worker.
type prepared struct {
	c          *store.Campaign
	classifier *verdict.Classifier
}

// Run measures the job and commits its records.
func (r *MeasureRunner) Run(ctx context.Context, w Work) error {
	b := r.shared()
	// The job's hosts count as queued until the engine takes them: until
	// then the budget's free slots are spoken for.
	rank := b.enter(len(w.Hosts))
	if w.entered != nil {
		w.entered()
	}
	queued := len(w.Hosts)
	defer func() { b.took(queued) }()
	p, err := r.prepare(ctx, w.Spec, w.Vantage)
	if err != nil {
		return err
	}
	l := w.Spec.Limits
	cfg := measure.Config{
		Domains: w.Spec.Domains, ControlDomains: w.Spec.ControlDomains, Vantage: w.Vantage,
		Concurrency: r.Concurrency, PerHost: l.PerHost, Rate: l.Rate, Timeout: l.Timeout(), MinTimeout: r.MinTimeout, Retries: l.Retries,
		Classifier: p.classifier, Prober: b.prober(rank, r.Prober),
	}
	hosts := make(chan string)
	stop := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer close(hosts)
		for _, h := range w.Hosts {
			select {
			case hosts <- h:
				queued--
				b.took(1)
			case <-stop: // the engine stopped reading (a failed write)
				return
			}
		}
	}()
	_, err = measure.Run(ctx, cfg, store.Bind(r.Store, p.c), hosts, w.Delivery > 1)
	close(stop)
	<-fed
	return err
}

// prober returns the handshake of a job bounded by the shared budget. A
// handshake waits for a slot before it starts, and its timeout starts with
// it (the prober sets it), so waiting never turns into a false timeout.
func (b *budget) prober(job uint64, inner measure.Prober) measure.Prober {
	if inner == nil {
		inner = probe.Handshake
	}
	return func(ctx context.Context, t probe.Target, opts probe.Options) *probe.Result {
		// A cancelled ctx gets no slot: the prober returns its own
		// result for it.
		if b.acquire(ctx, job) {
			defer b.release()
		}
		return inner(ctx, t, opts)
	}
}

// prepare returns the campaign's store entry, creating it when this is the
// first job any worker runs for it, and its classifier, and declares the
// vantage point. A declaration that differs from the stored one is logged,
// not fatal: the first one is kept, and the records still belong to the
// vantage point.
func (r *MeasureRunner) prepare(ctx context.Context, spec *Spec, vantage string) (*prepared, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.campaigns[spec.ID]; p != nil {
		return p, nil
	}
	opts := r.Verdict
	if spec.Roots != "" {
		var extra []*x509.Certificate
		for cert, err := range chain.PEMCertificates([]byte(spec.Roots)) {
			if err != nil || cert.X509 == nil {
				return nil, &FormatError{What: "campaign spec", Reason: "roots: a PEM block is not a certificate"}
			}
			extra = append(extra, cert.X509)
		}
		opts.ExtraRoots = append(append([]*x509.Certificate(nil), opts.ExtraRoots...), extra...)
	}
	c, err := ensureCampaign(ctx, r.Store, spec)
	if err != nil {
		return nil, err
	}
	decl := r.Declared
	decl.Name = vantage
	if _, err := r.Store.DeclareVantage(ctx, c, decl); err != nil {
		var conflict *measure.VantageConflictError
		if !errors.As(err, &conflict) {
			return nil, err
		}
		if r.Logger != nil {
			r.Logger.Warn("this worker's vantage point declaration differs from the first one stored; the first is kept", "campaign", spec.ID, "err", err)
		}
	}
	p := &prepared{c: c, classifier: verdict.New(opts)}
	if r.campaigns == nil {
		r.campaigns = map[string]*prepared{}
	}
	r.campaigns[spec.ID] = p
	return p, nil
}

// ensureCampaign returns the stored campaign of spec, creating it when
// there is none; workers racing to create it all get the one stored.
func ensureCampaign(ctx context.Context, st store.Store, spec *Spec) (*store.Campaign, error) {
	c, err := st.Campaign(ctx, spec.ID)
	if !errors.Is(err, store.ErrNoCampaign) {
		return c, err
	}
	cfg := measure.Config{Domains: spec.Domains, ControlDomains: spec.ControlDomains,
		PerHost: spec.Limits.PerHost, Rate: spec.Limits.Rate, Timeout: spec.Limits.Timeout(), Retries: spec.Limits.Retries}
	started := spec.Created
	if started.IsZero() {
		started = time.Now()
	}
	c = &store.Campaign{ID: spec.ID, Started: started.UTC(), Params: cfg.Params()}
	if err := st.CreateCampaign(ctx, c); err != nil {
		// Another worker created it first.
		if c2, err2 := st.Campaign(ctx, spec.ID); err2 == nil {
			return c2, nil
		}
		return nil, fmt.Errorf("campaign %s: %w", spec.ID, err)
	}
	return c, nil
}
