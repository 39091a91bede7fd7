package measure

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/probe"
)

// hostRun is the measurement of one host: its controls, its tests, and the
// limits that keep the scan polite to it.
type hostRun struct {
	e        *engine
	addr     string
	template *probe.Result // the control that succeeded
	judge    *Judge        // of tests, against the template's chain
	timeout  time.Duration // adaptive, from the control's round trip

	mu     sync.Mutex
	next   time.Time // rate limit: when the next handshake may start
	certs  map[chain.Hash][]byte
	shared []chain.Hash // the control's chain, shared by the records that saw it
}

// host measures one host. It returns nil when the campaign was stopped
// before the host was done.
func (e *engine) host(ctx context.Context, addr string) *HostResult {
	h := &hostRun{e: e, addr: addr, timeout: e.cfg.Timeout, certs: map[chain.Hash][]byte{}}
	hr := &HostResult{}
	var last *probe.Result
	for _, sni := range e.cfg.ControlDomains {
		r := h.probe(ctx, sni, e.cfg.Timeout, false)
		if ctx.Err() != nil {
			return nil
		}
		last = r
		if r.Failure == "" && len(r.Chain) > 0 {
			h.template = r
			break
		}
	}
	hr.Control = Control{Vantage: e.cfg.Vantage, Host: addr, SNI: last.SNI, Outcome: controlOutcome(last), Chain: h.keep(last.Chain)}
	if h.template == nil {
		for _, d := range e.cfg.Domains {
			hr.Records = append(hr.Records, Record{Vantage: e.cfg.Vantage, Host: addr, SNI: d, Outcome: outcome.ErrorControl, Time: time.Now().UTC(),
				Error: "the control handshake failed, so the host cannot be judged: " + last.Describe()})
		}
		return h.finish(hr)
	}
	h.judge = NewJudge(ctx, e.cfg.Classifier, h.template.Chain)
	// A host that answered the control in 20 ms will not answer a test in
	// 9 s: waiting the full timeout on a stall only slows the scan.
	if t := 8 * (h.template.Dial + h.template.Handshake); t < h.timeout {
		h.timeout = max(t, e.cfg.MinTimeout)
	}

	// A test goroutine holds one of the campaign's Concurrency slots for
	// its whole life (its retries and the control re-run included), so
	// the goroutines in flight are bounded by Concurrency, not by
	// Concurrency x PerHost: with per-host limits lifted that product was
	// ten thousand idle goroutines and their stacks.
	records := make([]Record, len(e.cfg.Domains))
	var wg sync.WaitGroup
	lanes := make(chan struct{}, e.cfg.PerHost)
	for i, d := range e.cfg.Domains {
		lanes <- struct{}{}
		acquired := false
		select {
		case e.sem <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if !acquired {
			<-lanes
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-e.sem; <-lanes }()
			records[i] = h.test(ctx, d)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	hr.Records = records
	return h.finish(hr)
}

func (h *hostRun) finish(hr *HostResult) *HostResult {
	for _, der := range h.certs {
		hr.Certs = append(hr.Certs, der)
	}
	h.e.hostsDone.Add(1)
	h.e.pairsDone.Add(int64(len(hr.Records)))
	return hr
}

func controlOutcome(r *probe.Result) outcome.Outcome {
	if r.Failure != "" {
		return r.Failure
	}
	return outcome.OK
}

// test measures one SNI: tried again when it differs or fails, and when it
// still fails the control is tried again (Quack): a host that now fails its
// control too cannot be said to block the SNI.
func (h *hostRun) test(ctx context.Context, sni string) Record {
	rec := Record{Vantage: h.e.cfg.Vantage, Host: h.addr, SNI: sni}
	var r *probe.Result
	for rec.Attempts = 1; ; rec.Attempts++ {
		r = h.probe(ctx, sni, h.timeout, true)
		rec.Outcome, rec.Traits, rec.Issuer = h.judgeTest(ctx, r)
		if rec.Outcome == outcome.OK || rec.Attempts > h.e.cfg.Retries || ctx.Err() != nil {
			break
		}
	}
	rec.Time, rec.Chain, rec.MS = r.Start.UTC(), h.keep(r.Chain), float64(r.Handshake.Microseconds())/1000
	if r.Err != nil {
		rec.Error = r.Describe()
	}
	if (rec.Outcome.Blocked() || rec.Outcome.Stage() == "error") && ctx.Err() == nil {
		if c := h.probe(ctx, h.template.SNI, h.e.cfg.Timeout, true); c.Failure != "" && ctx.Err() == nil {
			rec.Error = "after " + string(rec.Outcome) + " on this SNI the control failed too (" + string(c.Failure) + "): the host broke or blocks statefully"
			rec.Outcome = outcome.ErrorControl
		}
	}
	return rec
}

// judgeTest classifies a test against the host's template, on the chain
// alone.
func (h *hostRun) judgeTest(ctx context.Context, r *probe.Result) (outcome.Outcome, []string, string) {
	if r.Failure != "" {
		return r.Failure, nil, ""
	}
	return h.judge.Chain(ctx, r.Chain)
}

// probe performs one handshake within the global and per-host limits;
// held says the caller holds a concurrency slot already.
func (h *hostRun) probe(ctx context.Context, sni string, timeout time.Duration, held bool) *probe.Result {
	h.mu.Lock()
	now := time.Now()
	wait := h.next.Sub(now)
	h.next = maxTime(now, h.next).Add(time.Duration(float64(time.Second) / h.e.cfg.Rate))
	h.mu.Unlock()
	target := probe.Target{Address: h.addr, SNI: sni}
	stopped := func() *probe.Result {
		return &probe.Result{Target: target, Start: now, Failure: outcome.Stopped, Err: ctx.Err()}
	}
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return stopped()
		}
	}
	if !held {
		select {
		case h.e.sem <- struct{}{}:
		case <-ctx.Done():
			return stopped()
		}
		defer func() { <-h.e.sem }()
	}
	return h.e.cfg.Prober(ctx, target, probe.Options{Timeout: timeout, Groups: h.e.cfg.Groups})
}

// keep remembers a chain's certificates for the store and returns its
// hashes. Most tests see the control's chain again: they share its hash
// slice rather than hold a copy each (records are never changed).
func (h *hostRun) keep(c chain.Chain) []chain.Hash {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(c) == len(h.shared) && slices.EqualFunc(c, h.shared, func(cert *chain.Cert, hash chain.Hash) bool { return cert.SHA256 == hash }) {
		return h.shared
	}
	out := make([]chain.Hash, len(c))
	for i, cert := range c {
		out[i] = cert.SHA256
		h.certs[cert.SHA256] = cert.DER
	}
	if h.shared == nil {
		h.shared = out // the first chain kept is the control's
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
