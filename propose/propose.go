// Package propose turns a campaign's evidence into proposed blocklist
// entries: the issuers that forge certificates for many unrelated public
// domains across many hosts, with chains that end outside the public roots.
// It is the first step of the loop that took weeks of bug reports in 2019,
// 2020 and 2024 (a new Kazakh root noticed, reviewed, shipped): a campaign
// sees the forger, a proposal names its key with the evidence a maintainer
// reviews, blocklist merge and repo publish ship it.
//
// The key proposed is the root the forged chains lead to, looked up among
// every certificate the campaign saw: real boxes differ per deployment, some
// send the root and others only the intermediate under it (the 2020 box),
// and a block of the root covers every intermediate it signs and a trust
// store that holds only the root, as the browsers' blocks did. Only when no
// host ever sent the root is the key that signed the forged leaves proposed.
//
// A proposal is never a public root, never a key seen on one host only, and
// never an issuer of a host's own certificate (a self-hosted CA that signs
// its own names): those are the false positives that would break sites for
// every client of the list.
package propose

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
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
	// may be hostile, and a campaign repeats a forger's few chains. One
	// host may bring at most 1/hostShare of them: a hostile host sending
	// fresh certificates on every name spends its share, not the
	// campaign's, and its records beyond are left out (Result.Skipped).
	maxCerts  = 1 << 16
	hostShare = 16
	// maxSameName bounds the certificates kept per subject name to look
	// issuers up among (besides the tops of forged chains, which are always
	// kept), maxPath the certificates followed up from a forged chain's
	// top, and maxChecks the signatures checked in look-ups: a hostile host
	// may send many certificates under one name to make the look-up cost a
	// signature check each. Look-ups go from the chains seen on most hosts
	// down, each trying the forged chains' tops seen on most hosts first,
	// so a flood from a few hosts costs the others first. A chain whose
	// look-up is cut short is attributed to its top's key, as when the root
	// is never sent: a proposal may be missed, never wrong.
	maxSameName = 8
	maxPath     = 8
	maxChecks   = 1 << 14
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

	maxCerts int // maxCerts when 0; tests set less
}

// Proposal is one key proposed for the blocklist, with its evidence. The key
// is the root the forged chains lead to when any host sent it, as a
// browser's block names the national root and not the intermediate one box
// sends; else the key of the highest certificate the forgers sent (then
// RootSent is false and the reasons say "root not sent").
type Proposal struct {
	// SPKISHA256 is the hex SHA-256 of the proposed key's SubjectPublicKeyInfo.
	SPKISHA256 string `json:"spki_sha256"`
	// Subject of the proposed key's certificate; Issuer is the name of the
	// key above it (itself for a root; the root's name when it was never
	// sent).
	Subject    string `json:"subject"`
	Issuer     string `json:"issuer"`
	SelfSigned bool   `json:"self_signed"`
	// RootSent reports that the proposed certificate is a self-signed root
	// that at least one host sent.
	RootSent bool `json:"root_sent"`
	// CertSHA256 and Certificate (PEM) are the proposed key's certificate as seen.
	CertSHA256  string `json:"cert_sha256"`
	Certificate string `json:"certificate"`
	// Intermediates are the certificates under the proposed key that signed
	// the forged leaves, such as the "Security Certificate".
	Intermediates []Intermediate `json:"intermediates,omitempty"`
	Hosts         []string       `json:"hosts"`
	Domains       []string       `json:"domains"`
	Vantages      []string       `json:"vantage_points"`
	FirstSeen     time.Time      `json:"first_seen"`
	LastSeen      time.Time      `json:"last_seen"`
	Records       int            `json:"records"`
	// Traits counts the forger's traits on the forged certificates.
	Traits     map[string]int `json:"traits,omitempty"`
	Confidence string         `json:"confidence"` // "high" or "medium"
	Reasons    []string       `json:"reasons"`
	Examples   []Example      `json:"examples"`

	x509 *x509.Certificate
}

// Intermediate is a certificate between the forged leaves and the proposed key.
type Intermediate struct {
	SPKISHA256  string `json:"spki_sha256"`
	Subject     string `json:"subject"`
	CertSHA256  string `json:"cert_sha256"`
	Certificate string `json:"certificate"`
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
	// Skipped counts the suspected records left out because their host, or
	// the campaign, sent more distinct certificates than Find reads.
	Skipped int `json:"skipped_records,omitempty"`
}

// Rejected is an issuer seen on suspected records and not proposed.
type Rejected struct {
	SPKISHA256 string `json:"spki_sha256"`
	Subject    string `json:"subject"`
	Reason     string `json:"reason"`
}

