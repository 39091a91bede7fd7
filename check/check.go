// Package check answers one person's question about one site: "is my
// connection to NAME being intercepted, and by whom?". It resolves the name
// (or dials the address it is told to), records the presented chain with
// package probe, and judges it with package verdict. The mitmguard check
// command is a shell over Run.
package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/verdict"
)

// Options configure a check. Classifier is required.
type Options struct {
	Classifier *verdict.Classifier
	// Connect, when set, is dialed instead of resolving the name; the name is
	// still sent as SNI (the "SNI X to host Y" test).
	Connect string
	// Timeout bounds the whole check: resolving, connecting, the handshake
	// and any issuer download. Zero means probe.DefaultTimeout: a server or
	// an issuer URL that never answers must not hold the check for ever,
	// whatever context the caller passes.
	Timeout time.Duration
	// Resolver resolves names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// FetchIssuers lets the check download an intermediate the server did
	// not send from the AIA URL its certificate names, to tell a server that
	// forgot it from a forger. The download is confined: http(s) on port 80
	// or 443, at most a few URLs, never to a loopback, private or reserved
	// address unless the target itself is at one. A failed download does
	// not clear suspicion (see package verdict).
	FetchIssuers bool

	// aiaAnyPort lets the issuer download use any port on loopback, for
	// tests whose AIA server listens on an ephemeral port.
	aiaAnyPort bool
}

// Report is the answer for one target. Its JSON is the contract of
// `mitmguard check --json`.
type Report struct {
	Target      string            `json:"target"`
	SNI         string            `json:"sni"`
	Address     string            `json:"address,omitempty"`
	Outcome     outcome.Outcome   `json:"outcome"`
	Entry       *verdict.EntryRef `json:"entry,omitempty"`
	Issuer      string            `json:"issuer,omitempty"`
	MatchedName string            `json:"matched_name,omitempty"`
	Trusted     bool              `json:"trusted_locally,omitempty"`
	Message     string            `json:"message"`
	Chain       []chain.Info      `json:"chain"`
	BuiltChain  []chain.Info      `json:"built_chain,omitempty"`
	TLSVersion  string            `json:"tls_version,omitempty"`
	CipherSuite string            `json:"cipher_suite,omitempty"`
	ALPN        string            `json:"alpn,omitempty"`
	DialMS      float64           `json:"dial_ms,omitempty"`
	HandshakeMS float64           `json:"handshake_ms,omitempty"`
	Time        time.Time         `json:"time"`
	Error       string            `json:"error,omitempty"`
}

// ParseTarget splits NAME[:PORT], [IPv6]:PORT, a bare IPv6 address or an
// https:// URL (its host and port; the path is ignored), with 443 as the
// default port.
func ParseTarget(s string) (host, port string, err error) {
	if s == "" {
		return "", "", &InputError{Input: s, Reason: "empty target"}
	}
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return "", "", &InputError{Input: s, Reason: "not a URL"}
		case u.Scheme != "https":
			return "", "", &InputError{Input: s, Reason: "only https:// URLs can be checked (or give NAME[:PORT])"}
		case u.User != nil:
			return "", "", &InputError{Input: s, Reason: "a URL with credentials: give the host only"}
		}
		hostport = u.Host
	}
	host, port, reason := splitHostPort(hostport, "443")
	if reason != "" {
		return "", "", &InputError{Input: s, Reason: reason}
	}
	return host, port, nil
}

// ParseConnect reads the --connect address, HOST[:PORT] or [IPv6]:PORT,
// with port as the default port.
func ParseConnect(s, port string) (string, error) {
	host, port, reason := splitHostPort(s, port)
	if reason != "" {
		return "", &InputError{Input: s, Reason: "--connect: " + reason}
	}
	return net.JoinHostPort(host, port), nil
}

