package measure

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/verdict"
)

// Prober performs one handshake. probe.Handshake is the real one; the
// engine's benchmarks pass a synthetic one to measure the plumbing alone.
type Prober func(ctx context.Context, t probe.Target, opts probe.Options) *probe.Result

// Config is a campaign's parameters. Zero values take the defaults.
type Config struct {
	Domains        []string `json:"domains"`
	ControlDomains []string `json:"control_domains"`
	// Vantage names where the campaign is measured from (default "local").
	Vantage string `json:"vantage,omitempty"`
	// Groups are the key exchange groups offered (nil: Go's default).
	Groups []tls.CurveID `json:"groups,omitempty"`
	// Concurrency bounds the handshakes in flight (default 100).
	Concurrency int `json:"concurrency"`
	// PerHost bounds the handshakes in flight to one host (default 2).
	PerHost int `json:"per_host"`
	// Rate bounds the handshakes started per second to one host (default 20).
	Rate float64 `json:"rate_per_host"`
	// Timeout bounds one handshake (default 10s); tests use less when the
	// control showed the host answers fast (at least MinTimeout, 1s).
	Timeout    time.Duration `json:"timeout"`
	MinTimeout time.Duration `json:"min_timeout"`
	// Retries is how often a test that differs or fails is tried again:
	// zero means the default (1), a negative value none.
	Retries int `json:"retries"`

	Classifier *verdict.Classifier `json:"-"`
	Prober     Prober              `json:"-"`
	// Progress, if set, is called about once a second and at the end.
	Progress func(Progress) `json:"-"`
	// JSONL, if set, receives every record and new certificate as JSON
	// Lines, after they are committed to the sink (so a kill in between
	// leaves the JSON Lines behind the sink, never ahead: see IndexJSONL).
	JSONL *JSONL `json:"-"`
	// WriteRetry bounds how long a transient write error is retried
	// (default 2 minutes) before the campaign stops.
	WriteRetry time.Duration `json:"-"`
}

// RandomControls returns n control SNIs: random names under a reserved
// suffix that no middlebox targets (as Censored Planet used).
func RandomControls(n int) []string {
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 6)
		rand.Read(b)
		out[i] = "ctl-" + hex.EncodeToString(b) + ".control.mitmguard.invalid"
	}
	return out
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 100
	}
	if c.PerHost <= 0 {
		c.PerHost = 2
	}
	if c.Rate <= 0 {
		c.Rate = 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MinTimeout <= 0 {
		c.MinTimeout = time.Second
	}
	if c.MinTimeout > c.Timeout {
		c.MinTimeout = c.Timeout
	}
	if c.Retries < 0 {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = 1
	}
	if len(c.ControlDomains) == 0 {
		c.ControlDomains = RandomControls(2)
	}
	if c.Prober == nil {
		c.Prober = probe.Handshake
	}
	if c.Classifier == nil {
		c.Classifier = verdict.New(verdict.Options{})
	}
	if c.Vantage == "" {
		c.Vantage = DefaultVantage
	}
	if c.WriteRetry <= 0 {
		c.WriteRetry = 2 * time.Minute
	}
}

// Params is the JSON a campaign is stored with.
func (c *Config) Params() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Progress is the state of a running campaign.
type Progress struct {
	Hosts, Pairs int // done
	Skipped      int // hosts already stored (resume) or excluded
	Elapsed      time.Duration
	Final        bool // the last call, when the run has ended
}

// Stats summarise a finished (or stopped) campaign run.
type Stats struct {
	Hosts    int                     `json:"hosts"`
	Pairs    int                     `json:"pairs"`
	Resumed  int                     `json:"hosts_already_stored"`
	Outcomes map[outcome.Outcome]int `json:"outcomes"`
	Elapsed  time.Duration           `json:"-"`
}

