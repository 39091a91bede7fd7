package locate

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// lowTTLConn sends its first write, the ClientHello, with a low TTL and
// gives the connection its own options back as soon as the answer's first
// bytes arrive, when a write fails, and before it closes. Lowering the TTL
// only for the write would not do: TCP retransmits an expired hello, and a
// retransmission at the full TTL would reach the server after all.
type lowTTLConn struct {
	*net.TCPConn
	raw  syscall.RawConn
	v6   bool
	orig hopOpts // what the connection had, restored
	low  hopOpts // what the hello is sent with

	mu       sync.Mutex
	lowered  bool // the hello went out with low
	restored bool
	err      error // the first failure to change an option
}

var errNotTCP = errors.New("locate: not a TCP connection")

// newLowTTLConn prepares c to send its next write with TTL ttl; recvErr
// also turns on IP_RECVERR for that time, so that a time-exceeded answer
// fails the connection's read instead of going unnoticed.
func newLowTTLConn(c net.Conn, ttl int, recvErr bool) (*lowTTLConn, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil, errNotTCP
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	l := &lowTTLConn{TCPConn: tc, raw: raw, v6: tc.RemoteAddr().(*net.TCPAddr).IP.To4() == nil}
	if err := l.control(func(fd int) (err error) { l.orig, err = getHopOpts(fd, l.v6); return err }); err != nil {
		return nil, err
	}
	l.low = hopOpts{TTL: ttl, RecvErr: l.orig.RecvErr}
	if recvErr {
		l.low.RecvErr = 1
	}
	return l, nil
}

func (l *lowTTLConn) control(f func(fd int) error) error {
	var ferr error
	if err := l.raw.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (l *lowTTLConn) Write(b []byte) (int, error) {
	l.mu.Lock()
	if !l.lowered && !l.restored {
		if err := l.control(func(fd int) error { return setHopOpts(fd, l.v6, l.low) }); err != nil {
			l.mu.Unlock()
			l.restore()
			return 0, err
		}
		l.lowered = true
	}
	l.mu.Unlock()
	n, err := l.TCPConn.Write(b)
	if err != nil {
		l.restore()
	}
	return n, err
}

func (l *lowTTLConn) Read(b []byte) (int, error) {
	n, err := l.TCPConn.Read(b)
	if n > 0 {
		l.restore() // the hello arrived: what follows goes at the full TTL
	}
	return n, err
}

// Close restores the options and closes. A hello that drew no answer is
// aborted with a reset, sent at the full TTL so that it reaches whoever
// holds the other end, instead of being retransmitted towards the router
// that dropped it.
func (l *lowTTLConn) Close() error {
	l.mu.Lock()
	unanswered := l.lowered && !l.restored
	l.mu.Unlock()
	l.restore()
	if unanswered {
		l.TCPConn.SetLinger(0)
	}
	return l.TCPConn.Close()
}

// restore gives the connection its own options back, once.
func (l *lowTTLConn) restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.restored {
		return
	}
	l.restored = true
	if err := l.control(func(fd int) error { return setHopOpts(fd, l.v6, l.orig) }); err != nil && l.err == nil {
		l.err = err
	}
}
