package detect

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Reason is one piece of evidence, with what was expected and what was seen.
type Reason struct {
	What     string `json:"what"`
	Expected string `json:"expected,omitempty"`
	Seen     string `json:"seen,omitempty"`
}

// Result is the verdict on one connection.
type Result struct {
	// Intercepted is true or false, or nil when the evidence cannot tell
	// (no browser User-Agent, a browser version the reference lacks).
	Intercepted *bool    `json:"intercepted"`
	Confidence  float64  `json:"confidence"`
	Reasons     []Reason `json:"reasons"`
	// Product names the interceptor when its fingerprint is known.
	Product string `json:"product,omitempty"`
	// Reference names the reference data the hello was judged against
	// (the browser family and version range), or "" when none covers the
	// browser the User-Agent names.
	Reference string `json:"reference,omitempty"`
	// Weakened lists how the intercepted connection is weaker than the
	// browser's own would be.
	Weakened []string `json:"weakened,omitempty"`
	JA4      string   `json:"ja4"`
	JA4R     string   `json:"ja4_r"`
	JA3      string   `json:"ja3"`
	JA3Hash  string   `json:"ja3_hash"`
	Browser  Browser  `json:"browser"`
	// Features is the mitmengine-style fingerprint (written out only when
	// the result is marshalled).
	Features Features `json:"features"`
}

//go:embed data/reference.json
var referenceJSON []byte

//go:embed data/mitmengine/browser.txt
var browserTxt []byte

//go:embed data/mitmengine/mitm.txt
var mitmTxt []byte

//go:embed data/mitmengine/badheader.txt
var badHeaderTxt []byte

// Checker judges ClientHellos against the reference data. It is safe for
// concurrent use; Default returns the one built from the embedded data.
type Checker struct {
	ref      Reference
	browsers []*Signature // mitmengine's historical browser records
	byCode   map[int][]*Signature
	// Interceptor ClientHello signatures by the one version they require,
	// and those that take a range or any version.
	mitmByVersion map[uint16][]*Signature
	mitmOther     []*Signature
	mitm          []*Signature // mitmengine's interceptor records
	badHeaders    map[string]bool
	stackJA4      map[string]string
	never         map[string][]*Never // by browser TLS stack
	labels        map[*Profile]string // how a verdict names the profile
	neverBits     map[string]*neverSet
	// Excluded lists mitmengine's browser signatures not used as the
	// browser's, with why.
	Excluded []Exclusion
}

// neverSet holds a stack's rules of "never" as bit sets, so that the common
// case (a hello that breaks none) costs a few lookups.
type neverSet struct {
	exts, groups, ciphers bitset
	onlyPF                bool
}

type bitset [1 << 10]uint64

func (b *bitset) set(v uint16)      { b[v>>6] |= 1 << (v & 63) }
func (b *bitset) has(v uint16) bool { return b[v>>6]&(1<<(v&63)) != 0 }

func (s *neverSet) add(n *Never) {
	for _, v := range n.Extensions {
		s.exts.set(v)
	}
	for _, v := range n.Groups {
		s.groups.set(v)
	}
	for _, v := range n.Ciphers {
		s.ciphers.set(v)
	}
	s.onlyPF = s.onlyPF || n.OnlyPointFormat != nil
}

// neverHit reports whether the features break one of the stack's rules.
func (c *Checker) neverHit(stack string, f Features) bool {
	s := c.neverBits[stack]
	if s == nil {
		return false
	}
	for _, l := range []struct {
		b    *bitset
		seen []uint16
	}{{&s.exts, f.Exts}, {&s.groups, f.Curves}, {&s.ciphers, f.Ciphers}} {
		for _, v := range l.seen {
			if l.b.has(v) {
				return true
			}
		}
	}
	if s.onlyPF {
		for _, p := range f.PF {
			if p != 0 {
				return true
			}
		}
	}
	return false
}

// sigStacks is the TLS stack of the browsers of mitmengine's codes whose
// stack did not change over the versions its data covers.
var sigStacks = map[int]string{1: "chromium", 2: "schannel", 3: "safari", 4: "firefox"}

// notBrowser says why a browser signature cannot be the browser's own: its
// required and optional items show what the stack never sends.
func (c *Checker) notBrowser(s *Signature) string {
	f, _, _ := s.instance()
	for _, n := range c.never[sigStacks[s.ua.browser]] {
		if v := n.Violations(f); len(v) > 0 {
			return v[0].What + ": " + v[0].Seen
		}
	}
	return ""
}

