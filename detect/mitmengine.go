package detect

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Features are what the mitmengine-style fingerprint compares: the
// ClientHello's version and lists with GREASE removed, and the request's
// header names in order.
type Features struct {
	Version uint16   `json:"version"`
	Ciphers []uint16 `json:"ciphers"`
	Exts    []uint16 `json:"extensions"`
	Curves  []uint16 `json:"curves"`
	PF      []uint16 `json:"point_formats"`
	Headers []string `json:"headers,omitempty"`
	GREASE  bool     `json:"grease"`
}

// FeaturesOf extracts the fingerprint features of a ClientHello.
func FeaturesOf(ch *ClientHello) Features {
	return featuresInto(ch, make([]uint16, 0, len(ch.CipherSuites)+len(ch.Extensions)+len(ch.SupportedGroups)+len(ch.PointFormats)))
}

// featuresInto extracts the features into all (one backing array for the
// four lists; appended to past its capacity).
func featuresInto(ch *ClientHello, all []uint16) Features {
	f := Features{Version: ch.Version}
	strip := func(vs []uint16) []uint16 {
		start := len(all)
		for _, v := range vs {
			if IsGREASE(v) {
				f.GREASE = true
			} else {
				all = append(all, v)
			}
		}
		return all[start:len(all):len(all)]
	}
	f.Ciphers = strip(ch.CipherSuites)
	start := len(all)
	for _, e := range ch.Extensions {
		if IsGREASE(e.Type) {
			f.GREASE = true
		} else {
			all = append(all, e.Type)
		}
	}
	f.Exts = all[start:len(all):len(all)]
	f.Curves = strip(ch.SupportedGroups)
	start = len(all)
	for _, p := range ch.PointFormats {
		all = append(all, uint16(p))
	}
	f.PF = all[start:len(all):len(all)]
	return f
}

// MarshalText writes the features in their String form.
func (f Features) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads the String form back.
func (f *Features) UnmarshalText(b []byte) error {
	parts := strings.Split(string(b), ":")
	if len(parts) != 5 {
		return fmt.Errorf("detect: features %q: want 5 fields", b)
	}
	v, err := strconv.ParseUint(parts[0], 16, 16)
	if err != nil {
		return fmt.Errorf("detect: features version %q", parts[0])
	}
	*f = Features{Version: uint16(v)}
	for i, dst := range []*[]uint16{&f.Ciphers, &f.Exts, &f.Curves, &f.PF} {
		if parts[1+i] == "" {
			continue
		}
		for _, x := range strings.Split(parts[1+i], ",") {
			n, err := strconv.ParseUint(x, 16, 16)
			if err != nil {
				return fmt.Errorf("detect: features item %q", x)
			}
			*dst = append(*dst, uint16(n))
		}
	}
	return nil
}

// String is the mitmengine request form of the features.
func (f Features) String() string {
	b := make([]byte, 0, 256)
	b = strconv.AppendUint(b, uint64(f.Version), 16)
	for _, l := range [][]uint16{f.Ciphers, f.Exts, f.Curves, f.PF} {
		b = append(b, ':')
		for i, v := range l {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(v), 16)
		}
	}
	return string(b)
}

// item is one entry of a signature list: '?' optional, '!' possible but
// unexpected, '^' must not be present. It holds no pointer: the checker
// keeps tens of thousands for the life of a server, and the garbage
// collector skips what holds none.
type item struct {
	v                          uint16
	opt, unexpected, forbidden bool
}

// listSig is a signature list: '*' alone matches anything, a '*' prefix
// allows extra items in any order, '~' any order but no extras, none the
// exact order.
type listSig struct {
	any, extras, unordered bool
	items                  []item
	names                  []string // a header list's items' names
	src                    string   // as the signature wrote it
	// Derived once at parse time, so matching allocates nothing; allowed
	// is sorted, without repeats.
	required, forbidden, allowed []uint16
}

func (l *listSig) derive() {
	for _, it := range l.items {
		switch {
		case it.forbidden:
			l.forbidden = append(l.forbidden, it.v)
		default:
			l.allowed = append(l.allowed, it.v)
			if !it.opt && !it.unexpected {
				l.required = append(l.required, it.v)
			}
		}
	}
	slices.Sort(l.allowed)
	l.allowed = slices.Clip(slices.Compact(l.allowed))
}

