package report

import (
	"context"
	"slices"
	"sort"
	"strconv"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// Vantage is what one vantage point saw of the campaign: interception
// depends on where one stands (in 2019 the same hosts looked 7% intercepted
// from North America and 24% from inside Kazakhstan), so the report puts
// vantage points side by side.
type Vantage struct {
	Vantage string `json:"vantage"`
	// ASN and Country are what the vantage point's operator declared
	// (probe or worker --vantage-asn, --vantage-country), left out when
	// not declared.
	ASN          uint32  `json:"asn,omitempty"`
	Country      string  `json:"country,omitempty"`
	Hosts        int     `json:"hosts"`
	Intercepting int     `json:"intercepting_hosts"` // hosts intercepting at least one domain
	HostShare    float64 `json:"intercepting_share"` // Intercepting / Hosts
	Records      int     `json:"records"`
	Judged       int     `json:"judged"` // records with an answer (not error.*)
	Intercepted  int     `json:"intercepted"`
	Share        float64 `json:"intercepted_share"` // Intercepted / Judged
}

// asn is the declared ASN as operators write it (AS9198), or none when
// not declared.
func (v Vantage) asn(none string) string {
	if v.ASN == 0 {
		return none
	}
	return "AS" + strconv.FormatUint(uint64(v.ASN), 10)
}

// Divergence is a (host, SNI) pair intercepted from some vantage points and
// clean (outcome ok) from others: the interception sits on the path, not at
// the host.
type Divergence struct {
	Host            string   `json:"host"`
	SNI             string   `json:"sni"`
	InterceptedFrom []string `json:"intercepted_from"`
	CleanFrom       []string `json:"clean_from"`
}

type pairKey struct{ host, sni string }

// vantages accumulates the per-vantage table from records in the store's
// (vantage, host, SNI) order, and remembers the intercepted pairs (few,
// next to all pairs) so that a second pass can find the clean side.
type vantages struct {
	byName   map[string]*Vantage
	last     *Vantage
	lastHost string
	hostMITM bool // the current host intercepted from the current vantage
	mitm     map[pairKey]*Divergence
}

func newVantages() *vantages {
	return &vantages{byName: map[string]*Vantage{}, mitm: map[pairKey]*Divergence{}}
}

func (v *vantages) add(rec measure.Record) {
	name := rec.Vantage
	if name == "" {
		name = measure.DefaultVantage
	}
	if v.last == nil || v.last.Vantage != name {
		v.last = v.byName[name]
		if v.last == nil {
			v.last = &Vantage{Vantage: name}
			v.byName[name] = v.last
		}
		v.lastHost = "\x00" // no host yet from this vantage
	}
	x := v.last
	if rec.Host != v.lastHost {
		v.lastHost, v.hostMITM = rec.Host, false
		x.Hosts++
	}
	x.Records++
	if rec.Outcome.Stage() != "error" {
		x.Judged++
	}
	if !rec.Outcome.Intercepted() {
		return
	}
	x.Intercepted++
	if !v.hostMITM {
		v.hostMITM = true
		x.Intercepting++
	}
	k := pairKey{rec.Host, rec.SNI}
	d := v.mitm[k]
	if d == nil {
		d = &Divergence{Host: rec.Host, SNI: rec.SNI}
		v.mitm[k] = d
	}
	if !slices.Contains(d.InterceptedFrom, name) {
		d.InterceptedFrom = append(d.InterceptedFrom, name)
	}
}

// finish returns the table and, with more than one vantage point, reads
// the campaign again for the clean side of the intercepted pairs.
func (v *vantages) finish(ctx context.Context, st store.Store, c *store.Campaign) ([]Vantage, []Divergence, error) {
	declared, err := store.VantageMap(ctx, st, c)
	if err != nil {
		return nil, nil, err
	}
	table := []Vantage{}
	for _, x := range v.byName {
		x.ASN, x.Country = declared[x.Vantage].ASN, declared[x.Vantage].Country
		if x.Hosts > 0 {
			x.HostShare = float64(x.Intercepting) / float64(x.Hosts)
		}
		if x.Judged > 0 {
			x.Share = float64(x.Intercepted) / float64(x.Judged)
		}
		table = append(table, *x)
	}
	sort.Slice(table, func(i, j int) bool { return table[i].Vantage < table[j].Vantage })
	div := []Divergence{}
	if len(table) < 2 || len(v.mitm) == 0 {
		return table, div, nil
	}
	err = st.Records(ctx, c, func(rec measure.Record, _ measure.Control) error {
		if !rec.Outcome.OK() {
			return nil
		}
		if d := v.mitm[pairKey{rec.Host, rec.SNI}]; d != nil {
			name := rec.Vantage
			if name == "" {
				name = measure.DefaultVantage
			}
			if !slices.Contains(d.CleanFrom, name) {
				d.CleanFrom = append(d.CleanFrom, name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, d := range v.mitm {
		if len(d.CleanFrom) > 0 {
			sort.Strings(d.InterceptedFrom)
			sort.Strings(d.CleanFrom)
			div = append(div, *d)
		}
	}
	sort.Slice(div, func(i, j int) bool {
		if div[i].Host != div[j].Host {
			return div[i].Host < div[j].Host
		}
		return div[i].SNI < div[j].SNI
	})
	return table, div, nil
}
