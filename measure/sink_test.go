package measure_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/store/storetest"
	"github.com/mitmguard/mitmguard/verdict"
)

// instant is a prober that answers every handshake at once with the same
// self-signed chain, counting its calls: the engine and the store are
// tested, not the network.
type instant struct {
	calls atomic.Int64
	chain chain.Chain
}

func newInstant(t *testing.T) *instant {
	c, err := chain.NewCert(storetest.Cert(t, "host"))
	if err != nil {
		t.Fatal(err)
	}
	return &instant{chain: chain.Chain{c}}
}

func (p *instant) probe(_ context.Context, tg probe.Target, _ probe.Options) *probe.Result {
	p.calls.Add(1)
	return &probe.Result{Target: tg, Start: time.Now(), Chain: p.chain}
}

// countingSink is the real store, counting the writes that failed.
type countingSink struct {
	store.Bound
	failed atomic.Int64
}

func (s *countingSink) Write(ctx context.Context, r []*measure.HostResult) ([][]byte, error) {
	nc, err := s.Bound.Write(ctx, r)
	if err != nil {
		s.failed.Add(1)
	}
	return nc, err
}

func openLocked(t *testing.T) (*store.SQLite, *store.Campaign, *sql.Conn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := store.OpenWith(path, store.Options{BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &store.Campaign{ID: "locked", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// A second program holds the database: its own *sql.DB, BEGIN EXCLUSIVE.
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	return st, c, conn
}

// hostFeed streams n hosts until the test ends.
func hostFeed(t *testing.T, n int) <-chan string {
	ch := make(chan string, 256)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		defer close(ch)
		for i := range n {
			select {
			case ch <- fmt.Sprintf("127.%d.%d.%d:443", 1+i/65536, (i/256)%256, i%256):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func fastConfig(p *instant) measure.Config {
	return measure.Config{Domains: []string{"a.example", "b.example"}, ControlDomains: []string{"ctl.example"}, Concurrency: 8, Rate: 1e9,
		Prober: p.probe, Classifier: verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{}})}
}

// A lock another program holds for longer than the busy timeout delays the
// campaign but loses nothing: the engine retries the write.
func TestWriteRetriesWhileLocked(t *testing.T) {
	st, c, lock := openLocked(t)
	p := newInstant(t)
	sink := &countingSink{Bound: store.Bind(st, c)}
	go func() {
		for sink.failed.Load() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		lock.ExecContext(context.Background(), `COMMIT`)
	}()
	const hosts = 600
	stats, err := measure.Run(context.Background(), fastConfig(p), sink, hostFeed(t, hosts), false)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sink.failed.Load() < 2 {
		t.Fatalf("no write met the lock (%d failed)", sink.failed.Load())
	}
	if n, err := st.Count(context.Background(), c); err != nil || n != 2*hosts || stats.Hosts != hosts {
		t.Fatalf("%d records stored (%v), stats %+v; want %d", n, err, stats, 2*hosts)
	}
}

// A lock that is never released ends the campaign at once with a
// WriteError saying how many hosts are stored, instead of probing on and
// throwing every result away.
func TestWriteFailureStopsProbing(t *testing.T) {
	st, c, _ := openLocked(t)
	p := newInstant(t)
	cfg := fastConfig(p)
	cfg.WriteRetry = 300 * time.Millisecond
	const hosts = 1_000_000
	done := make(chan struct{})
	var stats *measure.Stats
	var err error
	go func() {
		defer close(done)
		stats, err = measure.Run(context.Background(), cfg, store.Bind(st, c), hostFeed(t, hosts), false)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("still probing after 2 minutes (%d handshakes)", p.calls.Load())
	}
	var we *measure.WriteError
	if !errors.As(err, &we) || we.Stored != 0 || stats.Hosts != 0 {
		t.Fatalf("Run: %v, stats %+v", err, stats)
	}
	if !strings.Contains(err.Error(), "0 hosts of this run are stored") {
		t.Errorf("message: %v", err)
	}
	if calls := p.calls.Load(); calls >= 3*hosts {
		t.Errorf("%d handshakes: every host was probed", calls)
	}
}

// A persistent error (not a lock) stops at once, without retries, and
// counts the hosts stored before it.
func TestPersistentWriteError(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Campaign{ID: "c", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	p := newInstant(t)
	cfg := fastConfig(p)
	sink := &closingSink{Bound: store.Bind(st, c), after: 1}
	stats, err := measure.Run(context.Background(), cfg, sink, hostFeed(t, 1_000_000), false)
	var we *measure.WriteError
	if !errors.As(err, &we) || we.Stored == 0 || we.Stored != stats.Hosts {
		t.Fatalf("Run: %v, stats %+v", err, stats)
	}
	if sink.writes.Load() != 2 {
		t.Errorf("%d writes: a persistent error was retried", sink.writes.Load())
	}
}

// closingSink closes the store after its first write, as a disk that went
// away would fail every later one.
type closingSink struct {
	store.Bound
	after  int64
	writes atomic.Int64
	closed atomic.Bool
}

func (s *closingSink) Write(ctx context.Context, r []*measure.HostResult) ([][]byte, error) {
	if s.writes.Add(1) > s.after && !s.closed.Swap(true) {
		s.St.Close()
	}
	return s.Bound.Write(ctx, r)
}

// After a kill between the database commit and the JSON Lines write (and
// one inside a line), resume writes exactly what the file lacks: each
// record once, each certificate once and before its first use.
func TestJSONLCatchesUpWithStore(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	c := &store.Campaign{ID: "c", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	p := newInstant(t)
	cfg := fastConfig(p)
	var full bytes.Buffer
	cfg.JSONL = measure.NewJSONL(&full, c.ID)
	if _, err := measure.Run(ctx, cfg, store.Bind(st, c), hostFeed(t, 50), false); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(full.String(), "\n")
	lines = lines[:len(lines)-1]
	if len(lines) != 1+100 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, cut := range []struct {
		name string
		keep string
	}{
		{"nothing written", ""},
		{"certificate only", lines[0]},
		{"half a host", strings.Join(lines[:6], "")},
		{"inside a line", strings.Join(lines[:40], "") + lines[40][:25]},
		{"all but the last host", strings.Join(lines[:99], "")},
		{"all", full.String()},
	} {
		t.Run(cut.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(cut.name, " ", "_")+".jsonl")
			other := `{"type":"record","campaign":"older","vantage":"local","host":"127.1.0.0:443","sni":"a.example"}` + "\n"
			os.WriteFile(path, []byte(other+cut.keep), 0o644)
			fh, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			x, err := measure.IndexJSONL(fh, c.ID, len(cfg.Domains))
			if err != nil {
				t.Fatal(err)
			}
			fh.Truncate(x.Tail)
			fh.Seek(x.Tail, io.SeekStart)
			j := measure.NewJSONL(fh, c.ID)
			x.Seed(j)
			if err := j.Export(ctx, store.Bind(st, c), x.Has); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			checkJSONL(t, string(got), c.ID, 100)
		})
	}
}

// checkJSONL checks that campaign's records appear once each, want in
// all, and that each certificate appears once, before its first use.
func checkJSONL(t *testing.T, data, campaign string, want int) {
	t.Helper()
	seen, certs := map[string]bool{}, map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		var l struct {
			Type, Campaign, Vantage, Host, SNI, SHA256 string
			Chain                                      []string
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		switch {
		case l.Type == "certificate":
			if certs[l.SHA256] {
				t.Errorf("certificate %s twice", l.SHA256)
			}
			certs[l.SHA256] = true
		case l.Campaign == campaign:
			k := l.Vantage + " " + l.Host + " " + l.SNI
			if seen[k] {
				t.Errorf("record %s twice", k)
			}
			seen[k] = true
			for _, h := range l.Chain {
				if !certs[h] {
					t.Errorf("record %s before its certificate", k)
				}
			}
		}
	}
	if len(seen) != want {
		t.Errorf("%d records, want %d", len(seen), want)
	}
}

// With per-host limits lifted, the goroutines in flight stay bounded by the
// concurrency, not by concurrency x per-host (ten thousand idle goroutines
// and their stacks were most of a campaign's memory).
func TestGoroutinesBoundedByConcurrency(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "c", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	p := newInstant(t)
	var most atomic.Int64
	slow := func(ctx context.Context, tg probe.Target, o probe.Options) *probe.Result {
		if n := int64(runtime.NumGoroutine()); n > most.Load() {
			most.Store(n)
		}
		time.Sleep(time.Millisecond)
		return p.probe(ctx, tg, o)
	}
	cfg := fastConfig(p)
	cfg.Prober, cfg.Concurrency, cfg.PerHost = slow, 10, 100
	cfg.Domains = nil
	for i := range 100 {
		cfg.Domains = append(cfg.Domains, fmt.Sprintf("d%d.example", i))
	}
	before := runtime.NumGoroutine()
	if _, err := measure.Run(context.Background(), cfg, store.Bind(st, c), hostFeed(t, 20), false); err != nil {
		t.Fatal(err)
	}
	if extra := most.Load() - int64(before); extra > 4*int64(cfg.Concurrency)+16 {
		t.Errorf("%d goroutines beyond the %d before, at concurrency %d", extra, before, cfg.Concurrency)
	}
}
