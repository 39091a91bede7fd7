// Package propose turns a campaign's evidence into proposed blocklist
// entries: the issuers that forge certificates for many unrelated public
// domains across many hosts, with chains that end outside the public roots.
// It is the first step of the loop that took weeks of bug reports in 2019,
// 2020 and 2024 (a new Kazakh root noticed, reviewed, shipped): a campaign
// sees the forger, a proposal names its key with the evidence a maintainer
// reviews, blocklist merge and repo publish ship it.
//
// A proposal is never a public root, never a key seen on one host only, and
// never an issuer of a host's own certificate (a self-hosted CA that signs
// its own names): those are the false positives that would break sites for
// every client of the list.
package propose

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/roots"
	"github.com/mitmguard/mitmguard/store"
)

// Defaults of Options.
const (
	DefaultMinHosts   = 2
	DefaultMinDomains = 3
	// MaxExamples bounds the example chains a proposal carries.
	MaxExamples = 3
	// maxCerts bounds the certificates read from the store: the database
	// may be hostile, and a campaign repeats a forger's few chains.
	maxCerts = 1 << 16
)

// Options configure Find.
type Options struct {
	// MinHosts and MinDomains are the fewest hosts and distinct domains an
	// issuer must forge on to be proposed (0 means the default). MinHosts
	// is never below 2: a key seen on one host only is never proposed.
	MinHosts, MinDomains int
	// Public are the roots a proposal never names nor chains to; nil means
	// the Mozilla set (roots.Public()).
	Public *x509.CertPool
}

