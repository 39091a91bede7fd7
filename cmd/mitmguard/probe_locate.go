package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/verdict"
)

// defaultLocateBudget bounds the traces of one probe --locate run: a trace
// costs up to --max-hops connections, and the hop histogram needs one pair
// per host, not every pair.
const defaultLocateBudget = 20

// locateWorkers is how many traces run at once. Each opens its own raw
// ICMP socket and a connection at a time; a few in parallel keep the
// routers' ICMP rate limits (about one time-exceeded per second each, with
// a burst of six) from silencing hops.
const locateWorkers = 4

// traceWriteFor bounds the retries of a trace write that meets another
// writer's lock, as the campaign's own writes are retried.
const traceWriteFor = 2 * time.Minute

// locateFlags are probe's --locate flags.
type locateFlags struct {
	on      bool
	budget  int
	maxHops int
	timeout time.Duration
	exclude []netip.Prefix // the networks the run may not probe
}

func addLocateFlags(cmd *cobra.Command, f *locateFlags) {
	fl := cmd.Flags()
	fl.BoolVar(&f.on, "locate", false, "after the campaign, trace where on the path each intercepted pair is intercepted (TTL-limited ClientHellos, as mitmguard locate; root names the routers) and store the hops")
	fl.IntVar(&f.budget, "locate-budget", defaultLocateBudget, "trace at most `N` intercepted pairs, one per host first")
	fl.IntVar(&f.maxHops, "max-hops", locate.DefaultMaxHops, "with --locate: the highest TTL to try")
	fl.DurationVar(&f.timeout, "locate-timeout", locate.DefaultTimeout, "with --locate: bound on each attempt of a trace")
}

// check refuses locate flags that cannot be used, before anything runs.
func (f *locateFlags) check(cmd *cobra.Command) error {
	if !f.on {
		for _, name := range []string{"locate-budget", "max-hops", "locate-timeout"} {
			if cmd.Flags().Changed(name) {
				return fmt.Errorf("probe: --%s needs --locate", name)
			}
		}
		return nil
	}
	switch {
	case f.budget < 1:
		return fmt.Errorf("probe: --locate-budget %d: want at least 1 pair to trace", f.budget)
	case f.maxHops < 1 || f.maxHops > locate.MaxTTL:
		return fmt.Errorf("probe: --max-hops %d: want 1..%d", f.maxHops, locate.MaxTTL)
	case f.timeout <= 0:
		return errors.New("probe: --locate-timeout must be positive")
	}
	return nil
}

// locateStats summarise the locate phase of a run.
type locateStats struct {
	Candidates int `json:"intercepted_pairs_untraced"` // before the budget
	Traced     int `json:"traced"`
	Located    int `json:"located"`
	Failed     int `json:"failed"`
	OverBudget int `json:"over_budget"`
}

type pair struct{ host, sni string }

// job is a pair to trace, with its host's own chain (what the control
// saw) to judge each hop's answer against.
type job struct {
	pair
	control []chain.Hash
}

