// Package report turns a measurement store into answers: which domains are
// intercepted, on how many hosts and by which root; which hosts intercept;
// the share of hosts intercepted per domain and per network; outcomes over
// time across campaigns; the traits of the forged certificates. It writes
// them for a terminal, as JSON, as CSV files, and as one self-contained HTML
// file with charts that needs no network to view.
package report

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// Report is the aggregate of one campaign, plus the timeline of all the
// campaigns in the store.
type Report struct {
	Campaign  string                  `json:"campaign"`
	Started   time.Time               `json:"started"`
	Hosts     int                     `json:"hosts"`
	Records   int                     `json:"records"`
	Outcomes  map[outcome.Outcome]int `json:"outcomes"`
	Domains   []Domain                `json:"domains"`
	Intercept []Host                  `json:"intercepting_hosts"`
	Networks  []Network               `json:"networks"`
	Timeline  []Point                 `json:"timeline"`
	Traits    []Trait                 `json:"forgery_traits"`
	// Vantages is the share intercepted per vantage point; Divergent the
	// pairs intercepted from one vantage point and clean from another.
	Vantages  []Vantage    `json:"vantages"`
	Divergent []Divergence `json:"vantage_divergent"`
	// Locations say where interception starts per host, and
	// HopsBeforeServer is their histogram, from probe --locate's traces;
	// both are left out for a campaign without traces.
	Locations        []Location `json:"locations,omitempty"`
	HopsBeforeServer []HopCount `json:"hops_before_server,omitempty"`
}

// Domain is one test SNI across the hosts.
type Domain struct {
	Domain      string   `json:"domain"`
	Hosts       int      `json:"hosts"` // hosts that gave a judgeable answer (not error.*)
	Intercepted int      `json:"intercepted"`
	Blocked     int      `json:"blocked"`
	Share       float64  `json:"intercepted_share"`
	Issuers     []string `json:"issuers,omitempty"`
}

// Host is a host that intercepted at least one domain.
type Host struct {
	Host    string   `json:"host"`
	Domains []string `json:"domains"`
	Issuers []string `json:"issuers"`
	Known   []string `json:"known_entries,omitempty"`
}

// Network is a /24 (IPv4) or /48 (IPv6) and how many of its hosts intercept.
type Network struct {
	Network      string  `json:"network"`
	Hosts        int     `json:"hosts"`
	Intercepting int     `json:"intercepting"`
	Share        float64 `json:"intercepting_share"`
}

// Point is one campaign on the timeline.
type Point struct {
	Campaign    string    `json:"campaign"`
	Started     time.Time `json:"started"`
	Records     int       `json:"records"`
	Intercepted int       `json:"intercepted"`
	Blocked     int       `json:"blocked"`
	Share       float64   `json:"intercepted_share"`
}

// Trait is a forgery trait and how many intercepted records showed it.
type Trait struct {
	Trait string `json:"trait"`
	Count int    `json:"count"`
}

