// Package probe performs one TLS handshake to (address, SNI) and records
// everything that happened, whatever happens: timings per stage, the
// negotiated parameters, the whole presented chain, and a failure classified
// into the outcome vocabulary.
//
// crypto/tls is told to skip verification so that a chain that would fail
// verification is still received and kept as evidence; judging the chain is
// package verdict's job. (One limit remains: crypto/tls aborts on a
// certificate it cannot parse before handing it over, so such a chain is
// recorded as tls.invalid without its bytes.)
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
)

// Options bound one handshake. The zero value is usable.
type Options struct {
	// Timeout bounds dial plus handshake (default 10s).
	Timeout time.Duration
	// ALPN protocols to offer (default h2, http/1.1, as a browser does).
	ALPN []string
	// Dialer dials TCP; nil means a net.Dialer.
	Dialer *net.Dialer
	// MaxBytes bounds what is read from the server (default 1 MiB): a
	// hostile server cannot make the probe read without end.
	MaxBytes int64
	// Wrap, when set, wraps the TCP connection before the handshake; the
	// probe closes what it returns. locate sends the ClientHello with a low
	// TTL this way.
	Wrap func(net.Conn) net.Conn
	// Groups are the key exchange groups offered, in order (nil: Go's
	// default, a post-quantum hybrid first). A campaign may offer X25519
	// alone: a much smaller and cheaper ClientHello.
	Groups []tls.CurveID
}

// DefaultTimeout is the default Options.Timeout: long enough for a slow
// link, short enough that a server which never answers cannot hold a
// handshake open.
const DefaultTimeout = 10 * time.Second

// DefaultMaxBytes is the default Options.MaxBytes. Real handshakes read
// 3-15 KB.
const DefaultMaxBytes = 1 << 20

// ErrTooMuchData is the error of a server that sent more than MaxBytes.
var ErrTooMuchData = errors.New("probe: the server sent more than the handshake byte limit")

// Target is where to connect and which name to send.
type Target struct {
	Address string // IP:port
	SNI     string // empty: no SNI extension
}

// Result is everything one handshake recorded.
type Result struct {
	Target
	Start       time.Time
	Dial        time.Duration
	Handshake   time.Duration
	TLSVersion  string
	CipherSuite string
	ALPN        string
	Chain       chain.Chain
	// Failure is empty when the handshake completed; otherwise the
	// classified reason (blocked.reset, blocked.timeout, error.dial, ...).
	Failure outcome.Outcome
	Err     error
}

// Handshake connects and performs the TLS handshake, then closes.
func Handshake(ctx context.Context, t Target, opts Options) *Result {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	alpn := opts.ALPN
	if alpn == nil {
		alpn = []string{"h2", "http/1.1"}
	}
	d := opts.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	r := &Result{Target: t, Start: time.Now()}
	raw, err := d.DialContext(ctx, "tcp", t.Address)
	r.Dial = time.Since(r.Start)
	if err != nil {
		r.Failure, r.Err = outcome.ErrorDial, err
		return r
	}
	if opts.Wrap != nil {
		raw = opts.Wrap(raw)
	}
	defer raw.Close()
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	var peer []*x509.Certificate
	conn := tls.Client(&limitedConn{Conn: raw, left: limit}, &tls.Config{
		ServerName:         t.SNI,
		InsecureSkipVerify: true, // verification is verdict's job; keep the chain whatever it is
		NextProtos:         alpn,
		CurvePreferences:   opts.Groups,
		// Called as soon as the certificates are parsed, before the
		// handshake can fail for another reason: the chain is kept even then.
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer = cs.PeerCertificates
			return nil
		},
	})
	hsStart := time.Now()
	err = conn.HandshakeContext(ctx)
	r.Handshake = time.Since(hsStart)
	switch {
	case len(peer) > chain.MaxCertificates:
		if err == nil {
			err = &chain.TooLongError{N: len(peer)}
		}
	case len(peer) > 0:
		r.Chain = make(chain.Chain, len(peer))
		for i, x := range peer {
			r.Chain[i] = chain.FromX509(x) // parsed once, by crypto/tls
		}
	}
	if err != nil {
		r.Failure, r.Err = classify(ctx, err), err
		return r
	}
	st := conn.ConnectionState()
	r.TLSVersion = tls.VersionName(st.Version)
	r.CipherSuite = tls.CipherSuiteName(st.CipherSuite)
	r.ALPN = st.NegotiatedProtocol
	return r
}

// limitedConn fails reads once the server has sent more than left bytes.
type limitedConn struct {
	net.Conn
	left int64
}

func (c *limitedConn) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, ErrTooMuchData
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.Conn.Read(b)
	c.left -= int64(n)
	return n, err
}

// classify maps a handshake error onto the vocabulary. Interference shows as
// a reset, a silent stall or a close right after the ClientHello.
func classify(ctx context.Context, err error) outcome.Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return outcome.Stopped
	case errors.Is(err, syscall.ECONNRESET):
		return outcome.BlockedReset
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout(), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return outcome.BlockedTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return outcome.BlockedClosed
	}
	return outcome.Invalid
}

// Describe is a one-line account of a failed handshake.
func (r *Result) Describe() string {
	switch r.Failure {
	case "":
		return fmt.Sprintf("%s %s, %d certificate(s)", r.TLSVersion, r.CipherSuite, len(r.Chain))
	case outcome.BlockedReset:
		return "the connection was reset after the ClientHello (typical of SNI-based blocking)"
	case outcome.BlockedTimeout:
		return "no answer to the ClientHello before the timeout (typical of SNI-based blocking)"
	case outcome.BlockedClosed:
		return "the connection was closed after the ClientHello (typical of SNI-based blocking)"
	case outcome.ErrorDial:
		return "could not connect: " + r.Err.Error()
	}
	return "the TLS handshake failed: " + r.Err.Error()
}