var defaultChecker = sync.OnceValues(func() (*Checker, error) {
	return NewChecker(referenceJSON, browserTxt, mitmTxt, badHeaderTxt)
})

// Default returns the checker of the embedded reference data.
func Default() *Checker {
	c, err := defaultChecker()
	if err != nil {
		panic("detect: embedded reference data: " + err.Error()) // checked by the package tests
	}
	return c
}

// NewChecker builds a checker from reference data files.
func NewChecker(reference, browsers, mitm, badHeaders []byte) (*Checker, error) {
	c := &Checker{badHeaders: map[string]bool{}, stackJA4: map[string]string{}}
	if err := json.Unmarshal(reference, &c.ref); err != nil {
		return nil, fmt.Errorf("reference.json: %w", err)
	}
	var err error
	if c.browsers, err = ParseSignatures(browsers); err != nil {
		return nil, err
	}
	if c.mitm, err = ParseSignatures(mitm); err != nil {
		return nil, err
	}
	c.mitmByVersion = map[uint16][]*Signature{}
	for _, s := range c.mitm {
		switch {
		case s.HeaderOnly():
		case len(s.version) == 1:
			c.mitmByVersion[s.version[0]] = append(c.mitmByVersion[s.version[0]], s)
		default:
			c.mitmOther = append(c.mitmOther, s)
		}
	}
	c.never, c.neverBits = map[string][]*Never{}, map[string]*neverSet{}
	for _, n := range c.ref.Never {
		for _, st := range n.Stacks {
			c.never[st] = append(c.never[st], n)
			if c.neverBits[st] == nil {
				c.neverBits[st] = &neverSet{}
			}
			c.neverBits[st].add(n)
		}
	}
	c.labels = map[*Profile]string{}
	for _, p := range c.ref.Browsers {
		p.index()
		c.labels[p] = fmt.Sprintf("%s %d-%d (%s)", p.Stack, p.MinMajor, p.MaxMajor, strings.Join(p.Sources, ", "))
	}
	// mitmengine's browser signatures include Cloudflare's "trusted
	// traffic", where some interception products' hellos were labelled
	// with the browser's name: a signature that shows what the browser's
	// stack never sends is theirs, and is not used as the browser's.
	c.byCode = map[int][]*Signature{}
	for _, s := range c.browsers {
		if why := c.notBrowser(s); why != "" {
			c.Excluded = append(c.Excluded, Exclusion{Line: s.Line, Why: why})
			continue
		}
		c.byCode[s.ua.browser] = append(c.byCode[s.ua.browser], s)
	}
	sc := bufio.NewScanner(bytes.NewReader(badHeaders))
	for sc.Scan() {
		if h := strings.TrimSpace(sc.Text()); h != "" && h[0] != '#' {
			c.badHeaders[strings.ToLower(h)] = true
		}
	}
	for _, s := range c.ref.Stacks {
		for _, j := range s.JA4 {
			c.stackJA4[ja4Lists(j)] = s.Product
		}
	}
	return c, nil
}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

// resultBlock is a Result with room for its features' lists: one
// allocation per Check for a usual hello (a bigger one spills over).
type resultBlock struct {
	Result
	lists [64]uint16
}

// Check judges a ClientHello for the User-Agent and headers of the request
// that came over it (headers may be nil).
func (c *Checker) Check(ch *ClientHello, userAgent string, headers http.Header) *Result {
	// r is filled on the stack and copied into the block once, whole:
	// while the garbage collector marks, each pointer stored into a heap
	// object costs a write barrier.
	blk := new(resultBlock)
	var res Result
	r := &res
	r.Browser, r.Reasons = ParseUA(userAgent), []Reason{}
	fp := ch.Fingerprints()
	r.JA4, r.JA4R, r.JA3, r.JA3Hash = fp.JA4, fp.JA4R, fp.JA3, fp.JA3Hash
	f := featuresInto(ch, blk.lists[:0])
	f.Headers = headerNames(headers)
	r.Features = f
	p := c.profile(r.Browser.Stack)
	r.Weakened = weakened(ch, p != nil && r.Browser.Major >= p.MinMajor && p.MaxVersion >= 0x0304)
	c.judge(r, f, ch.MaxVersion(), r.JA4)
	blk.Result = res
	return &blk.Result
}

