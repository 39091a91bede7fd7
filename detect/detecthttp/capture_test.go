package detecthttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
	"github.com/mitmguard/mitmguard/detect/internal/hellotest"
)

// bigHello dials addr with a Chrome parrot whose ClientHello carries a
// 60 KB extension (over several records), makes one keep-alive request and
// leaves the connection open.
func bigHello(t *testing.T, addr string) net.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := utls.UTLSIdToSpec(utls.HelloChrome_133)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range spec.Extensions {
		if alpn, ok := e.(*utls.ALPNExtension); ok {
			alpn.AlpnProtocols = []string{"http/1.1"}
		}
	}
	spec.Extensions = append(spec.Extensions, &utls.GenericExtension{Id: 0xabcd, Data: make([]byte, 60000)})
	uc := utls.UClient(raw, &utls.Config{ServerName: "localhost", InsecureSkipVerify: true}, utls.HelloCustom)
	if err := uc.ApplyPreset(&spec); err != nil {
		t.Fatal(err)
	}
	if err := uc.Handshake(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(uc, "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\n\r\n", clienttest.ChromeUA)
	resp, err := http.ReadResponse(bufio.NewReader(uc), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return uc
}

// heapAfterIdle opens n connections with 60 KB hellos to a server (with or
// without the capture and middleware) and returns the growth of the live
// heap while they sit idle, with the server's captured *Conns. It closes
// everything before returning.
func heapAfterIdle(t *testing.T, n int, capture bool) (uint64, []*Conn) {
	var m0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *Conn, n)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{clienttest.Cert(t)}}}
	var inner net.Listener = ln
	if capture {
		srv.Handler = Middleware(h, Options{})
		srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			ctx = ConnContext(ctx, c)
			if dc, ok := ctx.Value(connKey{}).(*Conn); ok {
				conns <- dc
			}
			return ctx
		}
		inner = NewListener(ln)
	}
	go srv.Serve(tls.NewListener(inner, srv.TLSConfig))
	defer srv.Close()
	var clients []net.Conn
	for range n {
		clients = append(clients, bigHello(t, ln.Addr().String()))
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var got []*Conn
	for range len(conns) {
		got = append(got, <-conns)
	}
	return m.HeapAlloc - min(m.HeapAlloc, m0.HeapAlloc), got
}

// Issue 9 item 9: once the verdict is computed, an idle keep-alive
// connection no longer holds its raw ClientHello (up to 64 KB).
func TestIdleConnectionReleasesCapture(t *testing.T) {
	const n = 40
	heapAfterIdle(t, 2, true) // warm up: the checker's data, sync.Pools
	plain, _ := heapAfterIdle(t, n, false)
	withCapture, conns := heapAfterIdle(t, n, true)
	if len(conns) != n {
		t.Fatalf("%d captured connections, want %d", len(conns), n)
	}
	for _, c := range conns {
		c.mu.Lock()
		held := len(c.buf) + c.r.Held()
		if c.ch != nil {
			held += len(c.ch.Raw) // the extensions' data lies in Raw
		}
		c.mu.Unlock()
		if held != 0 {
			t.Fatalf("an idle connection still holds %d bytes of its ClientHello", held)
		}
	}
	// The clients' side is in both figures; what matters is that the
	// capture adds far less than a hello per connection.
	if withCapture > plain && (withCapture-plain)/n > 16<<10 {
		t.Errorf("the capture adds %d bytes per idle connection (plain %d, with capture %d for %d connections)", (withCapture-plain)/n, plain, withCapture, n)
	}
	t.Logf("live heap growth with %d idle connections: %d plain, %d with capture", n, plain, withCapture)
}

// The capturing connection reassembles a hello sent one byte per record,
// one record per write, consuming each record once as it arrives.
func TestCaptureOneByteRecords(t *testing.T) {
	good := hellotest.Hellos(t, "../tlshello/testdata/ja4/vectors.jsonl")[0]
	split := hellotest.Records(good[5:], 1)
	client, server := net.Pipe()
	go func() {
		for i := 0; i < len(split); i += 6 { // one record (5-byte header, 1 byte) per write
			client.Write(split[i:min(i+6, len(split))])
		}
	}()
	c := &Conn{Conn: server}
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if ch, _, err := c.ClientHello(); err == nil {
			ref, err := detect.Parse(good)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.JA4()
			if got, _ := ch.JA4(); got != want {
				t.Fatalf("JA4 %s, want %s", got, want)
			}
			break
		} else if !errors.Is(err, detect.ErrIncomplete) {
			t.Fatal(err)
		}
	}
	if c.r.Records() != len(good[5:]) {
		t.Errorf("%d records consumed, want %d", c.r.Records(), len(good[5:]))
	}
	client.Close()
	server.Close()
}
