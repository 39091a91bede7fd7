package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Action is what the middlebox does with a connection whose SNI it targets.
type Action int

// The middlebox's actions.
const (
	Pass      Action = iota // relay the bytes untouched
	Intercept               // forge a certificate and relay the plaintext
	Reset                   // answer the ClientHello with a TCP RST
	Stall                   // read and never answer
	Close                   // answer the ClientHello with a FIN
)

func (a Action) String() string {
	switch a {
	case Pass:
		return "pass"
	case Intercept:
		return "intercept"
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	case Close:
		return "close"
	}
	return "unknown"
}

// helloTimeout bounds how long the middlebox waits for a ClientHello.
const helloTimeout = 10 * time.Second

// middlebox sits in front of one origin.
type middlebox struct {
	ln      net.Listener
	origin  string // address of the origin
	targets map[string]Action
	forger  *forger
	// originRoots verifies the origin when the middlebox re-originates a
	// connection: the box only fired for servers with a trusted certificate.
	originRoots *x509.CertPool

	ctx    context.Context
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func (m *middlebox) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		if !m.track(c, true) {
			c.Close()
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer m.track(c, false)
			m.handle(c)
		}()
	}
}

// track records an open connection so close can end it.
func (m *middlebox) track(c net.Conn, add bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if add {
		if m.closed {
			return false
		}
		m.conns[c] = true
		return true
	}
	delete(m.conns, c)
	c.Close()
	return true
}

func (m *middlebox) close() {
	m.mu.Lock()
	m.closed = true
	m.ln.Close()
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *middlebox) handle(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(helloTimeout))
	sni, hello, err := readClientHello(c)
	c.SetReadDeadline(time.Time{})
	if err != nil && len(hello) == 0 {
		return
	}
	switch m.targets[sni] {
	case Pass:
		m.pass(c, hello)
	case Intercept:
		m.intercept(c, sni, hello)
	case Reset:
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	case Stall:
		io.Copy(io.Discard, c)
	case Close:
	}
}

// pass relays the connection to the origin byte for byte.
func (m *middlebox) pass(c net.Conn, hello []byte) {
	var d net.Dialer
	up, err := d.DialContext(m.ctx, "tcp", m.origin)
	if err != nil {
		return
	}
	if _, err := up.Write(hello); err != nil {
		up.Close()
		return
	}
	relay(c, up)
}

// intercept terminates TLS with a forged certificate and re-originates it.
func (m *middlebox) intercept(c net.Conn, sni string, hello []byte) {
	ctx, cancel := context.WithTimeout(m.ctx, helloTimeout)
	defer cancel()
	// The box fired only for servers with a trusted certificate, whatever
	// names it holds (a scanned server's certificate is rarely for the SNI).
	d := tls.Dialer{Config: &tls.Config{
		ServerName: sni, NextProtos: []string{"http/1.1"},
		InsecureSkipVerify: true, // verified below, without the name
		VerifyConnection: func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: m.originRoots, Intermediates: inter})
			return err
		},
	}}
	upc, err := d.DialContext(ctx, "tcp", m.origin)
	if err != nil {
		return // the box did not fire for servers without a trusted certificate
	}
	up := upc.(*tls.Conn)
	real := up.ConnectionState().PeerCertificates[0]
	forged, err := m.forger.forge(real)
	if err != nil {
		up.Close()
		return
	}
	down := tls.Server(&prefixConn{Conn: c, prefix: hello}, &tls.Config{
		Certificates: []tls.Certificate{*forged},
		NextProtos:   []string{"http/1.1"},
	})
	if err := down.HandshakeContext(ctx); err != nil {
		up.Close()
		return
	}
	relay(down, up)
}

// relay copies both ways until either side ends, then closes both.
func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	a.Close()
	b.Close()
	<-done
}

var errPeeked = errors.New("lab: ClientHello read")

// readClientHello reads the ClientHello with crypto/tls's own parser, writing
// nothing to the client: it returns the SNI and every byte read, to be
// replayed to the origin or to the forging server.
func readClientHello(c net.Conn) (string, []byte, error) {
	pc := &recordingConn{Conn: c}
	var sni string
	var got bool
	srv := tls.Server(pc, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni, got = h.ServerName, true
		return nil, errPeeked
	}})
	err := srv.Handshake()
	if got {
		err = nil
	}
	return sni, pc.buf.Bytes(), err
}

// recordingConn keeps what is read and discards what is written.
type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (r *recordingConn) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	r.buf.Write(b[:n])
	return n, err
}

func (r *recordingConn) Write(b []byte) (int, error) { return len(b), nil }
func (r *recordingConn) Close() error                { return nil }

// prefixConn replays prefix before reading from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