// headerNames returns the header names in lower case, sorted: one string
// holds them all, so a request costs two allocations, not one per name.
func headerNames(h http.Header) []string {
	if len(h) == 0 {
		return nil
	}
	var buf [1024]byte
	var ends [32]int
	b, end := buf[:0], ends[:0]
	for name := range h {
		ascii := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		if !ascii {
			b = append(b[:endOf(end)], strings.ToLower(name)...)
		}
		end = append(end, len(b))
	}
	all := string(b)
	names := make([]string, len(end))
	for i, e := range end {
		names[i] = all[endOf(end[:i]):e]
	}
	slices.Sort(names)
	return names
}

// endOf is where the last name of ends ends, 0 for none.
func endOf(ends []int) int {
	if len(ends) == 0 {
		return 0
	}
	return ends[len(ends)-1]
}

// checkFeatures judges bare features (a replayed mitmengine record), with
// the browser and its OS as the record names them.
func (c *Checker) checkFeatures(f Features, s *Signature) *Result {
	code, major := s.ua.browser, s.ua.min
	r := &Result{Reasons: []Reason{}, Features: f, Browser: Browser{Family: familyOf(code), Major: major, OSVersion: s.ua.osLo}}
	r.Browser.Stack = sigStacks[code]
	for name, os := range uasurferOS {
		if os == s.ua.os {
			r.Browser.OS = name
		}
	}
	if r.Browser.OS == "ios" {
		r.Browser.IOSMajor = s.ua.osLo[0]
	}
	c.judge(r, f, f.Version, "")
	return r
}

func familyOf(code int) string {
	if code > 0 && code < len(uasurferNames) {
		return uasurferNames[code]
	}
	return ""
}

func (c *Checker) judge(r *Result, f Features, maxVersion uint16, ja4 string) {
	code := uasurferCode(r.Browser.Family)
	// 1. Headers only a proxy adds.
	for _, h := range f.Headers {
		if c.badHeaders[h] {
			r.Intercepted, r.Confidence = yes(), 0.9
			r.Reasons = append(r.Reasons, Reason{What: "the request carries a header that proxies add", Seen: h})
			for _, s := range c.mitm {
				if s.HeaderOnly() && s.Match(f, code, r.Browser.Major) {
					r.Product = s.Product
				}
			}
		}
	}
	if r.Intercepted != nil {
		return
	}
	// 2. A TLS library that is not a browser's, under a browser's name.
	if product, ok := c.stackJA4[ja4Lists(ja4)]; ok && r.Browser.Family != "" {
		r.Intercepted, r.Confidence, r.Product = yes(), 0.9, product
		r.Reasons = append(r.Reasons, Reason{What: "the ClientHello is " + product + "'s, not a browser's", Expected: r.Browser.Family, Seen: product})
		return
	}
	if r.Browser.Family == "" {
		// No browser to fit: a known interceptor's hello still convicts.
		if s := c.interceptor(f, code, r.Browser.Major); s != nil {
			c.convict(r, s)
			return
		}
		r.Reasons = append(r.Reasons, Reason{What: "the User-Agent names no browser whose ClientHello is known", Seen: "unknown client"})
		return
	}
	// 3. What the browser's TLS stack never sent, in any version.
	var never []Reason
	if c.neverHit(r.Browser.Stack, f) {
		for _, n := range c.never[r.Browser.Stack] {
			never = append(never, n.Violations(f)...)
		}
	}
	// 4. Does the hello fit the browser at that version?
	v := c.fit(r.Browser, code, f, maxVersion)
	r.Reference = v.reference
	switch {
	case len(never) > 0:
		r.Intercepted, r.Confidence = yes(), 0.9
		r.Reasons = append(never, v.reasons...)
	case v.fits:
		r.Intercepted, r.Confidence = no(), v.confidence
		return
	}
	// 5. A known interceptor's hello, when it does not fit the browser: an
	// interceptor that forwards the browser's hello has the browser's
	// signature, which must not convict.
	if s := c.interceptor(f, code, r.Browser.Major); s != nil {
		c.convict(r, s)
		return
	}
	if r.Intercepted != nil {
		return
	}
	switch {
	case v.reference != "" || v.hard:
		r.Intercepted, r.Confidence, r.Reasons = yes(), min(0.5+0.15*float64(len(v.reasons)), 0.9), v.reasons
		if v.reference == "" {
			r.Confidence = 0.7
		}
	case v.newer && len(v.reasons) == 0:
		// Newer than every reference, and nothing the family never did.
		r.Intercepted, r.Confidence = no(), 0.6
	default:
		r.Reasons = v.reasons
	}
}

