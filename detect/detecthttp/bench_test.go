package detecthttp

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
)

// BenchmarkMiddleware compares requests per second of one HTTPS server on
// loopback with and without the middleware, alternating in the same run
// over keep-alive connections, and reports the median with/without ratio of
// the paired rounds as "ratio" (goal: at least 0.95).
func BenchmarkMiddleware(b *testing.B) {
	cert := clienttest.Cert(b)
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	start := func(h http.Handler) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h, ConnContext: ConnContext,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}}
		go srv.Serve(tls.NewListener(NewListener(ln), srv.TLSConfig))
		b.Cleanup(func() { srv.Close() })
		return "https://" + ln.Addr().String() + "/"
	}
	// The middleware as configured by default: the verdict goes into the
	// request context (a response header is optional and costs the client
	// a header to parse).
	plainURL, guardedURL := start(hello), start(Middleware(hello, Options{}))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}}
	const par = 8
	run := func(url string, n int) time.Duration {
		startT := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < par; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n/par; i++ {
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("User-Agent", clienttest.ChromeUA)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		return time.Since(startT)
	}
	run(plainURL, 200) // warm the connection pools
	run(guardedURL, 200)
	var tPlain, tGuarded time.Duration
	var ratios []float64
	const chunk = 200
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var p, g time.Duration
		if i%2 == 0 {
			p = run(plainURL, chunk)
			g = run(guardedURL, chunk)
		} else {
			g = run(guardedURL, chunk)
			p = run(plainURL, chunk)
		}
		tPlain, tGuarded = tPlain+p, tGuarded+g
		ratios = append(ratios, p.Seconds()/g.Seconds())
	}
	// The median of the paired rounds: a burst of load from the rest of
	// the machine spoils a round or two, not the figure.
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.ReportMetric(float64(b.N*chunk)/tGuarded.Seconds(), "req/s-with")
	b.ReportMetric(float64(b.N*chunk)/tPlain.Seconds(), "req/s-without")
}

// BenchmarkMiddlewareCost isolates what the middleware adds to one request
// on a keep-alive connection (the verdict cached for the connection), with
// no network in the way: the end-to-end ratio above moves by a few percent
// from run to run on a 2-core machine that also runs the client.
func BenchmarkMiddlewareCost(b *testing.B) {
	raw := clienttest.Hello(b, utls.HelloChrome_133)
	conn := &Conn{Conn: nil}
	conn.buf = raw
	conn.ch, conn.err = detect.Parse(raw)
	conn.done = true
	ctx := context.WithValue(context.Background(), connKey{}, conn)
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://localhost/", nil)
	req.Header.Set("User-Agent", clienttest.ChromeUA)
	req.Header.Set("Accept", "*/*")
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	guarded := Middleware(plain, Options{Header: "Mitmguard-Intercepted"})
	w := &discardWriter{h: http.Header{}}
	b.Run("without", func(b *testing.B) {
		for b.Loop() {
			plain.ServeHTTP(w, req)
		}
	})
	b.Run("with", func(b *testing.B) {
		for b.Loop() {
			guarded.ServeHTTP(w, req)
		}
	})
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