func parseList(s string, hexItems bool) (l listSig, err error) {
	l.src = s
	switch {
	case s == "*":
		l.any = true
		return l, nil
	case strings.HasPrefix(s, "*"):
		l.extras, s = true, s[1:]
	case strings.HasPrefix(s, "~"):
		l.unordered, s = true, s[1:]
	}
	defer l.derive()
	if s == "" {
		return l, nil
	}
	for _, tok := range strings.Split(s, ",") {
		var it item
		for len(tok) > 0 && strings.ContainsRune("?!^", rune(tok[0])) {
			switch tok[0] {
			case '?':
				it.opt = true
			case '!':
				it.unexpected = true
			case '^':
				it.forbidden = true
			}
			tok = tok[1:]
		}
		if hexItems {
			v, err := strconv.ParseUint(tok, 16, 16)
			if err != nil {
				return l, fmt.Errorf("bad hex item %q", tok)
			}
			it.v = uint16(v)
		} else {
			l.names = append(l.names, tok)
		}
		l.items = append(l.items, it)
	}
	return l, nil
}

func (l *listSig) match(seen []uint16) bool {
	if l.any {
		return true
	}
	if !l.extras && (len(seen) < len(l.required) || len(seen) > len(l.allowed)) {
		return false // cheap: most signatures fail here
	}
	for _, v := range l.forbidden {
		if slices.Contains(seen, v) {
			return false
		}
	}
	for _, v := range l.required {
		if !slices.Contains(seen, v) {
			return false
		}
	}
	if l.extras {
		return true
	}
	for _, v := range seen {
		if _, ok := slices.BinarySearch(l.allowed, v); !ok {
			return false
		}
	}
	if l.unordered {
		return true
	}
	i := 0 // exact order: seen must follow the signature, skipping optional items
	for _, it := range l.items {
		if it.forbidden {
			continue
		}
		if i < len(seen) && seen[i] == it.v {
			i++
		} else if !it.opt && !it.unexpected {
			return false
		}
	}
	return i == len(seen)
}

// instance is a list the signature itself would match: its required and
// optional items in order (for replaying the reference data as tests).
func (l *listSig) instance() []uint16 {
	var out []uint16
	for _, it := range l.items {
		if !it.forbidden && !it.unexpected {
			out = append(out, it.v)
		}
	}
	return out
}

// uaSig is the User-Agent part of a signature: uasurfer's browser enum
// (0 = any) and a major-version range.
type uaSig struct {
	browser, min, max int
	// os is uasurfer's OS enum (0 = any); osLo and osHi bound the OS
	// version as [major, minor], a missing minor meaning any.
	os         int
	osLo, osHi [2]int
	// exact: the record names one browser version (or two adjacent) and
	// one OS version, as the records made from single captures do;
	// "trusted traffic" aggregates span many.
	exact bool
}

// osVersion parses "6", "6.1" or "6.1.0" into [major, minor], minor -1
// when absent.
func osVersion(v string) ([2]int, error) {
	parts := strings.Split(v, ".")
	out := [2]int{0, -1}
	var err error
	if out[0], err = strconv.Atoi(parts[0]); err != nil {
		return out, fmt.Errorf("os version %q", v)
	}
	if len(parts) > 1 {
		if out[1], err = strconv.Atoi(parts[1]); err != nil {
			return out, fmt.Errorf("os version %q", v)
		}
	}
	return out, nil
}

// coversOS reports whether the signature's OS part admits the OS (code and
// [major, minor]; code 0 when the User-Agent names none).
func (u uaSig) coversOS(os int, v [2]int) bool {
	if u.os == 0 || os == 0 {
		return true
	}
	if u.os != os {
		return false
	}
	if u.osLo[0] == 0 && u.osHi[0] == 0 {
		return true
	}
	if v[0] < u.osLo[0] || v[0] == u.osLo[0] && u.osLo[1] >= 0 && v[1] < u.osLo[1] {
		return false
	}
	return !(v[0] > u.osHi[0] || v[0] == u.osHi[0] && u.osHi[1] >= 0 && v[1] > u.osHi[1])
}