// convict judges the result intercepted by the known interceptor s,
// keeping reasons found before.
func (c *Checker) convict(r *Result, s *Signature) {
	r.Intercepted, r.Confidence, r.Product = yes(), 0.95, s.Product
	r.Reasons = append(r.Reasons, Reason{What: "the ClientHello matches a known interceptor's", Seen: s.Product})
	if s.Grade >= 3 {
		r.Weakened = append(r.Weakened, "the interceptor is known to be vulnerable (grade "+[]string{"", "A", "B", "C", "F"}[s.Grade]+")")
	}
}

// interceptor returns the known interceptor signature the features match.
func (c *Checker) interceptor(f Features, code, major int) *Signature {
	for _, list := range [2][]*Signature{c.mitmByVersion[f.Version], c.mitmOther} {
		for _, s := range list {
			if s.Match(f, code, major) {
				return s
			}
		}
	}
	return nil
}

// fitting is how a hello compares with the browser's references.
type fitting struct {
	fits       bool
	confidence float64
	reference  string   // the reference used, "" when none covers the version
	newer      bool     // the version is newer than the newest reference
	hard       bool     // reasons show what the family never did (newer versions)
	reasons    []Reason // the differences, or why there is no reference
}

// fit compares the features with the references that cover the browser's
// version: the profile of today's versions, else mitmengine's browser
// signatures of that version. A version newer than the newest reference is
// held only to what its family has never done: offering a cipher suite
// outside the family's set or an older TLS version, or no GREASE; an
// unfamiliar extension or group on it is only a reason for "unknown".
func (c *Checker) fit(b Browser, code int, f Features, maxVersion uint16) fitting {
	if b.OS == "ios" && b.IOSMajor > 0 && b.Family != "safari" {
		// iOS browsers use Apple's stack of that iOS for pages, and some
		// (Chrome's Cronet) their own for other requests: either fits.
		own := b
		own.OS, own.Stack = "", map[string]string{"chrome": "chromium", "edge": "chromium", "opera": "chromium", "firefox": "firefox"}[b.Family]
		if v := c.fit(own, code, f, maxVersion); v.fits {
			return v
		}
		b.Family, b.Major, code = "safari", b.IOSMajor, uasurferCode("safari")
	}
	major := b.Major
	var out fitting
	p := c.profile(b.Stack)
	if p != nil && major >= p.MinMajor && (major <= p.MaxMajor || p.MaxMajor == 0) {
		out.reference = c.labels[p]
		if out.reasons = compare(p, f, maxVersion); len(out.reasons) == 0 {
			return fitting{fits: true, confidence: 0.9, reference: out.reference}
		}
	}
	// mitmengine's records of the version on that OS. Windows' own stack
	// (IE, EdgeHTML) sends one hello per Windows version, whatever the
	// browser: the records made from a capture of exactly that browser
	// and Windows version decide when there are any, and the "trusted
	// traffic" aggregates spanning many versions only when there are none.
	// The OS matters to the stacks that come with it (Windows', Apple's);
	// Chrome's and Firefox's own stacks send the same hello everywhere.
	os, osv := uasurferOS[b.OS], b.OSVersion
	if st := sigStacks[code]; st != "schannel" && st != "safari" {
		os = 0
	}
	var sigs, exact []*Signature
	for _, s := range c.byCode[code] {
		if s.covers(code, major, os, osv) {
			sigs = append(sigs, s)
			if s.ua.exact {
				exact = append(exact, s)
			}
		}
	}
	if len(exact) > 0 && sigStacks[code] == "schannel" {
		sigs = exact
	}
	for _, s := range sigs {
		if matchAnySNI(s, f, code, major) {
			ref := out.reference
			if ref == "" {
				ref = fmt.Sprintf("mitmengine browser signatures of %s %d", familyOf(code), major)
			}
			return fitting{fits: true, confidence: 0.8, reference: ref}
		}
	}
	if out.reference != "" {
		return out
	}
	if len(sigs) > 0 {
		out.reference = fmt.Sprintf("mitmengine browser signatures of %s %d (%d)", familyOf(code), major, len(sigs))
		out.reasons = closest(sigs, f).differences(f)
		out.reasons[0].What = fmt.Sprintf("fits none of the %d browser signatures of %s %d; nearest: %s", len(sigs), familyOf(code), major, out.reasons[0].What)
		return out
	}
	if p != nil && p.MaxMajor > 0 && major > p.MaxMajor {
		out.newer = true
		out.reasons, out.hard = compareNewer(p, f, maxVersion)
		return out
	}
	out.reasons = []Reason{{What: "no reference ClientHello for this browser version", Seen: fmt.Sprintf("%s %d", b.Family, b.Major)}}
	return out
}

