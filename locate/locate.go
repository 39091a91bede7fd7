// Package locate finds where on the path to a server an interceptor sits,
// as the IMC 2020 study of Kazakhstan's 2019 interception did: it connects
// normally, then sends the ClientHello alone with a low IP TTL (IPv6 hop
// limit), one more per attempt on a fresh connection. Routers short of the
// interceptor drop the hello and say so with ICMP time-exceeded; the first
// TTL that draws a forged chain is the interceptor's hop, and the router
// that answered the TTL before it is the last clean one.
//
// It works whether the interceptor terminates TCP itself (a transparent
// proxy: it also answers the full-TTL connect, and the hello's TTL matters
// only up to it) or injects its answer into the server's TCP stream on
// seeing the hello: either way the hello only has to reach the box, and
// each attempt's connect is made at the full TTL. (A box that needed the
// server's own answer to rewrite would show up at the server's distance:
// no TTL trace can place it closer.)
//
// Router addresses come from a raw ICMP socket, which needs root or
// CAP_NET_RAW. Without it the trace still runs: IP_RECVERR makes each
// expired hello fail its connection at once, and the result says that the
// routers could not be seen.
//
// Run is the library call the CLI (mitmguard locate) and a campaign
// (probe --locate) share.
package locate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/check"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/verdict"
)

// Expired is the outcome of a hop whose ClientHello reached nothing that
// answers: a router sent time-exceeded, or nothing came back in time.
const Expired outcome.Outcome = "expired"

// DefaultMaxHops is how far a trace goes unless told (as traceroute).
const DefaultMaxHops = 30

// MaxTTL is the largest TTL an IP header holds.
const MaxTTL = 255

// DefaultTimeout bounds one attempt: connect, hello, answer.
const DefaultTimeout = 3 * time.Second

// Options configure a trace. Classifier or Judge is required.
type Options struct {
	Classifier *verdict.Classifier
	// Judge, when set, judges each answer's chain instead of Classifier: a
	// campaign (probe --locate) judges against the host's own chain, as
	// its records were judged, since the SNI is not the server's name.
	Judge func(ctx context.Context, c chain.Chain) (o outcome.Outcome, issuer string)
	// Connect, when set, is dialed (IP[:PORT]) instead of resolving the
	// name, which is still sent as SNI.
	Connect string
	// MaxHops is the highest TTL tried, 1..MaxTTL.
	MaxHops int
	// Timeout bounds each attempt (default DefaultTimeout).
	Timeout time.Duration
	// Resolver resolves names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// NoICMP does without the raw ICMP socket even when it could be opened
	// (router addresses are then unknown).
	NoICMP bool
	// ServerDistance, when the trace located interception, also measures
	// how many hops away the server's address is (ServerHops), with UDP
	// probes the interceptor lets by: the "hops before the server" of the
	// IMC 2020 study is ServerHops - FirstForgedHop.
	ServerDistance bool
}

