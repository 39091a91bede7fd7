package campaign

import (
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
// hosts.
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
	slots     chan struct{} // the shared handshake budget
}

// prepared is what one campaign needs, made once per worker.
type prepared struct {
	c          *store.Campaign
	classifier *verdict.Classifier
}

// Run measures the job and commits its records.
func (r *MeasureRunner) Run(ctx context.Context, w Work) error {
	p, err := r.prepare(ctx, w.Spec, w.Vantage)
	if err != nil {
		return err
	}
	l := w.Spec.Limits
	cfg := measure.Config{
		Domains: w.Spec.Domains, ControlDomains: w.Spec.ControlDomains, Vantage: w.Vantage,
		Concurrency: r.Concurrency, PerHost: l.PerHost, Rate: l.Rate, Timeout: l.Timeout(), MinTimeout: r.MinTimeout, Retries: l.Retries,
		Classifier: p.classifier, Prober: r.prober(),
	}
	hosts := make(chan string, len(w.Hosts))
	for _, h := range w.Hosts {
		hosts <- h
	}
	close(hosts)
	_, err = measure.Run(ctx, cfg, store.Bind(r.Store, p.c), hosts, w.Delivery > 1)
	return err
}

// prober returns the handshake bounded by the worker's shared budget. A
// handshake waits for a slot before it starts, and its timeout starts with
// it (the prober sets it), so waiting never turns into a false timeout.
func (r *MeasureRunner) prober() measure.Prober {
	r.mu.Lock()
	if r.slots == nil {
		n := r.Concurrency
		if n <= 0 {
			n = 100 // measure.Config's default
		}
		r.slots = make(chan struct{}, n)
	}
	slots := r.slots
	r.mu.Unlock()
	inner := r.Prober
	if inner == nil {
		inner = probe.Handshake
	}
	return func(ctx context.Context, t probe.Target, opts probe.Options) *probe.Result {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done(): // the prober returns its own result for a cancelled ctx
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