// matchAnySNI matches the signature as if the hello had its server_name
// extension: a browser sends none to a bare IP address, which is no evidence
// of anything, and the records were made from hellos to names.
func matchAnySNI(s *Signature, f Features, code, major int) bool {
	if s.Match(f, code, major) {
		return true
	}
	if slices.Contains(f.Exts, 0) {
		return false
	}
	// server_name at each place in turn: moved one step at a time, not
	// copied in afresh, so that a hostile hello's thousands of extensions
	// cost time linear in them, not their square.
	with := make([]uint16, len(f.Exts)+1)
	copy(with[1:], f.Exts)
	f.Exts = with
	for i := 0; ; i++ {
		if s.Match(f, code, major) {
			return true
		}
		if i+1 == len(with) {
			return false
		}
		with[i], with[i+1] = with[i+1], with[i]
	}
}

// closest returns the signature whose lists the features fit best.
func closest(sigs []*Signature, f Features) *Signature {
	best, bestN := sigs[0], 99
	for _, s := range sigs {
		if n := len(s.differences(f)); n < bestN {
			best, bestN = s, n
		}
	}
	return best
}

// compareNewer holds a version newer than the profile to what the family
// never did (hard reasons) and notes what is merely unfamiliar.
func compareNewer(p *Profile, f Features, maxVersion uint16) (reasons []Reason, hard bool) {
	if p.GREASE && !f.GREASE {
		reasons = append(reasons, Reason{What: "no GREASE values, which every " + p.Stack + " version since the reference sends", Expected: "GREASE", Seen: "none"})
		hard = true
	}
	if extra := notIn(f.Ciphers, &p.sets.ciphers); len(extra) > 0 {
		reasons = append(reasons, Reason{What: "cipher suites this browser family dropped or never offered", Expected: hexList(p.Ciphers), Seen: hexList(extra)})
		hard = true
	}
	if maxVersion < p.MaxVersion {
		reasons = append(reasons, Reason{What: "an older TLS version than the family offers", Expected: fmt.Sprintf("%#04x", p.MaxVersion), Seen: fmt.Sprintf("%#04x", maxVersion)})
		hard = true
	}
	if hard {
		return reasons, true
	}
	if extra := notIn(f.Exts, &p.sets.exts); len(extra) > 0 {
		reasons = append(reasons, Reason{What: "extensions newer than the reference (a newer version may send them)", Expected: hexList(p.Extensions), Seen: hexList(extra)})
	}
	if extra := notIn(f.Curves, &p.sets.groups); len(extra) > 0 {
		reasons = append(reasons, Reason{What: "key exchange groups newer than the reference (a newer version may offer them)", Expected: hexList(p.Groups), Seen: hexList(extra)})
	}
	return reasons, false
}

// ja4Lists keeps the two hashed parts of a JA4 (cipher suites; extensions
// and signature algorithms), which identify a TLS library whatever name and
// ALPN the program using it asks for.
func ja4Lists(ja4 string) string {
	if i := strings.IndexByte(ja4, '_'); i >= 0 {
		return ja4[i+1:]
	}
	return ""
}

func (c *Checker) profile(stack string) *Profile {
	for _, p := range c.ref.Browsers {
		if p.Stack == stack {
			return p
		}
	}
	return nil
}