// Hop is one attempt's answer.
type Hop struct {
	TTL     int             `json:"ttl"`
	Outcome outcome.Outcome `json:"outcome"`
	// Router sent time-exceeded for this TTL; null when none was seen.
	Router *string `json:"router"`
	// Issuer names the root or issuer of a chain that came back.
	Issuer string `json:"issuer,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Finding is what the trace concluded.
type Finding string

// The findings.
const (
	Located   Finding = "intercepted" // a forged chain came back at FirstForgedHop
	Clean     Finding = "clean"       // the server itself answered, no forgery before it
	Blocking  Finding = "blocked"     // reset or closed at BlockedAtHop, no forgery before it
	Unreached Finding = "unreached"   // nothing answered within MaxHops
)

// Result is a trace. Its JSON is the contract of `mitmguard locate --json`.
type Result struct {
	Target  string  `json:"target"`
	SNI     string  `json:"sni"`
	Address string  `json:"address"`
	Finding Finding `json:"finding"`
	// FirstForgedHop is the smallest TTL that drew a forged chain.
	FirstForgedHop *int `json:"first_forged_hop"`
	// LastCleanRouter sent time-exceeded at the TTL before it.
	LastCleanRouter *string `json:"last_clean_router"`
	// ServerHops is the TTL at which the server itself answered: where an
	// unforged answer came from. A transparent proxy that passes this name
	// untouched answers from its own hop, closer than the server. With
	// Options.ServerDistance, a located interception gets it too: the TTL
	// at which the server's address answered a UDP probe (a note says so).
	ServerHops *int `json:"server_hops"`
	// BlockedAtHop is the TTL at which the connection was reset or closed.
	BlockedAtHop *int `json:"blocked_at_hop"`
	// Outcome, Entry and Issuer judge the answer that ended the trace.
	Outcome outcome.Outcome   `json:"outcome"`
	Entry   *verdict.EntryRef `json:"entry,omitempty"`
	Issuer  string            `json:"issuer,omitempty"`
	// RoutersVisible is false when no raw ICMP socket could be opened;
	// Notes say what could not be seen and why.
	RoutersVisible bool     `json:"routers_visible"`
	Notes          []string `json:"notes,omitempty"`
	Message        string   `json:"message"`
	Hops           []Hop    `json:"hops"`
}

// InputError is a target or option that cannot be used.
type InputError struct {
	Input, Reason string
}

func (e *InputError) Error() string { return fmt.Sprintf("locate: %q: %s", e.Input, e.Reason) }

// ResolveError is a name that did not resolve.
type ResolveError struct {
	Name string
	Err  error
}

func (e *ResolveError) Error() string {
	return fmt.Sprintf("locate: cannot resolve %s: %v", e.Name, e.Err)
}
func (e *ResolveError) Unwrap() error { return e.Err }

// DialError is a connect, made at the full TTL, that failed: the trace
// cannot start (or go on) without it.
type DialError struct {
	Address string
	TTL     int
	Err     error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("locate: cannot connect to %s (attempt with TTL %d): %v", e.Address, e.TTL, e.Err)
}
func (e *DialError) Unwrap() error { return e.Err }

// Run traces target, NAME[:PORT]. It returns the result so far with an
// error when the trace could not finish (a failed connect, ctx ended).
func Run(ctx context.Context, target string, opts Options) (*Result, error) {
	if opts.Classifier == nil && opts.Judge == nil {
		return nil, errors.New("locate: no classifier")
	}
	if opts.MaxHops < 1 || opts.MaxHops > MaxTTL {
		return nil, &InputError{Input: fmt.Sprint(opts.MaxHops), Reason: fmt.Sprintf("--max-hops must be 1..%d", MaxTTL)}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	host, port, err := check.ParseTarget(target)
	if err != nil {
		var ie *check.InputError
		if errors.As(err, &ie) {
			return nil, &InputError{Input: ie.Input, Reason: ie.Reason}
		}
		return nil, err
	}
	dst, err := address(ctx, host, port, opts)
	if err != nil {
		return nil, err
	}
	r := &Result{Target: net.JoinHostPort(host, port), Address: dst.String(), Hops: []Hop{}}
	if net.ParseIP(host) == nil {
		r.SNI = host
	}
	t := &tracer{opts: opts, host: host, dst: dst, sni: r.SNI}
	if !opts.NoICMP {
		w, err := openICMP(dst)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("router addresses not seen: reading ICMP time-exceeded needs a raw socket, which needs root or CAP_NET_RAW (%v); each hop's expiry is still seen as its connection's own error (IP_RECVERR)", err))
		} else {
			defer w.close()
			t.icmp, r.RoutersVisible = w, true
		}
	} else {
		r.Notes = append(r.Notes, "router addresses not looked for (no raw ICMP socket asked for)")
	}
	for ttl := 1; ttl <= opts.MaxHops; ttl++ {
		hop, err := t.attempt(ctx, ttl)
		if err != nil {
			r.finish(opts.MaxHops)
			return r, err
		}
		r.Hops = append(r.Hops, hop)
		if hop.Outcome != Expired {
			if o := hop.Outcome; o.Intercepted() {
				r.Entry = t.entry
			}
			break
		}
	}
	r.finish(opts.MaxHops)
	if opts.ServerDistance && r.Finding == Located {
		d, err := serverDistance(ctx, dst.Addr(), *r.FirstForgedHop, opts.MaxHops, opts.Timeout)
		var de *DistanceError
		switch {
		case err == nil:
			r.ServerHops = &d
			r.Notes = append(r.Notes, fmt.Sprintf("server_hops %d: the TTL at which %s answered a UDP probe (port unreachable), which an interceptor of TLS lets by", d, dst.Addr()))
		case errors.As(err, &de):
			r.Notes = append(r.Notes, de.Error())
		default:
			return r, err
		}
	}
	return r, nil
}

// address is where to connect: --connect, or the name's first address.
func address(ctx context.Context, host, port string, opts Options) (netip.AddrPort, error) {
	p, err := netip.ParseAddrPort(net.JoinHostPort("0.0.0.0", port))
	if err != nil {
		return netip.AddrPort{}, &InputError{Input: port, Reason: "bad port"}
	}
	if c := opts.Connect; c != "" {
		if ap, err := netip.ParseAddrPort(c); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
		}
		a, err := netip.ParseAddr(strings.Trim(c, "[]"))
		if err != nil {
			return netip.AddrPort{}, &InputError{Input: c, Reason: "--connect wants IP or IP:PORT"}
		}
		return netip.AddrPortFrom(a.Unmap(), p.Port()), nil
	}
	a, err := check.Resolve(ctx, opts.Resolver, host)
	if err != nil {
		return netip.AddrPort{}, &ResolveError{Name: host, Err: err}
	}
	return netip.AddrPortFrom(a.Unmap(), p.Port()), nil
}

// tracer runs the attempts of one trace.
type tracer struct {
	opts  Options
	host  string
	sni   string
	dst   netip.AddrPort
	icmp  *icmpWatcher // nil: routers not seen
	entry *verdict.EntryRef
}

// expiredCause ends an attempt whose hello a router reported expired.
type expiredCause struct{ router netip.Addr }

func (e *expiredCause) Error() string { return "time-exceeded from " + e.router.String() }

// attempt connects at the full TTL and sends the hello with TTL ttl.
func (t *tracer) attempt(ctx context.Context, ttl int) (Hop, error) {
	hop := Hop{TTL: ttl}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wrapErr error
	stopWatch := func() {}
	wrap := func(c net.Conn) net.Conn {
		l, err := newLowTTLConn(c, ttl, t.icmp == nil)
		if err != nil {
			wrapErr = err
			cancel(err)
			return c
		}
		if t.icmp != nil {
			ch, stop := t.icmp.watch(uint16(c.LocalAddr().(*net.TCPAddr).Port))
			stopWatch = stop
			go func() {
				select {
				case router := <-ch:
					cancel(&expiredCause{router})
				case <-actx.Done():
				}
			}()
		}
		return l
	}
	pr := probe.Handshake(actx, probe.Target{Address: t.dst.String(), SNI: t.sni}, probe.Options{Timeout: t.opts.Timeout, Wrap: wrap})
	stopWatch()
	var ec *expiredCause
	switch {
	case wrapErr != nil:
		return hop, fmt.Errorf("locate: cannot set the TTL of the ClientHello: %w", wrapErr)
	case len(pr.Chain) > 0 && t.opts.Judge != nil: // an answer, whatever else went wrong after it
		hop.Outcome, hop.Issuer = t.opts.Judge(ctx, pr.Chain)
	case len(pr.Chain) > 0:
		v := t.opts.Classifier.Classify(ctx, pr.Chain, t.host)
		hop.Outcome, hop.Issuer, hop.Detail = v.Outcome, v.Issuer, v.Message
		t.entry = v.Entry
	case errors.As(context.Cause(actx), &ec):
		s := ec.router.String()
		hop.Outcome, hop.Router, hop.Detail = Expired, &s, "time-exceeded from "+s
	case ctx.Err() != nil:
		return hop, ctx.Err()
	case pr.Failure == outcome.ErrorDial:
		return hop, &DialError{Address: t.dst.String(), TTL: ttl, Err: pr.Err}
	case pr.Failure == outcome.BlockedTimeout:
		hop.Outcome, hop.Detail = Expired, "no answer before the timeout"
	case errors.Is(pr.Err, syscall.EHOSTUNREACH):
		hop.Outcome, hop.Detail = Expired, "time-exceeded (the router's address was not seen)"
	default:
		hop.Outcome, hop.Detail = pr.Failure, pr.Describe()
	}
	return hop, nil
}

// finish draws the conclusion from the hops.
func (r *Result) finish(maxHops int) {
	if len(r.Hops) == 0 {
		r.Finding, r.Message = Unreached, "no attempt was completed"
		return
	}
	last := r.Hops[len(r.Hops)-1]
	ttl := last.TTL
	r.Outcome, r.Issuer = last.Outcome, last.Issuer
	switch {
	case last.Outcome.Intercepted():
		r.Finding, r.FirstForgedHop = Located, &ttl
		before := "the path before it is unknown"
		if ttl > 1 {
			r.LastCleanRouter = r.Hops[ttl-2].Router
			before = fmt.Sprintf("past hop %d, whose router was not seen", ttl-1)
			if r.LastCleanRouter != nil {
				before = fmt.Sprintf("just past %s, the last clean router (hop %d)", *r.LastCleanRouter, ttl-1)
			}
		} else {
			before = "the first hop: on this host's own network"
		}
		r.Message = fmt.Sprintf("interception located: a forged chain (%s) first comes back at TTL %d, %s", last.Outcome, ttl, before)
	case last.Outcome.Blocked():
		r.Finding, r.BlockedAtHop = Blocking, &ttl
		r.Message = fmt.Sprintf("blocking at hop %d (%s), not interception: no forged chain came back before it", ttl, last.Outcome)
	case last.Outcome == Expired:
		r.Finding = Unreached
		r.Message = fmt.Sprintf("no answer within %d hops", len(r.Hops))
		if len(r.Hops) < maxHops {
			r.Message = fmt.Sprintf("the trace stopped after %d hops", len(r.Hops))
		}
	default:
		r.Finding, r.ServerHops = Clean, &ttl
		r.Message = fmt.Sprintf("no interception on this path: the server itself answered at TTL %d (%s)", ttl, last.Outcome)
	}
}
