package campaign

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mitmguard/mitmguard/natsd"
)

// startNATS runs the real NATS server with JetStream on a temporary folder,
// on a free loopback port.
func startNATS(t *testing.T) (*natsd.Server, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func startNATSB(b *testing.B) (*natsd.Server, string) {
	dir := b.TempDir()
	s, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s, dir
}

func connectB(b *testing.B, s *natsd.Server) *nats.Conn {
	nc, err := Connect(s.URL(), b.Name())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := Connect(url, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func openQueue(t *testing.T, url string, opts Options) *Queue {
	t.Helper()
	q, err := OpenQueue(testCtx(t), connect(t, url), opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// hostList is n loopback hosts as a HostSource.
func hostList(n int) ([]string, HostSource) {
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("127.0.%d.%d:443", 1+i/250, 1+i%250)
	}
	return hosts, func(ctx context.Context, emit func(string) error) error {
		for _, h := range hosts {
			if err := emit(h); err != nil {
				return err
			}
		}
		return nil
	}
}

func request(id string, n int, vantages ...string) Request {
	_, src := hostList(n)
	return Request{ID: id, Vantages: vantages, Domains: []string{"kz.example", "other.example"}, Batch: 10, Hosts: src, Limits: Limits{TimeoutMS: 2000}}
}

// recorder is a Runner that notes every host it ran for each vantage point.
type recorder struct {
	mu    sync.Mutex
	seen  map[string]map[string]int // vantage -> host -> runs
	jobs  []Work
	event chan Work
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]map[string]int{}, event: make(chan Work, 1000)}
}

func (r *recorder) Run(ctx context.Context, w Work) error {
	r.mu.Lock()
	if r.seen[w.Vantage] == nil {
		r.seen[w.Vantage] = map[string]int{}
	}
	for _, h := range w.Hosts {
		r.seen[w.Vantage][h]++
	}
	r.jobs = append(r.jobs, w)
	r.mu.Unlock()
	r.event <- w
	return nil
}

func (r *recorder) hosts(vantage string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen[vantage])
}

// runWorker runs w until the test ends, and fails the test if Run returns
// an error it did not expect.
func runWorker(t *testing.T, w *Worker) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && w.Conn == nil {
			t.Errorf("worker %s: %v", w.Vantage, err)
		}
	})
	return cancel
}

// waitFor polls cond (a state on the server, not a timer) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receive waits for the next value on ch, failing the test after a minute.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for an event")
	}
	panic("unreachable")
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// slowLink relays connections to the NATS server at natsURL, holding every
// byte the server sends for delay before passing it on: a loaded machine
// or a slow link, where a reply can come after the client's own deadline.
// It returns the URL to connect to instead.
func slowLink(t *testing.T, natsURL string, delay time.Duration) string {
	t.Helper()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srv, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, srv)
			mu.Unlock()
			go func() { io.Copy(srv, c); srv.Close() }()
			go delayCopy(c, srv, delay)
		}
	}()
	return "nats://" + ln.Addr().String()
}

// delayCopy copies src to dst, each read passed on delay after it arrived.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				ch <- chunk{b[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at)) // the link's latency, not a wait for an event
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range ch {
	}
}