// splitHostPort splits hostport with defPort as the default port, or says
// why it cannot. An IPv6 address must be whole: bracketed, or bare.
func splitHostPort(hostport, defPort string) (host, port, reason string) {
	host, port = hostport, defPort
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	} else if strings.ContainsAny(hostport, "[]") {
		return "", "", "unbalanced brackets: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT"
	} else if strings.Count(hostport, ":") == 1 {
		return "", "", "want NAME or NAME:PORT"
	}
	if strings.Contains(host, ":") || strings.HasPrefix(hostport, "[") && host != "" {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "", "", "not an IPv6 address"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", "port must be 1-65535"
	}
	if host == "" {
		return "", "", "empty host"
	}
	if strings.ContainsAny(host, " /\\@[]") {
		return "", "", "not a host name"
	}
	return host, port, ""
}

// InputError is a target or option that cannot be used.
type InputError struct {
	Input, Reason string
}

func (e *InputError) Error() string { return fmt.Sprintf("check: %q: %s", e.Input, e.Reason) }

// Run checks one target, NAME[:PORT]. It never panics on a network failure:
// every failure becomes an outcome in the report.
func Run(ctx context.Context, target string, opts Options) *Report {
	rep := &Report{Target: target, Time: time.Now().UTC(), Chain: []chain.Info{}}
	if opts.Timeout <= 0 {
		opts.Timeout = probe.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	host, port, err := ParseTarget(target)
	if err != nil {
		rep.Outcome, rep.Message, rep.Error = outcome.ErrorInput, err.Error(), err.Error()
		return rep
	}
	rep.Target = net.JoinHostPort(host, port)
	if net.ParseIP(host) == nil {
		rep.SNI = host
	}
	addr := opts.Connect
	if addr != "" {
		if addr, err = ParseConnect(addr, port); err != nil {
			rep.Outcome, rep.Message, rep.Error = outcome.ErrorInput, err.Error(), err.Error()
			return rep
		}
	} else {
		ip, err := Resolve(ctx, opts.Resolver, host)
		if err != nil {
			rep.Outcome, rep.Error = outcome.ErrorResolve, err.Error()
			rep.Message = fmt.Sprintf("cannot resolve %s: %v", host, err)
			return rep
		}
		addr = net.JoinHostPort(ip.String(), port)
	}
	rep.Address = addr
	pr := probe.Handshake(ctx, probe.Target{Address: addr, SNI: rep.SNI}, probe.Options{Timeout: opts.Timeout})
	rep.Chain = pr.Chain.Infos()
	rep.TLSVersion, rep.CipherSuite, rep.ALPN = pr.TLSVersion, pr.CipherSuite, pr.ALPN
	rep.DialMS, rep.HandshakeMS = ms(pr.Dial), ms(pr.Handshake)
	if pr.Failure != "" {
		rep.Outcome, rep.Message, rep.Error = pr.Failure, pr.Describe(), pr.Err.Error()
		return rep
	}
	cl := opts.Classifier
	if opts.FetchIssuers {
		ip, _ := netip.ParseAddrPort(addr)
		cl = cl.WithFetcher(newAIAFetcher(ip.Addr(), opts.aiaAnyPort).fetch)
	}
	v := cl.Classify(ctx, pr.Chain, host)
	rep.judged(v)
	return rep
}

// judged fills the report from a verdict.
func (rep *Report) judged(v *verdict.Result) {
	rep.Outcome, rep.Entry, rep.Issuer, rep.Trusted, rep.Message = v.Outcome, v.Entry, v.Issuer, v.TrustedLocally, v.Message
	rep.MatchedName = v.MatchedName
	rep.BuiltChain = v.BuiltInfos()
	if v.Err != nil && v.Outcome != outcome.OK {
		rep.Error = v.Err.Error()
	}
}

// FromChain judges a chain read from a file, offline, for name.
func FromChain(ctx context.Context, c chain.Chain, name string, cl *verdict.Classifier) *Report {
	rep := &Report{Target: name, SNI: name, Time: time.Now().UTC(), Chain: c.Infos()}
	rep.judged(cl.WithFetcher(nil).Classify(ctx, c, name))
	return rep
}

// Resolve is the address to connect to for host: host itself when it is
// an IP literal, else its first address from r (nil: net.DefaultResolver).
// A name that does not exist is reported as "no such host". check and
// locate both dial what it returns.
func Resolve(ctx context.Context, r *net.Resolver, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return netip.Addr{}, errors.New("no such host")
		}
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, errors.New("no addresses")
	}
	return addrs[0], nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