func parseUASig(s string) (uaSig, error) {
	f := strings.Split(s, ":")
	if len(f) != 7 {
		return uaSig{}, fmt.Errorf("user-agent part has %d fields, want 7", len(f))
	}
	var u uaSig
	var err error
	if u.browser, err = strconv.Atoi(f[0]); err != nil {
		return u, fmt.Errorf("browser %q", f[0])
	}
	u.min, u.max = 0, 1<<30
	if v := f[1]; v != "" {
		lo, hi, isRange := strings.Cut(v, "-")
		if u.min, err = major(lo); err != nil {
			return u, err
		}
		u.max = u.min
		if isRange {
			if u.max, err = major(hi); err != nil {
				return u, err
			}
		}
	}
	if f[3] != "" {
		if u.os, err = strconv.Atoi(f[3]); err != nil {
			return u, fmt.Errorf("os %q", f[3])
		}
	}
	if v := f[4]; v != "" {
		lo, hi, isRange := strings.Cut(v, "-")
		if u.osLo, err = osVersion(lo); err != nil {
			return u, err
		}
		u.osHi = u.osLo
		if isRange {
			if u.osHi, err = osVersion(hi); err != nil {
				return u, err
			}
		}
		u.exact = !isRange && u.max-u.min <= 1 && f[1] != ""
	}
	return u, nil
}

func major(v string) (int, error) {
	m, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(m)
	if err != nil {
		return 0, fmt.Errorf("version %q", v)
	}
	return n, nil
}

func (u uaSig) match(code, maj int) bool {
	return u.browser == 0 || u.browser == code && maj >= u.min && maj <= u.max
}

// uasurferCodes is the browser enum of github.com/avct/uasurfer at the
// version mitmengine's data was made with (c4be5581ec96, 2018).
// EdgeHTML (12-18) was IE to uasurfer, and so is it here.
var uasurferCodes = map[string]int{
	"chrome": 1, "ie": 2, "edge-legacy": 2, "safari": 3, "firefox": 4, "android": 5,
	"opera": 6, "opera-presto": 6, "blackberry": 7, "ucbrowser": 8, "silk": 9, "nokia": 10,
}

// uasurferOS maps the OS a User-Agent names onto uasurfer's OS enum.
var uasurferOS = map[string]int{"windows": 2, "macos": 3, "ios": 4, "android": 5, "chromeos": 7, "linux": 10}

// uasurferNames names each code by its family.
var uasurferNames = []string{"", "chrome", "ie", "safari", "firefox", "android", "opera", "blackberry", "ucbrowser", "silk", "nokia"}

// uasurferCode maps a family onto that enum, or -1.
func uasurferCode(family string) int {
	if c, ok := uasurferCodes[family]; ok {
		return c
	}
	return -1
}

// Signature is one mitmengine record: a browser's or an interceptor's.
type Signature struct {
	Line                               int
	Raw                                string
	Product                            string // the interceptor, for mitm.txt records
	Type                               int    // 1 antivirus, 2 fake browser, 3 malware, 4 parental control, 5 proxy
	Grade                              int    // 1 A .. 4 F, Durumeric et al.
	ua                                 uaSig
	version                            []uint16 // one value, or min,expected,max
	ciphers, exts, curves, pf, headers listSig
}

