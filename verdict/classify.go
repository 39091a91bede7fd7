package verdict

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/roots"
)

// Options configure a Classifier. The zero value classifies offline against
// the Mozilla roots and the embedded blocklist, at the current time.
type Options struct {
	// ExtraRoots are treated as public roots in addition to the Mozilla set.
	ExtraRoots []*x509.Certificate
	// LocalRoots are the roots this device trusts (nil: none). They never make
	// a chain ok; a chain that verifies only to one of them is evidence that a
	// root was installed locally, and the verdict names it.
	LocalRoots *x509.CertPool
	// Blocklist is the list of blocked keys; nil means blocklist.Embedded().
	Blocklist *blocklist.List
	// Time is when to verify; zero means now.
	Time time.Time
	// FetchIssuer fetches an issuer certificate from an AIA URL. Nil means
	// offline: a chain missing its intermediate is then judged as sent.
	FetchIssuer func(ctx context.Context, url string) (*x509.Certificate, error)
}

// A Classifier judges chains. It is safe for concurrent use.
type Classifier struct {
	opts   Options
	public *x509.CertPool
	list   *blocklist.List
}

// New returns a classifier for the options.
func New(opts Options) *Classifier {
	c := &Classifier{opts: opts, public: roots.Public(opts.ExtraRoots...), list: opts.Blocklist}
	if c.list == nil {
		c.list = blocklist.Embedded()
	}
	return c
}

// WithFetcher returns a classifier like c that fetches missing issuers with
// fetch (nil: offline). A caller that judges each target under its own
// download policy (package check) makes one per target; the copy is cheap.
func (c *Classifier) WithFetcher(fetch func(ctx context.Context, url string) (*x509.Certificate, error)) *Classifier {
	cc := *c
	cc.opts.FetchIssuer = fetch
	return &cc
}

// Blocklist returns the list the classifier matches against.
func (c *Classifier) Blocklist() *blocklist.List { return c.list }

// maxAIAFetches bounds the issuers fetched for one chain, and MaxAIAURLs
// the AIA URLs tried for it in all: the URLs are the forger's to choose, and
// each one tried costs time out of the check's one deadline.
const (
	maxAIAFetches = 3
	MaxAIAURLs    = 4
)

// Classify judges a presented chain (leaf first) for serverName. An empty
// serverName skips the name checks. The result always carries the presented
// chain.
func (c *Classifier) Classify(ctx context.Context, presented chain.Chain, serverName string) *Result {
	r := &Result{Presented: presented}
	if len(presented) == 0 {
		r.Outcome, r.Message = outcome.Invalid, "the server sent no certificate"
		return r
	}
	if m := c.list.Match(presented); m != nil {
		return c.known(r, m, serverName)
	}
	leaf := presented[0].X509
	if leaf == nil {
		r.Outcome, r.Err = outcome.Invalid, presented[0].ParseErr
		r.Message = fmt.Sprintf("the server's certificate cannot be parsed: %v", presented[0].ParseErr)
		return r
	}
	now := c.opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	inter := x509.NewCertPool()
	for _, x := range presented.Parsed() {
		inter.AddCert(x)
	}
	parsed := presented.Parsed()
	v := verifier{leaf: leaf, top: parsed[len(parsed)-1], inter: inter, name: serverName, now: now}

	chains, err := v.verify(c.public, serverName, now)
	if err == nil {
		return c.verified(r, chains[0], serverName)
	}
	r.Err = err
	// Judge authority apart from name and time: a chain to a public root is
	// not interception even when it is expired or for another name.
	authErr := v.authority(c.public)
	for i := 0; authErr != nil && isUnknownAuthority(authErr) && c.opts.FetchIssuer != nil && i < maxAIAFetches; i++ {
		if !c.fetchIssuer(ctx, &v, r) {
			break
		}
		authErr = v.authority(c.public)
		if authErr == nil {
			if chains, err := v.verify(c.public, serverName, now); err == nil {
				return c.verified(r, chains[0], serverName)
			}
		}
	}
	if authErr == nil {
		return c.publicButBroken(r, &v)
	}
	return c.notPublic(r, &v, authErr)
}

// known reports a chain through a blocked key.
func (c *Classifier) known(r *Result, m *blocklist.Match, name string) *Result {
	r.Outcome, r.Entry = outcome.Known(m.Entry.ID), refOf(m)
	r.Built = r.Presented.Parsed()
	if m.Completed {
		r.Built = append(r.Built[:m.Index+1:m.Index+1], m.Entry.Cert().X509)
	}
	r.Issuer = m.Entry.Name
	host := name
	if host == "" {
		host = "this server"
	}
	how := "presents a certificate with"
	if m.Completed {
		how = "presents a certificate signed by"
	}
	r.Message = fmt.Sprintf("the connection to %s is intercepted: it %s the key of %q (%s), a root known to be used for interception",
		host, how, m.Entry.Name, m.Entry.ID)
	return r
}