// locatePairs returns the campaign's intercepted pairs seen from vantage
// that have no trace yet (a failed trace is tried again), one per host in
// turn so that a budget covers as many hosts as it can, and how many there
// were before the budget. A pair whose host is in an exclude network is
// left out: the records may come from a run that allowed more (or from
// someone else's database), and a trace connects to the host.
func locatePairs(ctx context.Context, st store.Store, c *store.Campaign, vantage string, budget int, exclude []netip.Prefix) ([]job, int, error) {
	traced := map[pair]bool{}
	err := st.Traces(ctx, c, func(t store.Trace) error {
		if t.Vantage == vantage && t.Error == "" {
			traced[pair{t.Host, t.SNI}] = true
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	var hosts []string
	byHost := map[string][]string{}
	controls := map[string][]chain.Hash{}
	n := 0
	err = st.Records(ctx, c, func(r measure.Record, ct measure.Control) error {
		if r.Vantage != vantage || !r.Outcome.Intercepted() || traced[pair{r.Host, r.SNI}] || !mayProbe(r.Host, exclude) {
			return nil
		}
		if byHost[r.Host] == nil {
			hosts = append(hosts, r.Host)
			controls[r.Host] = ct.Chain
		}
		byHost[r.Host] = append(byHost[r.Host], r.SNI)
		n++
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	var out []job
	for round := 0; len(out) < min(budget, n); round++ {
		for _, h := range hosts {
			if snis := byHost[h]; round < len(snis) && len(out) < budget {
				out = append(out, job{pair{h, snis[round]}, controls[h]})
			}
		}
	}
	return out, n, nil
}

// mayProbe reports whether this run may dial host (IP:port), as a hosts
// file's address is judged (measure.Excluded), an IPv4-mapped address as
// the IPv4 one it dials.
func mayProbe(host string, exclude []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(host)
	return err == nil && !measure.Excluded(ap.Addr().Unmap(), exclude)
}

// runLocatePhase traces the campaign's intercepted pairs within the budget
// and stores each trace with its record. A trace that fails (the host no
// longer answers, a socket option refused) is stored with its reason and
// does not stop the others; a failed store write or an interrupt does.
func runLocatePhase(ctx context.Context, st store.Store, c *store.Campaign, vantage string, cl *verdict.Classifier, f locateFlags, stderr io.Writer, progress bool) (*locateStats, error) {
	pairs, n, err := locatePairs(ctx, st, c, vantage, f.budget, f.exclude)
	if err != nil {
		return nil, fmt.Errorf("probe --locate: %w", err)
	}
	s := &locateStats{Candidates: n, OverBudget: n - len(pairs)}
	if len(pairs) == 0 {
		fmt.Fprintf(stderr, "locate: no intercepted pair left to trace from vantage %s\n", vantage)
		return s, nil
	}
	fmt.Fprintf(stderr, "locate: tracing %d of %d intercepted pairs (--locate-budget %d), TTL 1 to %d\n", len(pairs), n, f.budget, f.maxHops)
	var pp *progressPrinter
	if progress {
		pp = newProgressPrinter(stderr, len(pairs))
		pp.phase = "locate"
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job)
	var mu sync.Mutex
	hostsDone := map[string]bool{}
	start := time.Now()
	var wg sync.WaitGroup
	for range min(locateWorkers, len(pairs)) {
		wg.Go(func() {
			for p := range jobs {
				t := traceOne(ctx, st, p, vantage, cl, f)
				if ctx.Err() != nil {
					return // interrupted: not stored, so --resume traces it again
				}
				if err := writeTrace(ctx, st, c, t); err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				s.Traced++
				switch {
				case t.Error != "":
					s.Failed++
				case t.Result.Finding == locate.Located:
					s.Located++
				}
				hostsDone[p.host] = true
				if pp != nil {
					pp.print(measure.Progress{Hosts: len(hostsDone), Pairs: s.Traced, Elapsed: time.Since(start)})
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, p := range pairs {
		select {
		case jobs <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if pp != nil && pp.tty {
		fmt.Fprintln(stderr)
	}
	if err := context.Cause(ctx); err != nil {
		return s, err
	}
	fmt.Fprintf(stderr, "locate: %d pairs traced, %d located, %d failed; mitmguard report shows where interception starts\n", s.Traced, s.Located, s.Failed)
	return s, nil
}

// traceOne runs the locate trace of one pair, judging each hop's answer
// against the host's own chain as the campaign judged the pair; a failure
// becomes the trace's Error, with what it saw before.
func traceOne(ctx context.Context, st store.Store, p job, vantage string, cl *verdict.Classifier, f locateFlags) *store.Trace {
	t := &store.Trace{Vantage: vantage, Host: p.host, SNI: p.sni}
	target := p.sni // NAME:PORT, the port the campaign probed
	if _, port, err := net.SplitHostPort(p.host); err == nil {
		target = net.JoinHostPort(p.sni, port)
	}
	opts := locate.Options{Classifier: cl, Connect: p.host, MaxHops: f.maxHops, Timeout: f.timeout, ServerDistance: true}
	ders := make([][]byte, 0, len(p.control))
	for _, h := range p.control {
		der, err := st.Cert(ctx, h)
		if err != nil {
			t.Error, t.Result.Finding = "the host's control chain: "+err.Error(), store.FailedFinding
			return t
		}
		ders = append(ders, der)
	}
	if control, err := chain.FromDER(ders); err == nil && len(control) > 0 {
		j := measure.NewJudge(ctx, cl, control)
		opts.Judge = func(ctx context.Context, c chain.Chain) (outcome.Outcome, string) {
			o, _, issuer := j.Chain(ctx, c)
			return o, issuer
		}
	}
	r, err := locate.Run(ctx, target, opts)
	t.Time = time.Now().UTC()
	if r != nil {
		t.Result = *r
	}
	if err != nil {
		t.Error = err.Error()
		t.Result.Finding = store.FailedFinding
	}
	return t
}

// writeTrace stores a trace, trying again for a while when another writer
// holds a lock, as the campaign's own writes are.
func writeTrace(ctx context.Context, st store.Store, c *store.Campaign, t *store.Trace) error {
	return measure.RetryTransient(ctx, traceWriteFor, st.Transient, func(ctx context.Context) error { return st.WriteTrace(ctx, c, t) })
}
