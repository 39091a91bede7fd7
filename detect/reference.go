package detect

import (
	"fmt"
	"slices"
)

// Reference is the documented data file data/reference.json (see
// data/README.md): what today's browsers send, per TLS stack and version
// range; what each browser TLS stack never sends; which of mitmengine's
// browser signatures are left out because they show exactly that; and the
// hellos of the stacks interceptors are built on. It is written by
// internal/genref from real handshakes (uTLS parrots, the installed Chromium
// and Firefox ESR, Go, OpenSSL, Java) and from mitmengine's data.
type Reference struct {
	Generator string            `json:"generator"`
	Sources   map[string]string `json:"sources"`
	Browsers  []*Profile        `json:"browsers"`
	Never     []*Never          `json:"never"`
	Stacks    []*Stack          `json:"stacks"`
}

// Never is what a browser TLS stack has never sent in any version, as its
// code and every reference hello of it show: the features only other TLS
// libraries (OpenSSL, the ones interception products embed) send.
type Never struct {
	Stacks []string `json:"stacks"` // chromium, firefox, safari, schannel
	Why    string   `json:"why"`
	// OnlyPointFormat, when set, is the one EC point format the stack
	// sends (uncompressed, 0).
	OnlyPointFormat *uint8   `json:"only_point_format,omitempty"`
	Extensions      []uint16 `json:"extensions,omitempty"`
	Groups          []uint16 `json:"groups,omitempty"`
	Ciphers         []uint16 `json:"ciphers,omitempty"`
}

// Exclusion is one mitmengine browser signature (browser.txt line) not
// used as the browser's, and why.
type Exclusion struct {
	Line int    `json:"line"`
	Why  string `json:"why"`
}

// Violations lists what the features show that the rule says the stack
// never sends.
func (n *Never) Violations(f Features) []Reason {
	var out []Reason
	if n.OnlyPointFormat != nil {
		for _, p := range f.PF {
			if uint8(p) != *n.OnlyPointFormat {
				out = append(out, Reason{What: "EC point formats this browser's TLS stack never offers", Expected: fmt.Sprintf("%d only", *n.OnlyPointFormat), Seen: hexList(f.PF)})
				break
			}
		}
	}
	for _, l := range []struct {
		what       string
		seen, bans []uint16
	}{{"extensions", f.Exts, n.Extensions}, {"key exchange groups", f.Curves, n.Groups}, {"cipher suites", f.Ciphers, n.Ciphers}} {
		if bad := intersect(l.seen, l.bans); len(bad) > 0 {
			out = append(out, Reason{What: l.what + " this browser's TLS stack never offers (" + n.Why + ")", Expected: "none of " + hexList(l.bans), Seen: hexList(bad)})
		}
	}
	return out
}

// Profile is one browser TLS stack as its samples show it.
type Profile struct {
	Stack   string   `json:"stack"`   // chromium, firefox, safari
	Sources []string `json:"sources"` // the parrots it was made from
	// MinMajor and MaxMajor bound the browser versions the profile is
	// used for: MaxMajor is the newest version it was captured from. A
	// newer version is judged only by what the stack never sends.
	MinMajor int  `json:"min_major"`
	MaxMajor int  `json:"max_major"`
	GREASE   bool `json:"grease"` // every sample sends GREASE
	// Ciphers, Extensions, Groups: every value any sample sent.
	Ciphers    []uint16 `json:"ciphers"`
	Extensions []uint16 `json:"extensions"`
	Groups     []uint16 `json:"groups"`
	// RequiredExtensions were sent by every sample.
	RequiredExtensions []uint16 `json:"required_extensions"`
	// CipherOrders and ExtensionOrders are the distinct orders seen; an
	// extension order is kept only for stacks that do not permute it.
	CipherOrders    [][]uint16 `json:"cipher_orders"`
	ExtensionOrders [][]uint16 `json:"extension_orders,omitempty"`
	MaxVersion      uint16     `json:"max_version"`

	// sets holds Ciphers, Extensions and Groups as bit sets (index), so
	// that a hello's values are looked up, not searched for.
	sets *profileSets
}

type profileSets struct{ ciphers, exts, groups bitset }

// index makes the profile's bit sets.
func (p *Profile) index() {
	p.sets = &profileSets{}
	for _, l := range []struct {
		set *bitset
		vs  []uint16
	}{{&p.sets.ciphers, p.Ciphers}, {&p.sets.exts, p.Extensions}, {&p.sets.groups, p.Groups}} {
		for _, v := range l.vs {
			l.set.set(v)
		}
	}
}

// Stack is a non-browser TLS implementation, known by its JA4s.
type Stack struct {
	Product string   `json:"product"`
	JA4     []string `json:"ja4"`
	Samples []string `json:"samples"` // hex ClientHello records
}

func intersect(a, b []uint16) []uint16 {
	var out []uint16
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// consistent reports whether seen lists its values in the relative order of
// some reference order (values the order does not hold are ignored).
func consistent(orders [][]uint16, seen []uint16) bool {
	for _, o := range orders {
		last, ok := -1, true
		for _, v := range seen {
			p := slices.Index(o, v) // orders hold a few dozen values: a scan beats a map
			if p < 0 {
				continue
			}
			if p < last {
				ok = false
				break
			}
			last = p
		}
		if ok {
			return true
		}
	}
	return len(orders) == 0
}
