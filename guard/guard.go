// Package guard gives any Go program the protection browsers give their
// users: a TLS connection whose chain runs through a key on mitmguard's
// blocklist is refused, even when the device's trust store trusts it.
//
// Chrome, Firefox, Safari and Edge refused Kazakhstan's "Qaznet Trust
// Network" root in August 2019 although users had been told to install it;
// every other program on those devices (curl, package managers, Go
// programs) kept trusting it. A Go program that builds its TLS configuration
// with Config, Transport or Client does not.
//
// The check runs in tls.Config.VerifyConnection, after the normal
// verification, so it sees the chains crypto/x509 built (with the root that
// the server did not send) and also runs on resumed sessions. A refused
// connection fails with an *InterceptionError that carries the blocklist
// entry and an explanation fit to show a person.
package guard

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/update/active"
)

// Options configure the guard. The zero value uses the installed list, as
// every mitmguard command does (see Blocklist).
type Options struct {
	// Blocklist is the list of blocked keys; nil means the list in force on
	// this machine (active.List: the list mitmguard update installed, over
	// the embedded one), so that a program built with the guard refuses a
	// root listed after it was compiled. It is ignored when Policy is set.
	Blocklist *blocklist.List
	// Policy, if set, holds the list in force: every handshake reads it
	// anew, so a list swapped in with Policy.Update applies to the next
	// handshake of every config built with it, without a restart.
	Policy *Policy
	// OnIntercept, if set, is called with every refusal (to log it, count
	// it, or tell the user) before the handshake fails.
	OnIntercept func(*InterceptionError)
}

// policy returns the policy the options enforce: Policy, or a fixed one.
func (o Options) policy() *Policy {
	if o.Policy != nil {
		return o.Policy
	}
	return NewPolicy(o.list())
}

func (o Options) list() *blocklist.List {
	if o.Policy != nil {
		return o.Policy.List()
	}
	if o.Blocklist != nil {
		return o.Blocklist
	}
	return active.List()
}

// Config returns a copy of base (a new config when nil) that performs base's
// verification and then refuses any chain through a blocked key. A
// VerifyConnection callback already in base runs first.
func Config(base *tls.Config, opts Options) *tls.Config {
	var cfg *tls.Config
	if base == nil {
		cfg = &tls.Config{}
	} else {
		cfg = base.Clone()
	}
	policy := opts.policy()
	prev := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if prev != nil {
			if err := prev(cs); err != nil {
				return err
			}
		}
		// Check returns a typed pointer: compare it before it becomes an error.
		if ie := Check(policy.List(), cs); ie != nil {
			if opts.OnIntercept != nil {
				opts.OnIntercept(ie)
			}
			return ie
		}
		return nil
	}
	return cfg
}

// Check refuses a connection state whose presented or verified chains run
// through a blocked key. It is the guard's whole decision, exported for
// programs that verify connections their own way (QUIC stacks, custom
// dialers). It returns nil or an *InterceptionError.
func Check(list *blocklist.List, cs tls.ConnectionState) *InterceptionError {
	for _, ch := range cs.VerifiedChains {
		if m := list.MatchX509(ch); m != nil {
			return newError(cs.ServerName, m, ch)
		}
	}
	if m := list.MatchX509(cs.PeerCertificates); m != nil {
		return newError(cs.ServerName, m, cs.PeerCertificates)
	}
	return nil
}

// Transport returns a copy of base (http.DefaultTransport's settings when
// nil) whose TLS configuration is guarded.
func Transport(base *http.Transport, opts Options) *http.Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	t := base.Clone()
	t.TLSClientConfig = Config(t.TLSClientConfig, opts)
	return t
}

// Client returns an *http.Client whose connections are guarded.
func Client(opts Options) *http.Client {
	return &http.Client{Transport: Transport(nil, opts)}
}

// InterceptionError is returned when a chain runs through a blocked key.
type InterceptionError struct {
	// Host is the server name the client asked for.
	Host string
	// Entry is the blocklist entry the chain runs through.
	Entry *blocklist.Entry
	// Completed is true when the blocked root was not sent by the server
	// but found as the signer of a certificate that was.
	Completed bool
	// Chain is the chain in which the blocked key was found, leaf first.
	Chain []*x509.Certificate
}

func newError(host string, m *blocklist.Match, ch []*x509.Certificate) *InterceptionError {
	return &InterceptionError{Host: host, Entry: m.Entry, Completed: m.Completed, Chain: ch}
}

func (e *InterceptionError) Error() string {
	return fmt.Sprintf("guard: your connection to %s is being monitored: its certificate chains to %q (%s), a certificate known to be used for interception, which is not trusted",
		e.host(), e.Entry.Name, e.Entry.ID)
}

func (e *InterceptionError) host() string {
	if e.Host == "" {
		return "the server"
	}
	return e.Host
}

// Advice is the explanation to show a person, in the spirit of the page
// browsers show for ERR_CERT_KNOWN_INTERCEPTION_BLOCKED.
func (e *InterceptionError) Advice() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Your connection to %s is being monitored.\n\n", e.host())
	fmt.Fprintf(&b, "A certificate that you or someone else installed on this device, %q, is known to be used to intercept and read encrypted traffic", e.Entry.Name)
	if e.Entry.Country != "" {
		fmt.Fprintf(&b, " (%s, %s, first seen %s)", e.Entry.Country, e.Entry.Kind, e.Entry.FirstSeen)
	}
	b.WriteString(". It is not trusted, so the connection was stopped before anything was sent.\n\n")
	b.WriteString("What you can do:\n")
	for _, a := range blocklist.Advice() {
		b.WriteString("  - " + a + "\n")
	}
	return b.String()
}