// Run measures every host from hosts against the campaign's domains and
// writes the records to sink. It returns when hosts is closed and every host
// is recorded, or when ctx is cancelled (then the hosts in flight are not
// recorded, so a resumed run measures them again), or at once when a write
// fails for good (a *WriteError: then hosts is no longer read, and the
// caller stops whatever feeds it). With resume, hosts already stored are
// skipped.
func Run(ctx context.Context, cfg Config, sink Sink, hosts <-chan string, resume bool) (*Stats, error) {
	cfg.defaults()
	e := &engine{cfg: cfg, sem: make(chan struct{}, cfg.Concurrency), stats: Stats{Outcomes: map[outcome.Outcome]int{}}}
	start := time.Now()
	// A failed write cancels work, not ctx: the workers stop at once
	// while the caller's ctx still says whether the user stopped the run.
	work, stopWork := context.WithCancel(ctx)
	defer stopWork()
	results := make(chan *HostResult, 64)
	var writeErr error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		writeErr = e.write(ctx, sink, results)
		if writeErr != nil {
			stopWork()
			for range results { // drain, so no worker is left blocked
			}
		}
	}()

	stopProgress := make(chan struct{})
	var progressWG sync.WaitGroup
	if cfg.Progress != nil {
		progressWG.Add(1)
		go func() {
			defer progressWG.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					cfg.Progress(e.progress(start))
				case <-stopProgress:
					return
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range hosts {
				if work.Err() != nil {
					if ctx.Err() == nil {
						return // a write failed: stop now (the caller stops its reader)
					}
					continue // drain, so a reader on ctx is not left blocked
				}
				if resume {
					if done, err := sink.HostDone(work, cfg.Vantage, h); err == nil && done {
						e.skipped.Add(1)
						continue
					}
				}
				if hr := e.host(work, h); hr != nil {
					select {
					case results <- hr:
					case <-work.Done():
					}
				}
			}
		}()
	}
	wg.Wait()
	close(results)
	<-writerDone
	close(stopProgress)
	progressWG.Wait()
	e.stats.Elapsed = time.Since(start)
	e.stats.Resumed = int(e.skipped.Load())
	if cfg.Progress != nil {
		p := e.progress(start)
		p.Final = true
		cfg.Progress(p)
	}
	if writeErr != nil {
		return &e.stats, writeErr
	}
	return &e.stats, ctx.Err()
}

type engine struct {
	cfg       Config
	sem       chan struct{}
	hostsDone atomic.Int64
	pairsDone atomic.Int64
	skipped   atomic.Int64
	mu        sync.Mutex
	stats     Stats
}

func (e *engine) progress(start time.Time) Progress {
	return Progress{Hosts: int(e.hostsDone.Load()), Pairs: int(e.pairsDone.Load()), Skipped: int(e.skipped.Load()), Elapsed: time.Since(start)}
}

// write commits host results in batches (up to 256 hosts or half a second)
// and then copies them to the JSON Lines output. It returns the first
// error that ends the campaign.
func (e *engine) write(ctx context.Context, sink Sink, results <-chan *HostResult) error {
	var batch []*HostResult
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		newCerts, err := e.commit(ctx, sink, batch)
		if err != nil {
			return &WriteError{Stored: e.storedHosts(), Err: err}
		}
		e.count(batch)
		if j := e.cfg.JSONL; j != nil {
			for _, der := range newCerts {
				if err := j.Cert(der); err != nil {
					return err
				}
			}
			for _, hr := range batch {
				if err := j.Host(hr); err != nil {
					return fmt.Errorf("jsonl: %w", err)
				}
			}
		}
		clear(batch) // let the host results go before the next batch fills
		batch = batch[:0]
		return nil
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case hr, ok := <-results:
			if !ok {
				return flush()
			}
			batch = append(batch, hr)
			if len(batch) >= 256 {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// commit writes a batch, retrying transient errors (a lock another writer
// holds) for up to WriteRetry (RetryTransient).
func (e *engine) commit(ctx context.Context, sink Sink, batch []*HostResult) ([][]byte, error) {
	var transient func(error) bool
	if ts, ok := sink.(TransientSink); ok {
		transient = ts.Transient
	}
	var newCerts [][]byte
	err := RetryTransient(ctx, e.cfg.WriteRetry, transient, func(ctx context.Context) error {
		var err error
		newCerts, err = sink.Write(ctx, batch)
		return err
	})
	return newCerts, err
}

func (e *engine) storedHosts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats.Hosts
}

func (e *engine) count(batch []*HostResult) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, hr := range batch {
		e.stats.Hosts++
		for _, r := range hr.Records {
			e.stats.Pairs++
			e.stats.Outcomes[r.Outcome]++
		}
	}
}