// compare lists how the features depart from the profile: the paper's
// per-family rules (Firefox/NSS and Safari send a fixed order, Chrome
// permutes its extensions but never its ciphers, and sends GREASE; none
// offers a cipher it never sends).
func compare(p *Profile, f Features, maxVersion uint16) []Reason {
	var out []Reason
	if p.GREASE && !f.GREASE {
		out = append(out, Reason{What: "no GREASE values", Expected: p.Stack + " sends GREASE", Seen: "none"})
	}
	if !p.GREASE && f.GREASE {
		out = append(out, Reason{What: "GREASE values", Expected: p.Stack + " sends none", Seen: "GREASE"})
	}
	if extra := notIn(f.Ciphers, &p.sets.ciphers); len(extra) > 0 {
		out = append(out, Reason{What: "cipher suites the browser never offers", Expected: hexList(p.Ciphers), Seen: hexList(extra)})
	} else if !consistent(p.CipherOrders, f.Ciphers) {
		out = append(out, Reason{What: "cipher suites in another order", Expected: hexList(p.CipherOrders[0]), Seen: hexList(f.Ciphers)})
	}
	if extra := notIn(f.Exts, &p.sets.exts); len(extra) > 0 {
		out = append(out, Reason{What: "extensions the browser never sends", Expected: hexList(p.Extensions), Seen: hexList(extra)})
	}
	// server_name is left out of "always": a browser sends none for a bare
	// IP address.
	if lack := slices.DeleteFunc(missing(p.RequiredExtensions, f.Exts), func(e uint16) bool { return e == 0 }); len(lack) > 0 {
		out = append(out, Reason{What: "extensions the browser always sends are missing", Expected: hexList(p.RequiredExtensions), Seen: "without " + hexList(lack)})
	}
	if len(p.ExtensionOrders) > 0 && !consistent(p.ExtensionOrders, f.Exts) {
		out = append(out, Reason{What: "extensions in another order (this browser's order is fixed)", Expected: hexList(p.ExtensionOrders[0]), Seen: hexList(f.Exts)})
	}
	if extra := notIn(f.Curves, &p.sets.groups); len(extra) > 0 {
		out = append(out, Reason{What: "key exchange groups the browser never offers", Expected: hexList(p.Groups), Seen: hexList(extra)})
	}
	if maxVersion < p.MaxVersion {
		out = append(out, Reason{What: "an older TLS version", Expected: fmt.Sprintf("%#04x", p.MaxVersion), Seen: fmt.Sprintf("%#04x", maxVersion)})
	}
	return out
}

// notIn returns the values of vs outside the set, in order.
func notIn(vs []uint16, set *bitset) []uint16 {
	var out []uint16
	for _, v := range vs {
		if !set.has(v) {
			out = append(out, v)
		}
	}
	return out
}

// missing returns the values of a that b lacks.
func missing(a, b []uint16) []uint16 {
	var out []uint16
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// maxHexList bounds the values a reason spells out: a hostile hello may
// list 30,000, and a result is written out for each signature tried.
const maxHexList = 64

// hexList spells out vs, up to maxHexList of them and a count of the rest.
func hexList(vs []uint16) string {
	s := make([]string, min(len(vs), maxHexList), min(len(vs), maxHexList)+1)
	for i := range s {
		s[i] = fmt.Sprintf("%04x", vs[i])
	}
	if len(vs) > maxHexList {
		s = append(s, fmt.Sprintf("and %d more", len(vs)-maxHexList))
	}
	return strings.Join(s, ",")
}

// brokenCipher names the weakness of a broken cipher suite (RC4, 3DES,
// DES, NULL, export), or "".
func brokenCipher(c uint16) string {
	switch c {
	case 0x0004, 0x0005, 0xc007, 0xc011, 0x0018:
		return "RC4"
	case 0x000a, 0xc008, 0xc012, 0x0016, 0x0013:
		return "3DES"
	case 0x0009, 0x0015, 0x0012:
		return "DES"
	case 0x0000, 0x0001, 0x0002, 0x003b:
		return "NULL"
	case 0x0003, 0x0006, 0x0008, 0x0014, 0x0017:
		return "EXPORT"
	}
	return ""
}

// weakened lists what the ClientHello gives up against the browser: broken
// ciphers offered, no forward secrecy, an older TLS version than the
// browser's (when its version is one of today's, which offer TLS 1.3).
func weakened(ch *ClientHello, browserHasTLS13 bool) []string {
	var out []string
	fs := false
	for _, c := range ch.CipherSuites {
		if k := brokenCipher(c); k != "" && !slices.Contains(out, "offers broken "+k+" cipher suites") {
			out = append(out, "offers broken "+k+" cipher suites")
		}
		if c>>8 == 0x13 || c>>8 == 0xc0 || c>>8 == 0xcc || c == 0x0033 || c == 0x0039 || c == 0x009e || c == 0x009f {
			fs = true
		}
	}
	if !fs {
		out = append(out, "offers no forward-secret key exchange")
	}
	if ch.MaxVersion() < 0x0304 && browserHasTLS13 {
		out = append(out, fmt.Sprintf("offers at most TLS %s where the browser offers TLS 1.3", versionName(ch.MaxVersion())))
	}
	if len(ch.Compression) > 1 {
		out = append(out, "offers TLS compression (CRIME)")
	}
	return out
}

func versionName(v uint16) string {
	switch v {
	case 0x0303:
		return "1.2"
	case 0x0302:
		return "1.1"
	case 0x0301:
		return "1.0"
	case 0x0300:
		return "SSL 3.0"
	}
	return fmt.Sprintf("%#04x", v)
}
