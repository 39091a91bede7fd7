// Package detecthttp is package detect's net/http layer: a listener that
// captures each connection's ClientHello without disturbing crypto/tls,
// and a middleware that judges the connection of every request with a
// detect.Checker and hands the verdict to handlers. Package detect itself
// holds the judgement only, and tlshello the parser and fingerprints; the
// name follows the <lib>http convention of Go's instrumentation packages
// (promhttp, otelhttp).
package detecthttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/tlshello"
)

// MaxCapture bounds the bytes kept per connection: a ClientHello that has not
// ended by then is not a browser's.
const MaxCapture = 64 << 10

// Listener wraps a net.Listener so that each accepted connection keeps the
// raw bytes of its first TLS records until the ClientHello is complete,
// without disturbing crypto/tls, which reads through it as usual.
type Listener struct{ net.Listener }

// NewListener wraps ln.
func NewListener(ln net.Listener) *Listener { return &Listener{ln} }

// Accept returns a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c}, nil
}

// Conn records the ClientHello of one connection.
type Conn struct {
	net.Conn
	mu   sync.Mutex
	buf  []byte
	r    tlshello.Reassembler
	done bool
	ch   *detect.ClientHello
	err  error
	// The verdict of the last request, reused while the User-Agent and the
	// header names stay the same (the common keep-alive case).
	last      *detect.Result
	lastUA    string
	lastNames []string
}

// verdict judges the connection for a request, reusing the last verdict
// when the request looks the same to the checker.
func (c *Conn) verdict(chk *detect.Checker, r *http.Request) *detect.Result {
	ua := r.UserAgent()
	c.mu.Lock()
	if c.last != nil && c.lastUA == ua && sameNames(r.Header, c.lastNames) {
		res := c.last
		c.mu.Unlock()
		return res
	}
	ch, err := c.ch, c.err
	if !c.done && err == nil {
		err = detect.ErrIncomplete
	}
	c.mu.Unlock()
	var res *detect.Result
	if err != nil {
		res = &detect.Result{Browser: detect.ParseUA(ua), Reasons: []detect.Reason{{What: "the ClientHello could not be read: " + err.Error()}}}
	} else {
		res = chk.Check(ch, ua, r.Header)
	}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	c.mu.Lock()
	c.last, c.lastUA, c.lastNames = res, ua, names
	c.release()
	c.mu.Unlock()
	return res
}

// release drops the raw bytes once a verdict is computed: an idle
// keep-alive connection then holds the few hundred bytes of parsed lists a
// later request with another User-Agent needs, not the up to MaxCapture
// bytes of records. Called with c.mu held.
func (c *Conn) release() {
	if !c.done {
		return
	}
	c.buf, c.r = nil, tlshello.Reassembler{}
	if c.ch != nil {
		c.ch = c.ch.Slim()
	}
}

// sameNames reports whether h has exactly the header names of names.
func sameNames(h http.Header, names []string) bool {
	if len(h) != len(names) {
		return false
	}
	for _, n := range names {
		if _, ok := h[n]; !ok {
			return false
		}
	}
	return true
}

// Read reads from the connection and keeps the bytes until the ClientHello
// is complete (or cannot be).
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		if !c.done {
			c.buf = append(c.buf, b[:n]...)
			msg, err := c.r.Feed(c.buf) // only the records that arrived since
			switch {
			case err == nil:
				c.ch, c.err = tlshello.ParseRecords(c.buf, msg)
				c.done = true
			case errors.Is(err, detect.ErrIncomplete) && len(c.buf) < MaxCapture:
				c.err = err
			default:
				c.err, c.done = err, true
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

// ClientHello returns the parsed ClientHello and its raw record bytes.
// Once Middleware has judged a request on the connection the raw bytes are
// released (nil), and so are the ClientHello's Raw, Random, SessionID and
// extension data.
func (c *Conn) ClientHello() (*detect.ClientHello, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done && c.err == nil {
		return nil, c.buf, detect.ErrIncomplete
	}
	return c.ch, c.buf, c.err
}

type connKey struct{}

// ConnContext is an http.Server.ConnContext that makes the connection's
// captured ClientHello available to handlers (and to Middleware). It looks
// through crypto/tls to the *Conn underneath.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	for {
		switch v := c.(type) {
		case *Conn:
			return context.WithValue(ctx, connKey{}, v)
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return ctx
		}
	}
}

// FromContext returns the connection's captured ClientHello.
func FromContext(ctx context.Context) (*detect.ClientHello, []byte, error) {
	c, ok := ctx.Value(connKey{}).(*Conn)
	if !ok {
		return nil, nil, errors.New("detecthttp: no captured connection (serve through detecthttp.NewListener with detecthttp.ConnContext)")
	}
	return c.ClientHello()
}
