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
	Timeout time.Duration
	// Resolver resolves names; nil means net.DefaultResolver.
	Resolver *net.Resolver
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

// ParseTarget splits NAME[:PORT] (or [IPv6]:PORT) with 443 as the default
// port.
func ParseTarget(s string) (host, port string, err error) {
	if s == "" {
		return "", "", &InputError{Input: s, Reason: "empty target"}
	}
	host, port = s, "443"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.Count(s, ":") == 1 {
		return "", "", &InputError{Input: s, Reason: "want NAME or NAME:PORT"}
	}
	host = strings.Trim(host, "[]")
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", &InputError{Input: s, Reason: "port must be 1-65535"}
	}
	if host == "" || strings.ContainsAny(host, " /\\@") {
		return "", "", &InputError{Input: s, Reason: "not a host name"}
	}
	return host, port, nil
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
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), port)
		}
	} else {
		ip, err := resolve(ctx, opts.Resolver, host)
		if err != nil {
			rep.Outcome, rep.Error = outcome.ErrorResolve, err.Error()
			rep.Message = fmt.Sprintf("cannot resolve %s: %v", host, err)
			return rep
		}
		addr = net.JoinHostPort(ip, port)
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
	v := opts.Classifier.Classify(ctx, pr.Chain, host)
	rep.Outcome, rep.Entry, rep.Issuer, rep.Trusted, rep.Message = v.Outcome, v.Entry, v.Issuer, v.TrustedLocally, v.Message
	rep.BuiltChain = v.BuiltInfos()
	if v.Err != nil && v.Outcome != outcome.OK {
		rep.Error = v.Err.Error()
	}
	return rep
}

// FromChain judges a chain read from a file, offline, for name.
func FromChain(ctx context.Context, c chain.Chain, name string, cl *verdict.Classifier) *Report {
	v := cl.Classify(ctx, c, name)
	rep := &Report{
		Target: name, SNI: name, Time: time.Now().UTC(), Chain: c.Infos(),
		Outcome: v.Outcome, Entry: v.Entry, Issuer: v.Issuer, Trusted: v.TrustedLocally, Message: v.Message,
		BuiltChain: v.BuiltInfos(),
	}
	if v.Err != nil && v.Outcome != outcome.OK {
		rep.Error = v.Err.Error()
	}
	return rep
}

func resolve(ctx context.Context, r *net.Resolver, host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return host, nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupHost(ctx, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return "", fmt.Errorf("no such host")
		}
		return "", err
	}
	if len(addrs) == 0 {
		return "", errors.New("no addresses")
	}
	return addrs[0], nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