// verified reports a chain that verified to a public root, unless the built
// chain runs through a blocked key (a blocked root added as an extra root).
func (c *Classifier) verified(r *Result, built []*x509.Certificate, name string) *Result {
	if m := c.list.MatchX509(built); m != nil {
		res := c.known(r, m, name)
		res.Built = built
		return res
	}
	r.Outcome, r.Built, r.Err = outcome.OK, built, nil
	r.MatchedName = matchedName(built[0], name)
	r.Issuer = chain.NameString(built[len(built)-1].RawSubject)
	r.Message = "the chain verifies to the public root " + quoteName(built[len(built)-1])
	if r.FetchedIssuers > 0 {
		r.Message += fmt.Sprintf("; the server did not send %d intermediate(s), fetched from the leaf's AIA URL (a server misconfiguration, not interception)", r.FetchedIssuers)
	}
	return r
}

// publicButBroken reports a chain to a public root that failed on name or time.
func (c *Classifier) publicButBroken(r *Result, v *verifier) *Result {
	if built, err := v.verify(c.public, "", v.midpoint()); err == nil {
		r.Built = built[0]
		r.Issuer = chain.NameString(built[0][len(built[0])-1].RawSubject)
	}
	var hostErr x509.HostnameError
	var invErr x509.CertificateInvalidError
	switch {
	case v.name != "" && v.leaf.VerifyHostname(v.name) != nil:
		r.Outcome = outcome.InvalidHostname
		r.Message = fmt.Sprintf("the chain is public but the certificate is not valid for %s (it is for %s)", v.name, certNames(v.leaf))
	case errors.As(r.Err, &invErr) && invErr.Reason == x509.Expired:
		r.Outcome = outcome.Expired
		r.Message = fmt.Sprintf("the chain is public but not valid at %s: %s", v.now.UTC().Format(time.RFC3339), invErr.Detail)
	case errors.As(r.Err, &hostErr):
		r.Outcome, r.Message = outcome.InvalidHostname, hostErr.Error()
	default:
		r.Outcome, r.Message = outcome.Invalid, "the chain is public but does not verify: "+r.Err.Error()
	}
	return r
}

// notPublic reports a chain that does not verify to a public root.
func (c *Classifier) notPublic(r *Result, v *verifier, authErr error) *Result {
	r.Err = authErr
	top := r.Presented[len(r.Presented)-1]
	r.Issuer = top.Issuer()
	if c.opts.LocalRoots != nil {
		if built, err := v.verify(c.opts.LocalRoots, "", v.midpoint()); err == nil {
			if m := c.list.MatchX509(built[0]); m != nil {
				res := c.known(r, m, v.name)
				res.Built, res.TrustedLocally = built[0], true
				return res
			}
			r.Built, r.TrustedLocally = built[0], true
			r.Issuer = chain.NameString(built[0][len(built[0])-1].RawSubject)
		}
	}
	validForName := v.name != "" && v.leaf.VerifyHostname(v.name) == nil
	switch {
	case validForName && IsPublicName(v.name):
		r.Outcome = outcome.Suspected
		unfetched, missing := v.issuerUnfetched()
		switch {
		case r.TrustedLocally:
			r.Message = fmt.Sprintf("the certificate for %s chains to %q, a root this device trusts that no public root program does: a locally installed root is intercepting this connection",
				v.name, r.Issuer)
		case missing:
			// A server that forgot its intermediate looks the same, but
			// the download that would tell them apart is the forger's to
			// block: a failed fetch must not clear suspicion.
			r.Err = unfetched
			r.Message = fmt.Sprintf("the certificate for %s is issued by %q, which the server did not send and which could not be fetched from %s (%v): the connection may be intercepted (a server that forgot its intermediate looks the same; check from another network to tell them apart)",
				v.name, r.Issuer, unfetched.URL, unfetched.Err)
		default:
			r.Message = fmt.Sprintf("the certificate for %s chains up to %q, which is not a public root: the connection is likely intercepted",
				v.name, r.Issuer)
		}
	case isUnknownAuthority(authErr):
		r.Outcome = outcome.UnknownAuthority
		r.Message = fmt.Sprintf("the certificate is issued by %q, which is not a public root", r.Issuer)
		if v.name != "" && !validForName {
			r.Message += fmt.Sprintf(", and it is not valid for %s (it is for %s)", v.name, certNames(v.leaf))
		} else if v.name != "" {
			r.Message += fmt.Sprintf("; %s is not a public name, so a private CA is expected there", v.name)
		}
	default:
		r.Outcome = outcome.Invalid
		r.Message = "the chain does not verify: " + authErr.Error()
	}
	return r
}

