package measure

import (
	"fmt"
	"strconv"
	"strings"
)

// Vantage is a vantage point as its operator declares it: its name, and
// optionally the network (autonomous system) and country it measures from.
// Interception sits on particular networks, so comparing vantage points
// needs more than a name; mitmguard does not look these up (a lookup would
// say where the operator's address is registered, not where the box
// stands), it records what the operator says.
type Vantage struct {
	Name string `json:"vantage"`
	// ASN is the autonomous system number, 0 when not declared.
	ASN uint32 `json:"asn,omitempty"`
	// Country is an ISO 3166-1 alpha-2 code in upper case, "" when not
	// declared.
	Country string `json:"country,omitempty"`
}

// MaxVantageName bounds a vantage point name.
const MaxVantageName = 64

// VantageError says why a vantage point's name, ASN or country was
// refused, whether given on the command line or read from a database.
type VantageError struct {
	Field  string // "name", "ASN" or "country"
	Value  string
	Reason string
}

func (e *VantageError) Error() string {
	v := e.Value
	if len(v) > 80 {
		v = v[:80] + "..."
	}
	return fmt.Sprintf("vantage point %s %q: %s", e.Field, v, e.Reason)
}

// ParseASN reads an autonomous system number as operators write it,
// "AS9198" or "9198": a 32-bit unsigned number (RFC 6793). AS 0 is
// reserved (RFC 7607) and means "not declared" here, so it is refused.
func ParseASN(s string) (uint32, error) {
	digits := s
	if len(digits) >= 2 && strings.EqualFold(digits[:2], "AS") {
		digits = digits[2:]
	}
	bad := func(reason string) (uint32, error) { return 0, &VantageError{"ASN", s, reason} }
	if digits == "" || len(digits) > 10 || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return bad("want a number such as 9198 or AS9198")
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return bad("more than 4294967295, the largest 32-bit AS number")
	}
	if n == 0 {
		return bad("AS 0 is reserved")
	}
	return uint32(n), nil
}

// ParseCountry reads an ISO 3166-1 alpha-2 country code ("KZ", "kz"): two
// ASCII letters, returned in upper case. Whether the code is assigned is
// not checked: the list changes, and user-assigned codes (XK) are in use.
func ParseCountry(s string) (string, error) {
	if len(s) != 2 || !isASCIILetter(s[0]) || !isASCIILetter(s[1]) {
		return "", &VantageError{"country", s, "want an ISO 3166-1 alpha-2 code, two letters such as KZ"}
	}
	return strings.ToUpper(s), nil
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// CheckVantageName accepts 1 to 64 letters, digits, '.', '_' or '-': what
// probe --vantage takes (a campaign's workers are stricter, as their names
// become NATS subjects).
func CheckVantageName(name string) error {
	ok := name != "" && len(name) <= MaxVantageName
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = isASCIILetter(c) || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return &VantageError{"name", name, fmt.Sprintf("use 1-%d letters, digits, '.', '_' or '-'", MaxVantageName)}
	}
	return nil
}

// Check validates a declaration read from somewhere else (a database): a
// valid name, and a country that is "" or two upper-case letters. The ASN's
// type bounds it already.
func (v Vantage) Check() error {
	if err := CheckVantageName(v.Name); err != nil {
		return err
	}
	if v.Country != "" {
		if c, err := ParseCountry(v.Country); err != nil || c != v.Country {
			return &VantageError{"country", v.Country, "want two upper-case letters"}
		}
	}
	return nil
}

// VantageConflictError is a declaration that differs from the one stored
// first for the same campaign and vantage point (two workers of one
// vantage point started with different --vantage-asn, say). The first
// declaration wins; fields it left undeclared are filled by later ones
// that do not conflict with it.
type VantageConflictError struct {
	Campaign string
	Declared Vantage // what this run declared
	Stored   Vantage // what the campaign keeps
}

func (e *VantageConflictError) Error() string {
	return fmt.Sprintf("campaign %s: vantage point %s declared as %s, but it was declared first as %s, which is kept",
		e.Campaign, e.Stored.Name, e.Declared.describe(), e.Stored.describe())
}

// Conflicts reports whether declared differs from stored in a field both
// declare.
func (v Vantage) Conflicts(stored Vantage) bool {
	return v.ASN != 0 && stored.ASN != 0 && v.ASN != stored.ASN ||
		v.Country != "" && stored.Country != "" && v.Country != stored.Country
}

func (v Vantage) describe() string {
	asn, country := "no ASN", "no country"
	if v.ASN != 0 {
		asn = fmt.Sprintf("AS%d", v.ASN)
	}
	if v.Country != "" {
		country = v.Country
	}
	return asn + ", " + country
}
