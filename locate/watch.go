package locate

import (
	"net"
	"net/netip"
	"sync"
)

// icmpWatcher reads the time-exceeded messages routers send to this host on
// a raw ICMP socket (root or CAP_NET_RAW) and hands each to the attempt
// whose connection sent the expired packet, matched by the quoted flow.
type icmpWatcher struct {
	conn net.PacketConn
	v6   bool
	dst  netip.AddrPort

	mu    sync.Mutex
	waits map[uint16]chan netip.Addr // by local port
	done  chan struct{}
}

// openICMP opens the raw socket; the error of an unprivileged user is the
// caller's cue to go on without router addresses.
func openICMP(dst netip.AddrPort) (*icmpWatcher, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	if dst.Addr().Is6() {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	c, err := net.ListenPacket(network, laddr)
	if err != nil {
		return nil, err
	}
	w := &icmpWatcher{conn: c, v6: dst.Addr().Is6(), dst: dst, waits: map[uint16]chan netip.Addr{}, done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *icmpWatcher) run() {
	defer close(w.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := w.conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		q, err := parseTimeExceeded(buf[:n], w.v6)
		if err != nil || q.Dst != w.dst {
			continue
		}
		ia, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		router, ok := netip.AddrFromSlice(ia.IP)
		if !ok {
			continue
		}
		w.mu.Lock()
		if ch := w.waits[q.Src.Port()]; ch != nil {
			select {
			case ch <- router.Unmap():
			default: // the attempt already has its answer
			}
		}
		w.mu.Unlock()
	}
}

// watch returns where the time-exceeded messages for the connection from
// localPort arrive, and a function that stops watching it.
func (w *icmpWatcher) watch(localPort uint16) (<-chan netip.Addr, func()) {
	ch := make(chan netip.Addr, 1)
	w.mu.Lock()
	w.waits[localPort] = ch
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.waits, localPort)
		w.mu.Unlock()
	}
}

func (w *icmpWatcher) close() {
	w.conn.Close()
	<-w.done
}