// errOverBudget is a certificate not read: its host, or the campaign, has
// brought as many as Find reads.
var errOverBudget = errors.New("propose: certificate budget spent")

// evidence is what the suspected records say about one key.
type evidence struct {
	hosts    map[string][]chain.Hash // each host's control chain
	domains  map[string]bool
	vantages map[string]bool
	records  int
	first    time.Time
	last     time.Time
	traits   map[string]int
	examples []Example
}

func newEvidence() *evidence {
	return &evidence{hosts: map[string][]chain.Hash{}, domains: map[string]bool{}, vantages: map[string]bool{}, traits: map[string]int{}}
}

func (e *evidence) add(r measure.Record, ctl measure.Control, ch chain.Chain) {
	if _, ok := e.hosts[r.Host]; !ok {
		e.hosts[r.Host] = ctl.Chain
	}
	e.domains[strings.ToLower(r.SNI)], e.vantages[r.Vantage] = true, true
	e.records++
	if e.first.IsZero() || r.Time.Before(e.first) {
		e.first = r.Time.UTC()
	}
	if r.Time.After(e.last) {
		e.last = r.Time.UTC()
	}
	for _, t := range r.Traits {
		e.traits[t]++
	}
	if len(e.examples) < MaxExamples && !e.hasExample(r.Host) {
		ex := Example{Vantage: r.Vantage, Host: r.Host, SNI: r.SNI, Time: r.Time.UTC()}
		var pemText strings.Builder
		for _, cert := range ch {
			ex.Chain = append(ex.Chain, cert.SHA256.String())
			pemText.WriteString(cert.PEM())
		}
		ex.PEM = pemText.String()
		e.examples = append(e.examples, ex)
	}
}

func (e *evidence) hasExample(host string) bool {
	return slices.ContainsFunc(e.examples, func(ex Example) bool { return ex.Host == host })
}

// merge adds o's evidence to e's: hosts and domains once, examples of hosts
// e has none of.
func (e *evidence) merge(o *evidence) {
	for h, ctl := range o.hosts {
		if _, ok := e.hosts[h]; !ok {
			e.hosts[h] = ctl
		}
	}
	maps.Copy(e.domains, o.domains)
	maps.Copy(e.vantages, o.vantages)
	e.records += o.records
	if e.first.IsZero() || !o.first.IsZero() && o.first.Before(e.first) {
		e.first = o.first
	}
	if o.last.After(e.last) {
		e.last = o.last
	}
	for t, n := range o.traits {
		e.traits[t] += n
	}
	for _, ex := range o.examples {
		if len(e.examples) < MaxExamples && !e.hasExample(ex.Host) {
			e.examples = append(e.examples, ex)
		}
	}
}

// candidate is the evidence of the chains whose top is one key.
type candidate struct {
	top    *chain.Cert
	ev     *evidence
	public bool // the chain verifies to a public root
}

// group is the candidates attributed to one proposed key: path runs from
// each candidate's top up to that key.
type group struct {
	key      *chain.Cert
	rootSent bool
	members  []*candidate
	paths    [][]*chain.Cert
}

// finder reads a campaign's certificates once each.
type finder struct {
	ctx   context.Context
	st    store.Store
	certs map[chain.Hash]*chain.Cert // nil: stored but unparseable
	// byName indexes the certificates sent above a leaf, in any record or
	// control, by subject; tops the tops of forged chains, seen on most
	// hosts first: where a forged chain's issuer is looked up.
	byName, tops map[string][]*chain.Cert
	seen         map[chain.Hash]bool // indexed (or unparseable)
	checks       int                 // signature checks left for look-ups
	// verified remembers signature checks of a certificate by another: a
	// campaign repeats the same few chains on every host and name, and a
	// hostile host may send a long chain whose every link verifies.
	verified map[[2]chain.Hash]bool
	sigs     int // signature checks done, for tests
	// max bounds certs, and max/hostShare the certificates each host
	// brings (perHost).
	max     int
	perHost map[string]int
}

// maxVerified bounds the signature checks remembered.
const maxVerified = 1 << 18

// signs reports whether parent's key verifies child's signature (and
// parent may issue certificates), checking each pair once.
func (f *finder) signs(parent, child *chain.Cert) bool {
	k := [2]chain.Hash{parent.SHA256, child.SHA256}
	if ok, done := f.verified[k]; done {
		return ok
	}
	f.sigs++
	ok := child.X509.CheckSignatureFrom(parent.X509) == nil
	if f.verified == nil {
		f.verified = map[[2]chain.Hash]bool{}
	}
	if len(f.verified) < maxVerified {
		f.verified[k] = ok
	}
	return ok
}