// Build aggregates a campaign (the newest for "").
func Build(ctx context.Context, st store.Store, campaign string) (*Report, error) {
	c, err := st.Campaign(ctx, campaign)
	if err != nil {
		return nil, err
	}
	r := &Report{Campaign: c.ID, Started: c.Started, Outcomes: map[outcome.Outcome]int{}}
	domains := map[string]*Domain{}
	domainIssuers := map[string]map[string]bool{}
	hosts := map[string]*Host{}
	seenHost := map[string]bool{}
	traits := map[string]int{}
	vants := newVantages()
	err = st.Records(ctx, c, func(rec measure.Record, _ measure.Control) error {
		vants.add(rec)
		r.Records++
		r.Outcomes[rec.Outcome]++
		if !seenHost[rec.Host] {
			seenHost[rec.Host] = true
			r.Hosts++
		}
		d := domains[rec.SNI]
		if d == nil {
			d = &Domain{Domain: rec.SNI}
			domains[rec.SNI] = d
			domainIssuers[rec.SNI] = map[string]bool{}
		}
		if rec.Outcome.Stage() != "error" {
			d.Hosts++
		}
		if rec.Outcome.Blocked() {
			d.Blocked++
		}
		if !rec.Outcome.Intercepted() {
			return nil
		}
		d.Intercepted++
		if rec.Issuer != "" {
			domainIssuers[rec.SNI][rec.Issuer] = true
		}
		h := hosts[rec.Host]
		if h == nil {
			h = &Host{Host: rec.Host}
			hosts[rec.Host] = h
		}
		h.Domains = append(h.Domains, rec.SNI)
		if rec.Issuer != "" && !slices.Contains(h.Issuers, rec.Issuer) {
			h.Issuers = append(h.Issuers, rec.Issuer)
		}
		if id := rec.Outcome.Detail(); id != "" && !slices.Contains(h.Known, id) {
			h.Known = append(h.Known, id)
		}
		for _, t := range rec.Traits {
			traits[t]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.Vantages, r.Divergent, err = vants.finish(ctx, st, c); err != nil {
		return nil, err
	}
	if r.Locations, r.HopsBeforeServer, err = locations(ctx, st, c); err != nil {
		return nil, err
	}
	for name, d := range domains {
		if d.Hosts > 0 {
			d.Share = float64(d.Intercepted) / float64(d.Hosts)
		}
		for is := range domainIssuers[name] {
			d.Issuers = append(d.Issuers, is)
		}
		sort.Strings(d.Issuers)
		r.Domains = append(r.Domains, *d)
	}
	sort.Slice(r.Domains, func(i, j int) bool {
		a, b := r.Domains[i], r.Domains[j]
		if a.Share != b.Share {
			return a.Share > b.Share
		}
		return a.Domain < b.Domain
	})
	for _, h := range hosts {
		r.Intercept = append(r.Intercept, *h)
	}
	sort.Slice(r.Intercept, func(i, j int) bool { return r.Intercept[i].Host < r.Intercept[j].Host })
	r.Networks = networks(seenHost, hosts)
	for t, n := range traits {
		r.Traits = append(r.Traits, Trait{t, n})
	}
	sort.Slice(r.Traits, func(i, j int) bool {
		if r.Traits[i].Count != r.Traits[j].Count {
			return r.Traits[i].Count > r.Traits[j].Count
		}
		return r.Traits[i].Trait < r.Traits[j].Trait
	})
	r.Timeline, err = timeline(ctx, st)
	return r, err
}

// networks groups hosts by /24 or /48.
func networks(all map[string]bool, intercepting map[string]*Host) []Network {
	byNet := map[string]*Network{}
	for h := range all {
		ap, err := netip.ParseAddrPort(h)
		if err != nil {
			continue
		}
		bits := 24
		if ap.Addr().Is6() {
			bits = 48
		}
		p, _ := ap.Addr().Prefix(bits)
		n := byNet[p.String()]
		if n == nil {
			n = &Network{Network: p.String()}
			byNet[p.String()] = n
		}
		n.Hosts++
		if intercepting[h] != nil {
			n.Intercepting++
		}
	}
	var out []Network
	for _, n := range byNet {
		n.Share = float64(n.Intercepting) / float64(n.Hosts)
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Share != out[j].Share {
			return out[i].Share > out[j].Share
		}
		return out[i].Network < out[j].Network
	})
	return out
}

// timeline summarises every campaign in the store, oldest first.
func timeline(ctx context.Context, st store.Store) ([]Point, error) {
	cs, err := st.Campaigns(ctx)
	if err != nil {
		return nil, err
	}
	var out []Point
	for _, c := range cs {
		p := Point{Campaign: c.ID, Started: c.Started}
		counts, err := st.OutcomeCounts(ctx, c)
		if err != nil {
			return nil, err
		}
		for o, n := range counts {
			p.Records += n
			if o.Intercepted() {
				p.Intercepted += n
			}
			if o.Blocked() {
				p.Blocked += n
			}
		}
		if p.Records > 0 {
			p.Share = float64(p.Intercepted) / float64(p.Records)
		}
		out = append(out, p)
	}
	return out, nil
}

// InterceptedDomains lists the domains intercepted on at least one host.
func (r *Report) InterceptedDomains() []string {
	var out []string
	for _, d := range r.Domains {
		if d.Intercepted > 0 {
			out = append(out, d.Domain)
		}
	}
	sort.Strings(out)
	return out
}

func join(ss []string) string { return strings.Join(ss, "; ") }
