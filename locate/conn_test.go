package locate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loopback"}, DNSNames: []string{"loopback"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func opts(t *testing.T, c *net.TCPConn) hopOpts {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var o hopOpts
	var gerr error
	v6 := c.RemoteAddr().(*net.TCPAddr).IP.To4() == nil
	if err := raw.Control(func(fd uintptr) { o, gerr = getHopOpts(int(fd), v6) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return o
}

// The ClientHello leaves with the low TTL and IP_RECVERR on, and the
// connection has its own options back once the answer came: a caller that
// keeps the connection gets it unchanged.
func TestLowTTLConnRestores(t *testing.T) {
	ln, tc := loopback(t, "tcp4", "127.0.0.1:0")
	raw := net.Conn(tc)
	before := opts(t, tc)
	if before.TTL <= 2 || before.RecvErr != 0 {
		t.Fatalf("unexpected starting options %+v", before)
	}
	l, err := newLowTTLConn(raw, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	atHello := make(chan hopOpts, 1)
	srvErr := make(chan error, 1)
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer sc.Close()
		cert := selfSigned(t)
		srv := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			// The hello is here and nothing has been answered yet.
			atHello <- opts(t, tc)
			return nil, nil
		}})
		srvErr <- srv.Handshake()
		srv.Read(make([]byte, 1)) // until the client closes
	}()
	cl := tls.Client(l, &tls.Config{InsecureSkipVerify: true, ServerName: "loopback"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	if got := <-atHello; got.TTL != 2 || got.RecvErr != 1 {
		t.Fatalf("options while the hello was in flight: %+v", got)
	}
	if got := opts(t, tc); got != before || l.err != nil {
		t.Fatalf("options after the answer: %+v (%v), want %+v", got, l.err, before)
	}
	// Later writes go at the full TTL.
	if _, err := cl.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := opts(t, tc); got != before {
		t.Fatalf("options after a later write: %+v, want %+v", got, before)
	}
}

// A hello that drew no answer has the options restored by Close, on IPv4
// and IPv6 (hop limit) alike.
func TestLowTTLConnRestoresUnanswered(t *testing.T) {
	for _, c := range [][2]string{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(c[0], func(t *testing.T) {
			_, tc := loopback(t, c[0], c[1])
			before := opts(t, tc)
			l, err := newLowTTLConn(tc, 1, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if got := opts(t, tc); got.TTL != 1 || got.RecvErr != before.RecvErr {
				t.Fatalf("options after the hello: %+v", got)
			}
			l.restore() // what Close does first
			if got := opts(t, tc); got != before {
				t.Fatalf("restored: %+v, want %+v", got, before)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// loopback returns a listener and a connection to it, closed when the test
// ends; an address family the machine lacks skips the test.
func loopback(t *testing.T, network, addr string) (net.Listener, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback here: %v", network, err)
	}
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ln, c.(*net.TCPConn)
}

// A connection that is not TCP is refused, not silently left at full TTL.
func TestLowTTLConnNeedsTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := newLowTTLConn(a, 1, false); err != errNotTCP {
		t.Fatalf("pipe: %v", err)
	}
}