// cert returns the parsed certificate, nil when it does not parse; a
// certificate not read yet counts against host's share (errOverBudget).
func (f *finder) cert(h chain.Hash, host string) (*chain.Cert, error) {
	if cert, ok := f.certs[h]; ok {
		return cert, nil
	}
	if len(f.certs) >= f.max || f.perHost[host] >= max(1, f.max/hostShare) {
		return nil, errOverBudget
	}
	f.perHost[host]++
	der, err := f.st.Cert(f.ctx, h)
	if err != nil {
		return nil, err
	}
	cert, err := chain.NewCert(der)
	if err != nil || cert.X509 == nil {
		cert = nil // unparseable: stored, but no evidence
	}
	f.certs[h] = cert
	return cert, nil
}

// load returns the chain, nil when a certificate of it does not parse.
func (f *finder) load(hs []chain.Hash, host string) (chain.Chain, error) {
	out := make(chain.Chain, 0, len(hs))
	for _, h := range hs {
		cert, err := f.cert(h, host)
		if cert == nil || err != nil {
			return nil, err
		}
		out = append(out, cert)
	}
	return out, nil
}

// see indexes the certificates a chain carries above its leaf, up to
// host's share.
func (f *finder) see(hs []chain.Hash, host string) error {
	for _, h := range hs[min(1, len(hs)):] {
		if f.seen[h] {
			continue // a campaign repeats a few chains: once each
		}
		cert, err := f.cert(h, host)
		if errors.Is(err, errOverBudget) {
			return nil
		}
		if err != nil {
			return err
		}
		f.seen[h] = true
		if cert != nil {
			f.index(cert)
		}
	}
	return nil
}

// index adds cert to the certificates issuers are looked up among (one per
// name and key, at most maxSameName per name).
func (f *finder) index(cert *chain.Cert) {
	name := string(cert.RawSubject)
	if same := f.byName[name]; len(same) < maxSameName && !slices.ContainsFunc(same, func(c *chain.Cert) bool { return c.SPKI == cert.SPKI }) {
		f.byName[name] = append(same, cert)
	}
}

// path follows issuers up from top among the certificates the campaign
// saw, and returns top and every issuer found, up to a self-signed root. A
// certificate is the issuer when its subject is the issuer name, its key id
// is the authority key id (when both are set) and the signature verifies
// under its key: a hostile host can send a certificate with any name, not
// one whose key verifies a signature it did not make.
func (f *finder) path(top *chain.Cert) []*chain.Cert {
	path := []*chain.Cert{top}
	for len(path) < maxPath {
		cur := path[len(path)-1]
		if selfSigned(cur) {
			break
		}
		next := f.issuer(cur, path)
		if next == nil {
			break
		}
		path = append(path, next)
	}
	return path
}

// issuer returns the certificate, not on path, whose key signed cur: among
// the forged chains' tops, then the other certificates seen.
func (f *finder) issuer(cur *chain.Cert, path []*chain.Cert) *chain.Cert {
	tops := f.tops[string(cur.RawIssuer)]
	for i, bucket := range [][]*chain.Cert{tops, f.byName[string(cur.RawIssuer)]} {
		for _, c := range bucket {
			same := func(p *chain.Cert) bool { return p.SPKI == c.SPKI }
			if slices.ContainsFunc(path, same) || i > 0 && slices.ContainsFunc(tops, same) {
				continue
			}
			if aki, ski := cur.X509.AuthorityKeyId, c.X509.SubjectKeyId; len(aki) > 0 && len(ski) > 0 && !bytes.Equal(aki, ski) {
				continue
			}
			if f.checks <= 0 {
				return nil
			}
			f.checks--
			if f.signs(c, cur) {
				return c
			}
		}
	}
	return nil
}