// fetchIssuer follows the AIA URLs of the last certificate in the
// verifier's chain and adds the first issuer that signed it. It reports
// whether one was added; a failure is kept in v.aiaErr.
func (c *Classifier) fetchIssuer(ctx context.Context, v *verifier, r *Result) bool {
	last := v.top
	if len(v.fetched) > 0 {
		last = v.fetched[len(v.fetched)-1]
	}
	for _, url := range last.IssuingCertificateURL {
		if v.aiaTried == MaxAIAURLs {
			if v.aiaErr == nil {
				v.aiaErr = &IssuerUnavailableError{URL: url, Err: fmt.Errorf("not tried: %d AIA URLs were tried for this chain already", MaxAIAURLs)}
			}
			return false
		}
		v.aiaTried++
		x, err := c.opts.FetchIssuer(ctx, url)
		if err != nil {
			v.aiaErr = &IssuerUnavailableError{URL: url, Err: err}
			continue
		}
		v.aiaAnswered = true
		if x.CheckSignature(last.SignatureAlgorithm, last.RawTBSCertificate, last.Signature) != nil {
			// The issuer named by the certificate's own AIA URL did not
			// sign it: a forger that copied the extension.
			v.aiaErr = &IssuerUnavailableError{URL: url, Err: errors.New("the certificate served there did not sign this one")}
			continue
		}
		v.inter.AddCert(x)
		v.fetched = append(v.fetched, x)
		r.FetchedIssuers++
		return true
	}
	return false
}

// ErrOffline is the reason an issuer was not fetched when the classifier
// has no fetcher.
var ErrOffline = errors.New("not fetched: offline")

// IssuerUnavailableError says that the issuer of a chain was not sent and
// could not be had from the AIA URL the chain names. It never clears
// suspicion: the on-path forger decides whether that download succeeds.
type IssuerUnavailableError struct {
	URL string // the AIA URL named by the certificate
	Err error  // why it gave no issuer; ErrOffline when not tried
}

func (e *IssuerUnavailableError) Error() string {
	return fmt.Sprintf("issuer not sent and not fetched from %s: %v", e.URL, e.Err)
}

func (e *IssuerUnavailableError) Unwrap() error { return e.Err }

// verifier runs crypto/x509 verification of one leaf with varying roots,
// name and time.
type verifier struct {
	leaf    *x509.Certificate
	top     *x509.Certificate // the last certificate the server sent
	inter   *x509.CertPool
	name    string
	now     time.Time
	fetched []*x509.Certificate
	// aiaAnswered is true when an AIA URL gave a certificate.
	aiaAnswered bool
	// aiaTried counts the AIA URLs tried; aiaErr is the last failure.
	aiaTried int
	aiaErr   error
}

// issuerUnfetched reports a chain whose top certificate points to its issuer
// by AIA but whose issuer could not be had (offline, or the fetch failed),
// and why.
func (v *verifier) issuerUnfetched() (*IssuerUnavailableError, bool) {
	if len(v.top.IssuingCertificateURL) == 0 || v.aiaAnswered || len(v.fetched) > 0 {
		return nil, false
	}
	var ie *IssuerUnavailableError
	if !errors.As(v.aiaErr, &ie) {
		ie = &IssuerUnavailableError{URL: v.top.IssuingCertificateURL[0], Err: ErrOffline}
	}
	return ie, true
}

func (v *verifier) verify(roots *x509.CertPool, name string, at time.Time) ([][]*x509.Certificate, error) {
	return v.leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: v.inter, DNSName: name, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// authority verifies the chain with the name and time neutralised, so the
// error left is about who issued it.
func (v *verifier) authority(roots *x509.CertPool) error {
	_, err := v.verify(roots, "", v.midpoint())
	return err
}

// midpoint is a time inside the leaf's validity, or now when now is inside it.
func (v *verifier) midpoint() time.Time {
	if v.now.After(v.leaf.NotBefore) && v.now.Before(v.leaf.NotAfter) {
		return v.now
	}
	return v.leaf.NotBefore.Add(v.leaf.NotAfter.Sub(v.leaf.NotBefore) / 2)
}

// matchedName returns the name of the certificate (a DNS name, wildcard or
// not, or an IP address) that made it valid for host, or "" when host is "".
// crypto/x509 decides the match, one name at a time, so the name shown is
// the one verification accepted.
func matchedName(leaf *x509.Certificate, host string) string {
	if host == "" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil {
		for _, a := range leaf.IPAddresses {
			if a.Equal(ip) {
				return a.String()
			}
		}
		return ""
	}
	for _, n := range leaf.DNSNames {
		if (&x509.Certificate{DNSNames: []string{n}}).VerifyHostname(host) == nil {
			return n
		}
	}
	return ""
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func quoteName(c *x509.Certificate) string { return fmt.Sprintf("%q", chain.NameString(c.RawSubject)) }

func certNames(c *x509.Certificate) string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	switch len(names) {
	case 0:
		return "no name"
	case 1, 2, 3:
		return fmt.Sprint(names)
	}
	return fmt.Sprintf("%v and %d more", names[:3], len(names)-3)
}