// Proposal is one issuer key proposed for the blocklist, with its evidence.
type Proposal struct {
	// SPKISHA256 is the hex SHA-256 of the issuing key's SubjectPublicKeyInfo.
	SPKISHA256 string `json:"spki_sha256"`
	// Subject of the issuing certificate; Issuer is the name of the key
	// above it (the root, when the forger never sent it).
	Subject    string `json:"subject"`
	Issuer     string `json:"issuer"`
	SelfSigned bool   `json:"self_signed"`
	// CertSHA256 and Certificate (PEM) are the issuing certificate as seen.
	CertSHA256  string    `json:"cert_sha256"`
	Certificate string    `json:"certificate"`
	Hosts       []string  `json:"hosts"`
	Domains     []string  `json:"domains"`
	Vantages    []string  `json:"vantage_points"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Records     int       `json:"records"`
	// Traits counts the forger's traits on the forged certificates.
	Traits     map[string]int `json:"traits,omitempty"`
	Confidence string         `json:"confidence"` // "high" or "medium"
	Reasons    []string       `json:"reasons"`
	Examples   []Example      `json:"examples"`

	x509 *x509.Certificate
}

// Example is one forged chain as a record saw it.
type Example struct {
	Vantage string    `json:"vantage"`
	Host    string    `json:"host"`
	SNI     string    `json:"sni"`
	Time    time.Time `json:"time"`
	Chain   []string  `json:"chain_sha256"`
	PEM     string    `json:"pem"`
}

// Result is what Find found in a campaign.
type Result struct {
	Campaign  string      `json:"campaign"`
	Proposals []*Proposal `json:"proposals"`
	// Rejected are issuers of interception-like records that were not
	// proposed, each with why (for the reviewer).
	Rejected []Rejected `json:"rejected,omitempty"`
}

// Rejected is an issuer seen on suspected records and not proposed.
type Rejected struct {
	SPKISHA256 string `json:"spki_sha256"`
	Subject    string `json:"subject"`
	Reason     string `json:"reason"`
}

// TooManyCertsError is a campaign whose records refer to more distinct
// certificates than Find reads.
type TooManyCertsError struct{ Max int }

func (e *TooManyCertsError) Error() string {
	return fmt.Sprintf("propose: the campaign refers to more than %d certificates", e.Max)
}

// candidate gathers one issuer key's evidence while the records stream.
type candidate struct {
	p        *Proposal
	hosts    map[string]bool
	domains  map[string]bool
	vantages map[string]bool
	ownHosts map[string]bool // hosts whose control chain holds this key
	public   bool
}

// Find reads the campaign (id; "" for the newest) and returns its proposals,
// strongest first.
func Find(ctx context.Context, st store.Store, id string, opts Options) (*Result, error) {
	if opts.MinHosts < DefaultMinHosts {
		opts.MinHosts = DefaultMinHosts
	}
	if opts.MinDomains <= 0 {
		opts.MinDomains = DefaultMinDomains
	}
	if opts.Public == nil {
		opts.Public = roots.Public()
	}
	c, err := st.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	certs := map[chain.Hash]*chain.Cert{}
	load := func(hs []chain.Hash) (chain.Chain, error) {
		out := make(chain.Chain, 0, len(hs))
		for _, h := range hs {
			cert, ok := certs[h]
			if !ok {
				if len(certs) >= maxCerts {
					return nil, &TooManyCertsError{Max: maxCerts}
				}
				der, err := st.Cert(ctx, h)
				if err != nil {
					return nil, err
				}
				if cert, err = chain.NewCert(der); err != nil {
					cert = nil // unparseable: stored, but no evidence
				}
				certs[h] = cert
			}
			if cert == nil || cert.X509 == nil {
				return nil, nil
			}
			out = append(out, cert)
		}
		return out, nil
	}
	cands := map[chain.Hash]*candidate{}
	var order []chain.Hash
	err = st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		if r.Outcome != outcome.Suspected {
			return nil // known keys are listed already; others are not forgeries
		}
		ch, err := load(r.Chain)
		if err != nil || len(ch) < 2 {
			return err // a leaf alone does not show the issuing key
		}
		top := issuingTop(ch)
		if top == 0 {
			return nil
		}
		issuer := ch[top]
		cd := cands[issuer.SPKI]
		if cd == nil {
			cd = &candidate{
				p: &Proposal{
					SPKISHA256: issuer.SPKI.String(), Subject: issuer.Subject(), Issuer: issuer.Issuer(),
					SelfSigned: issuer.SelfIssued(), CertSHA256: issuer.SHA256.String(), Certificate: issuer.PEM(),
					Traits: map[string]int{}, x509: issuer.X509,
				},
				hosts: map[string]bool{}, domains: map[string]bool{}, vantages: map[string]bool{}, ownHosts: map[string]bool{},
				public: roots.IsMozilla(issuer.SPKI) || verifiesToPublic(ch[:top+1], opts.Public),
			}
			cands[issuer.SPKI] = cd
			order = append(order, issuer.SPKI)
		}
		if !cd.hosts[r.Host] { // a host's control once per issuer, not per record
			ctlChain, err := load(ctl.Chain)
			if err != nil {
				return err
			}
			if holdsKey(ctlChain, issuer) {
				cd.ownHosts[r.Host] = true
			}
		}
		p := cd.p
		cd.hosts[r.Host], cd.domains[strings.ToLower(r.SNI)], cd.vantages[r.Vantage] = true, true, true
		p.Records++
		if p.FirstSeen.IsZero() || r.Time.Before(p.FirstSeen) {
			p.FirstSeen = r.Time.UTC()
		}
		if r.Time.After(p.LastSeen) {
			p.LastSeen = r.Time.UTC()
		}
		for _, t := range r.Traits {
			p.Traits[t]++
		}
		if len(p.Examples) < MaxExamples && !slices.ContainsFunc(p.Examples, func(e Example) bool { return e.Host == r.Host }) {
			ex := Example{Vantage: r.Vantage, Host: r.Host, SNI: r.SNI, Time: r.Time.UTC()}
			var pemText strings.Builder
			for _, cert := range ch {
				ex.Chain = append(ex.Chain, cert.SHA256.String())
				pemText.WriteString(cert.PEM())
			}
			ex.PEM = pemText.String()
			p.Examples = append(p.Examples, ex)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &Result{Campaign: c.ID, Proposals: []*Proposal{}}
	for _, k := range order {
		cd := cands[k]
		if why := cd.reject(opts); why != "" {
			res.Rejected = append(res.Rejected, Rejected{SPKISHA256: cd.p.SPKISHA256, Subject: cd.p.Subject, Reason: why})
			continue
		}
		cd.finish(opts)
		res.Proposals = append(res.Proposals, cd.p)
	}
	slices.SortStableFunc(res.Proposals, func(a, b *Proposal) int { return len(b.Hosts)*len(b.Domains) - len(a.Hosts)*len(a.Domains) })
	return res, nil
}

// issuingTop returns the index of the highest certificate of ch reached by
// following signatures up from the leaf (0 when the leaf's issuer was not
// sent): the key a proposal names. A certificate the forger sent that did
// not sign the one below is not evidence of anything.
func issuingTop(ch chain.Chain) int {
	top := 0
	for i := 1; i < len(ch); i++ {
		if ch[i-1].X509.CheckSignatureFrom(ch[i].X509) != nil {
			break
		}
		top = i
	}
	return top
}

// verifiesToPublic reports whether the chain (leaf up to the issuer) verifies
// to a public root, whatever the leaf's names.
func verifiesToPublic(ch chain.Chain, public *x509.CertPool) bool {
	inter := x509.NewCertPool()
	for _, c := range ch[1:] {
		inter.AddCert(c.X509)
	}
	_, err := ch[0].X509.Verify(x509.VerifyOptions{Roots: public, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: ch[0].X509.NotBefore.Add(time.Second)})
	return err == nil
}

// holdsKey reports whether the host's own (control) chain carries the
// issuer's key or was signed by it: then the names the key signs are its
// own host's, a self-hosted CA, not a forger (a forger copies certificates
// that another key issued, as the lab's middlebox and the 2019 box did).
func holdsKey(ctl chain.Chain, issuer *chain.Cert) bool {
	for _, c := range ctl {
		if c.SPKI == issuer.SPKI || c.X509.CheckSignatureFrom(issuer.X509) == nil {
			return true
		}
	}
	return false
}

func (cd *candidate) reject(opts Options) string {
	switch {
	case cd.public:
		return "a public root, or chains to one"
	case len(cd.ownHosts) > 0:
		return fmt.Sprintf("issues the own certificate of %d host(s): a self-hosted CA", len(cd.ownHosts))
	case len(cd.hosts) < opts.MinHosts:
		return fmt.Sprintf("seen on %d host(s), fewer than %d", len(cd.hosts), opts.MinHosts)
	case len(cd.domains) < opts.MinDomains:
		return fmt.Sprintf("forges %d domain(s), fewer than %d", len(cd.domains), opts.MinDomains)
	}
	return ""
}

func (cd *candidate) finish(opts Options) {
	p := cd.p
	p.Hosts, p.Domains, p.Vantages = sortedKeys(cd.hosts), sortedKeys(cd.domains), sortedKeys(cd.vantages)
	p.Reasons = []string{
		fmt.Sprintf("forged certificates for %d domains on %d hosts (thresholds %d and %d)", len(p.Domains), len(p.Hosts), opts.MinDomains, opts.MinHosts),
		"the forged chains end outside the public roots (issuer: " + p.Issuer + ")",
		"the key issues none of the hosts' own certificates",
	}
	score := 0
	if len(p.Hosts) >= 2*opts.MinHosts {
		score++
	}
	if len(p.Domains) >= 2*opts.MinDomains {
		score++
	}
	if len(p.Traits) > 0 {
		score++
		p.Reasons = append(p.Reasons, "the forged certificates carry the forger's traits: "+strings.Join(sortedKeys(p.Traits), ", "))
	}
	if len(p.Vantages) > 1 {
		score++
		p.Reasons = append(p.Reasons, fmt.Sprintf("seen from %d vantage points", len(p.Vantages)))
	}
	p.Confidence = "medium"
	if score >= 2 {
		p.Confidence = "high"
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