// selfSigned reports whether c names itself as issuer and its own key
// verifies its signature: a root.
func selfSigned(c *chain.Cert) bool {
	return c.SelfIssued() && c.X509.CheckSignature(c.X509.SignatureAlgorithm, c.X509.RawTBSCertificate, c.X509.Signature) == nil
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
	f := &finder{ctx: ctx, st: st, certs: map[chain.Hash]*chain.Cert{}, byName: map[string][]*chain.Cert{}, tops: map[string][]*chain.Cert{}, seen: map[chain.Hash]bool{}, checks: maxChecks,
		max: cmp.Or(opts.maxCerts, maxCerts), perHost: map[string]int{}}
	skipped := 0
	cands := map[chain.Hash]*candidate{}
	var order []chain.Hash
	err = st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		// Every chain of the campaign may carry the root a forged chain
		// leads to: some boxes send it, for some hosts or names only.
		if err := f.see(r.Chain, r.Host); err != nil {
			return err
		}
		if err := f.see(ctl.Chain, ctl.Host); err != nil {
			return err
		}
		if r.Outcome != outcome.Suspected {
			return nil // known keys are listed already; others are not forgeries
		}
		ch, err := f.load(r.Chain, r.Host)
		if errors.Is(err, errOverBudget) {
			skipped++
			return nil
		}
		if err != nil || len(ch) < 2 {
			return err // a leaf alone does not show the issuing key
		}
		top := f.issuingTop(ch)
		if top == 0 {
			return nil
		}
		cd := cands[ch[top].SPKI]
		if cd == nil {
			cd = &candidate{top: ch[top], ev: newEvidence(), public: verifiesToPublic(ch[:top+1], opts.Public)}
			cands[ch[top].SPKI] = cd
			order = append(order, ch[top].SPKI)
		}
		cd.ev.add(r, ctl, ch)
		return nil
	})
	if err != nil {
		return nil, err
	}
	groups, err := f.group(cands, order)
	if err != nil {
		return nil, err
	}
	res := &Result{Campaign: c.ID, Proposals: []*Proposal{}, Skipped: skipped}
	for _, g := range groups {
		p, why, err := f.propose(g, opts)
		if err != nil {
			return nil, err
		}
		if why != "" {
			res.Rejected = append(res.Rejected, Rejected{SPKISHA256: g.key.SPKI.String(), Subject: g.key.Subject(), Reason: why})
			continue
		}
		res.Proposals = append(res.Proposals, p)
	}
	slices.SortStableFunc(res.Proposals, func(a, b *Proposal) int { return len(b.Hosts)*len(b.Domains) - len(a.Hosts)*len(a.Domains) })
	return res, nil
}

// group attributes each candidate to the highest key its top leads to among
// the campaign's certificates, the candidates seen on most hosts first.
func (f *finder) group(cands map[chain.Hash]*candidate, order []chain.Hash) ([]*group, error) {
	order = slices.Clone(order)
	slices.SortStableFunc(order, func(a, b chain.Hash) int { return len(cands[b].ev.hosts) - len(cands[a].ev.hosts) })
	for _, k := range order {
		top := cands[k].top
		f.tops[string(top.RawSubject)] = append(f.tops[string(top.RawSubject)], top)
	}
	byKey := map[chain.Hash]*group{}
	var groups []*group
	for _, k := range order {
		if err := f.ctx.Err(); err != nil {
			return nil, err
		}
		cd := cands[k]
		path := f.path(cd.top)
		key := path[len(path)-1]
		g := byKey[key.SPKI]
		if g == nil {
			g = &group{key: key, rootSent: selfSigned(key)}
			byKey[key.SPKI] = g
			groups = append(groups, g)
		}
		g.members, g.paths = append(g.members, cd), append(g.paths, path)
	}
	return groups, nil
}