// ParseSignatures reads a mitmengine browser.txt or mitm.txt.
func ParseSignatures(data []byte) ([]*Signature, error) {
	var out []*Signature
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSignature(line)
		if err != nil {
			return nil, fmt.Errorf("detect: signature line %d: %w", n, err)
		}
		s.Line = n
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSignature(line string) (*Signature, error) {
	parts := strings.Split(line, "|")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d parts, want 3", len(parts))
	}
	s := &Signature{Raw: line}
	var err error
	if s.ua, err = parseUASig(parts[0]); err != nil {
		return nil, err
	}
	req := strings.Split(parts[1], ":")
	if len(req) != 7 {
		return nil, fmt.Errorf("request part has %d fields, want 7", len(req))
	}
	for _, v := range strings.Split(req[0], ",") {
		if v == "" {
			break // any version (header-only records)
		}
		x, err := strconv.ParseUint(v, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("tls version %q", req[0])
		}
		s.version = append(s.version, uint16(x))
	}
	for i, l := range []*listSig{&s.ciphers, &s.exts, &s.curves, &s.pf} {
		field := req[1+i]
		if field == "" && len(s.version) == 0 {
			field = "*" // a header-only record says nothing of the ClientHello
		}
		if *l, err = parseList(field, true); err != nil {
			return nil, err
		}
	}
	if s.headers, err = parseList(req[5], false); err != nil {
		return nil, err
	}
	m := strings.Split(parts[2], ":")
	if len(m) == 3 {
		s.Product = m[0]
		s.Type, _ = strconv.Atoi(m[1])
		s.Grade, _ = strconv.Atoi(m[2])
	}
	return s, nil
}

// Match reports whether the features (and the claimed browser, as uasurfer
// code and major version) fit the signature.
func (s *Signature) Match(f Features, code, maj int) bool {
	if !s.ua.match(code, maj) {
		return false
	}
	switch len(s.version) {
	case 1:
		if f.Version != s.version[0] {
			return false
		}
	case 3:
		if f.Version < s.version[0] || f.Version > s.version[2] {
			return false
		}
	}
	return s.ciphers.match(f.Ciphers) && s.exts.match(f.Exts) && s.curves.match(f.Curves) && s.pf.match(f.PF) && s.headersMatch(f.Headers)
}

// HeaderOnly reports a signature that recognises a proxy by its headers and
// says nothing about the ClientHello.
func (s *Signature) HeaderOnly() bool {
	return s.ciphers.any && s.exts.any && !s.headers.any && len(s.headers.items) > 0
}

func (s *Signature) headersMatch(h []string) bool {
	if s.headers.any || len(s.headers.items) == 0 {
		return true
	}
	for i, it := range s.headers.items {
		if !it.opt && !it.unexpected && !slices.Contains(h, s.headers.names[i]) {
			return false
		}
	}
	return true
}

// instance returns features and a browser code/version the signature
// matches, to replay the reference data as test cases.
func (s *Signature) instance() (Features, int, int) {
	f := Features{Ciphers: s.ciphers.instance(), Exts: s.exts.instance(), Curves: s.curves.instance(), PF: s.pf.instance()}
	if len(s.version) == 3 {
		f.Version = s.version[1]
	} else if len(s.version) == 1 {
		f.Version = s.version[0]
	}
	for i, it := range s.headers.items {
		if !it.opt && !it.unexpected && !it.forbidden {
			f.Headers = append(f.Headers, s.headers.names[i])
		}
	}
	return f, s.ua.browser, s.ua.min
}

// covers reports whether the signature's User-Agent part names the browser
// (uasurfer code) at that major version on that OS.
func (s *Signature) covers(code, maj, os int, osv [2]int) bool {
	return s.ua.browser == code && s.ua.match(code, maj) && s.ua.coversOS(os, osv)
}

// differences says, list by list, how the features depart from the
// signature, with the signature's own list as what was expected.
func (s *Signature) differences(f Features) []Reason {
	var out []Reason
	switch {
	case len(s.version) == 1 && f.Version != s.version[0], len(s.version) == 3 && (f.Version < s.version[0] || f.Version > s.version[2]):
		out = append(out, Reason{What: "another TLS version", Expected: fmt.Sprintf("%x", s.version), Seen: fmt.Sprintf("%x", f.Version)})
	}
	for _, l := range []struct {
		what string
		sig  *listSig
		seen []uint16
	}{{"cipher suites", &s.ciphers, f.Ciphers}, {"extensions", &s.exts, f.Exts}, {"key exchange groups", &s.curves, f.Curves}, {"point formats", &s.pf, f.PF}} {
		if !l.sig.match(l.seen) {
			out = append(out, Reason{What: l.what + " unlike the browser's", Expected: l.sig.src, Seen: hexList(l.seen)})
		}
	}
	return out
}
