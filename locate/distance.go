package locate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// distancePort is where the server-distance probes go, as traceroute's
// UDP probes: a port nothing listens on, so the host answers ICMP port
// unreachable.
const distancePort = 33434

// maxSilentHops ends a distance probe that hears nothing for this many
// TTLs in a row: a server that drops UDP would otherwise cost a timeout for
// every TTL up to MaxHops.
const maxSilentHops = 3

// DistanceError is a server distance that could not be measured.
type DistanceError struct {
	Address string
	Reason  string
}

func (e *DistanceError) Error() string {
	return fmt.Sprintf("the hop count to %s is unknown: %s", e.Address, e.Reason)
}

// probeAnswer is what one distance probe drew.
type probeAnswer int

const (
	probeSilent  probeAnswer = iota // nothing before the timeout
	probeExpired                    // time-exceeded from a router
	probeReached                    // the host itself answered
)

// serverDistance returns the TTL at which dst's address itself answers,
// trying from TTL from up to maxHops. Each try is a UDP datagram to a port
// nothing listens on, sent with that TTL and IP_RECVERR on: a router where
// it expires makes the socket's read fail with EHOSTUNREACH, the host with
// ECONNREFUSED (port unreachable). An interceptor of TLS (TCP port 443)
// lets the datagram by, so this is the server's distance where a TLS trace
// through a transparent proxy stops at the proxy. No privilege is needed.
func serverDistance(ctx context.Context, dst netip.Addr, from, maxHops int, timeout time.Duration) (int, error) {
	silent := 0
	for ttl := max(from, 1); ttl <= maxHops; ttl++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		a, err := distanceProbe(ctx, dst, ttl, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, &DistanceError{Address: dst.String(), Reason: err.Error()}
		}
		switch a {
		case probeReached:
			return ttl, nil
		case probeExpired:
			silent = 0
		case probeSilent:
			if silent++; silent == maxSilentHops {
				return 0, &DistanceError{Address: dst.String(), Reason: fmt.Sprintf("no answer to a UDP probe at TTL %d to %d", ttl-silent+1, ttl)}
			}
		}
	}
	return 0, &DistanceError{Address: dst.String(), Reason: fmt.Sprintf("no answer from the host to a UDP probe within %d hops", maxHops)}
}

// distanceProbe sends one datagram with TTL ttl and waits for its fate.
func distanceProbe(ctx context.Context, dst netip.Addr, ttl int, timeout time.Duration) (probeAnswer, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(distancePort+ttl%1000))))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = setHopOpts(int(fd), dst.Is6(), hopOpts{TTL: ttl, RecvErr: 1}) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("cannot set the TTL of a UDP probe: %w", serr)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write([]byte("mitmguard locate: hop count")); err != nil {
		return 0, err
	}
	buf := make([]byte, 512)
	_, err = c.Read(buf)
	switch {
	case err == nil, errors.Is(err, syscall.ECONNREFUSED):
		return probeReached, nil // something answered from the host itself
	case errors.Is(err, syscall.EHOSTUNREACH):
		return probeExpired, nil
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil:
		return probeSilent, nil
	}
	return 0, err
}