// propose judges a group: its proposal, or why it is not proposed.
func (f *finder) propose(g *group, opts Options) (*Proposal, string, error) {
	ev := newEvidence()
	public := roots.IsMozilla(g.key.SPKI)
	for i, cd := range g.members {
		ev.merge(cd.ev)
		path := g.paths[i]
		public = public || cd.public || slices.ContainsFunc(path, func(c *chain.Cert) bool { return roots.IsMozilla(c.SPKI) }) || verifiesToPublic(path, opts.Public)
	}
	if public {
		return nil, "a public root, or chains to one", nil
	}
	// A key that signed a host's own certificate, or a certificate above
	// it, is that host's own CA (the names it signs are its own), whether
	// the chains above show it as the root or as an intermediate. A
	// self-hosted CA is own on the hosts it appears on; a forger forges on
	// many hosts, and any one of them (a hostile host, or one whose control
	// connection also crossed the box) may show it in its own chain: the
	// key is rejected when its own hosts are not outnumbered by at least
	// MinHosts hosts where it only forges.
	own := map[string]bool{}
	for i, cd := range g.members {
		for host, hs := range cd.ev.hosts {
			ctl, err := f.load(hs, host)
			if err != nil && !errors.Is(err, errOverBudget) {
				return nil, "", err
			}
			if f.holdsKey(ctl, g.paths[i]) {
				own[host] = true
			}
		}
	}
	forges := len(ev.hosts) - len(own)
	switch {
	case len(own) > 0 && (forges < opts.MinHosts || forges <= len(own)):
		return nil, fmt.Sprintf("issues the own certificate of %d host(s): a self-hosted CA", len(own)), nil
	case len(ev.hosts) < opts.MinHosts:
		return nil, fmt.Sprintf("seen on %d host(s), fewer than %d", len(ev.hosts), opts.MinHosts), nil
	case len(ev.domains) < opts.MinDomains:
		return nil, fmt.Sprintf("forges %d domain(s), fewer than %d", len(ev.domains), opts.MinDomains), nil
	}
	k := g.key
	p := &Proposal{
		SPKISHA256: k.SPKI.String(), Subject: k.Subject(), Issuer: k.Issuer(), SelfSigned: k.SelfIssued(), RootSent: g.rootSent,
		CertSHA256: k.SHA256.String(), Certificate: k.PEM(), x509: k.X509,
		Hosts: sortedKeys(ev.hosts), Domains: sortedKeys(ev.domains), Vantages: sortedKeys(ev.vantages),
		FirstSeen: ev.first, LastSeen: ev.last, Records: ev.records, Traits: ev.traits, Examples: ev.examples,
	}
	sentBy := map[string]bool{}
	for i, cd := range g.members {
		path := g.paths[i]
		if len(path) == 1 {
			for h := range cd.ev.hosts {
				sentBy[h] = true
			}
		}
		for _, c := range path[:len(path)-1] {
			if !slices.ContainsFunc(p.Intermediates, func(in Intermediate) bool { return in.CertSHA256 == c.SHA256.String() }) {
				p.Intermediates = append(p.Intermediates, Intermediate{SPKISHA256: c.SPKI.String(), Subject: c.Subject(), CertSHA256: c.SHA256.String(), Certificate: c.PEM()})
			}
		}
	}
	p.Reasons = []string{fmt.Sprintf("forged certificates for %d domains on %d hosts (thresholds %d and %d)", len(p.Domains), len(p.Hosts), opts.MinDomains, opts.MinHosts)}
	if g.rootSent {
		why := fmt.Sprintf("the forged chains lead to the root %s, sent by %d of the %d hosts", p.Subject, len(sentBy), len(p.Hosts))
		if len(sentBy) < len(p.Hosts) {
			why += "; the chains without it end at certificates its key signed"
		}
		p.Reasons = append(p.Reasons, why)
	} else {
		p.Reasons = append(p.Reasons, fmt.Sprintf("root not sent: the forged chains end at %s, issued by %s, which no host sent; this is the highest key seen", p.Subject, p.Issuer))
	}
	p.Reasons = append(p.Reasons, "the forged chains end outside the public roots")
	if len(own) == 0 {
		p.Reasons = append(p.Reasons, "the key issues none of the hosts' own certificates")
	} else {
		p.Reasons = append(p.Reasons, fmt.Sprintf("the own chains of %d host(s) lead to the key too, against %d hosts where it only forges: review them", len(own), forges))
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
	return p, "", nil
}

// issuingTop returns the index of the highest certificate of ch reached by
// following signatures up from the leaf (0 when the leaf's issuer was not
// sent). A certificate the forger sent that did not sign the one below is
// not evidence of anything.
func (f *finder) issuingTop(ch chain.Chain) int {
	top := 0
	for i := 1; i < len(ch); i++ {
		if !f.signs(ch[i], ch[i-1]) {
			break
		}
		top = i
	}
	return top
}

// verifiesToPublic reports whether the chain (a certificate up to its
// issuers) verifies to a public root, whatever the leaf's names.
func verifiesToPublic(ch []*chain.Cert, public *x509.CertPool) bool {
	inter := x509.NewCertPool()
	for _, c := range ch[1:] {
		inter.AddCert(c.X509)
	}
	_, err := ch[0].X509.Verify(x509.VerifyOptions{Roots: public, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: ch[0].X509.NotBefore.Add(time.Second)})
	return err == nil
}

// holdsKey reports whether a key on path (a forged chain's top up to the
// proposed key) signed the host's own (control) leaf or a certificate above
// it on the path the signatures follow: then the names the key signs are
// its own host's, a self-hosted CA, not a forger (a forger copies
// certificates that another key issued, as the lab's middlebox and the 2019
// box did). A certificate merely sent in the control chain is no evidence:
// any host can send the national root's certificate after its own leaf.
func (f *finder) holdsKey(ctl chain.Chain, path []*chain.Cert) bool {
	if len(ctl) == 0 {
		return false
	}
	for _, c := range ctl[:f.issuingTop(ctl)+1] {
		for _, issuer := range path {
			if f.signs(issuer, c) {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
