package blocklist

import (
	"fmt"
	"regexp"
	"time"

	"github.com/mitmguard/mitmguard/chain"
)

// Kind says why a root is on the list.
type Kind string

// The kinds of entry. A new kind is a new constant here, never a free string.
const (
	KindGovernment  Kind = "government-interception"
	KindAdware      Kind = "adware"
	KindOEMKeyLeak  Kind = "oem-key-leak"
	KindCorporate   Kind = "corporate-interception"
	KindTestFixture Kind = "test-fixture"
	KindUser        Kind = "user" // added by a user's own file, no curation
)

func (k Kind) valid() bool {
	switch k {
	case KindGovernment, KindAdware, KindOEMKeyLeak, KindCorporate, KindTestFixture, KindUser:
		return true
	}
	return false
}

// Entry is one blocked key with its provenance. Certificate is optional: an
// entry may be known only by its SPKI hash (as many of Chromium's are).
type Entry struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Country     string   `json:"country,omitempty"` // ISO 3166 alpha-2 of the operator, when a state
	Kind        Kind     `json:"kind"`
	FirstSeen   string   `json:"first_seen,omitempty"` // YYYY-MM-DD or YYYY-MM or YYYY
	BlockedBy   []string `json:"blocked_by,omitempty"` // browsers that refuse it: chrome, firefox, safari, edge
	Chromium    []string `json:"chromium_lists,omitempty"`
	References  []string `json:"references,omitempty"`
	Notes       string   `json:"notes,omitempty"`
	TestOnly    bool     `json:"test_only,omitempty"`
	SPKISHA256  string   `json:"spki_sha256"`
	CertSHA256  string   `json:"cert_sha256,omitempty"`
	Certificate string   `json:"certificate,omitempty"` // PEM

	// Evidence references what a reviewer saw before listing the key: a
	// URL, or the path of an evidence bundle of mitmguard report --propose.
	Evidence string `json:"evidence,omitempty"`
	// Added is the day (YYYY-MM-DD) the entry joined the published list;
	// blocklist merge sets it.
	Added string `json:"added,omitempty"`

	spki chain.Hash
	cert *chain.Cert // nil when the entry has no certificate
}

// SPKI returns the blocked key's hash.
func (e *Entry) SPKI() chain.Hash { return e.spki }

// Cert returns the entry's certificate, or nil when it is known by key only.
func (e *Entry) Cert() *chain.Cert { return e.cert }

// The values accepted in BlockedBy and Chromium.
var (
	browsers       = map[string]bool{"chrome": true, "firefox": true, "safari": true, "edge": true}
	chromiumLists  = map[string]bool{"blocked": true, "known-interception": true}
	idPattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
)

// validate checks the entry and fills its derived fields.
func (e *Entry) validate() error {
	if !idPattern.MatchString(e.ID) {
		return fieldError("id", "must be 1-64 characters of a-z, 0-9, '.', '-'")
	}
	if e.Name == "" {
		return fieldError("name", "is required")
	}
	if !e.Kind.valid() {
		return fieldError("kind", fmt.Sprintf("unknown kind %q", e.Kind))
	}
	if e.Country != "" && !countryPattern.MatchString(e.Country) {
		return fieldError("country", "must be an ISO 3166 alpha-2 code such as KZ")
	}
	if e.FirstSeen != "" && !validDate(e.FirstSeen) {
		return fieldError("first_seen", "must be YYYY, YYYY-MM or YYYY-MM-DD")
	}
	if e.Added != "" {
		if _, err := time.Parse(time.DateOnly, e.Added); err != nil {
			return fieldError("added", "must be YYYY-MM-DD")
		}
	}
	for _, b := range e.BlockedBy {
		if !browsers[b] {
			return fieldError("blocked_by", fmt.Sprintf("unknown browser %q", b))
		}
	}
	for _, l := range e.Chromium {
		if !chromiumLists[l] {
			return fieldError("chromium_lists", fmt.Sprintf("unknown list %q", l))
		}
	}
	if e.Certificate != "" {
		c, err := chain.ParsePEM([]byte(e.Certificate))
		if err != nil {
			return fieldError("certificate", err.Error())
		}
		if len(c) != 1 {
			return fieldError("certificate", "must hold exactly one certificate")
		}
		e.cert = c[0]
	}
	switch {
	case e.SPKISHA256 == "" && e.cert != nil:
		e.spki = e.cert.SPKI
		e.SPKISHA256 = e.spki.String()
	default:
		h, err := chain.ParseHash(e.SPKISHA256)
		if err != nil {
			return fieldError("spki_sha256", "must be the hex SHA-256 of the SubjectPublicKeyInfo")
		}
		e.spki = h
	}
	if e.cert != nil && e.cert.SPKI != e.spki {
		return fieldError("spki_sha256", "does not match the certificate's key ("+e.cert.SPKI.String()+")")
	}
	if e.CertSHA256 != "" {
		h, err := chain.ParseHash(e.CertSHA256)
		if err != nil {
			return fieldError("cert_sha256", "must be a hex SHA-256")
		}
		if e.cert != nil && e.cert.SHA256 != h {
			return fieldError("cert_sha256", "does not match the certificate ("+e.cert.SHA256.String()+")")
		}
	} else if e.cert != nil {
		e.CertSHA256 = e.cert.SHA256.String()
	}
	return nil
}

func validDate(s string) bool {
	for _, layout := range []string{"2006-01-02", "2006-01", "2006"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

type fieldErr struct{ field, msg string }

func fieldError(field, msg string) error { return &fieldErr{field, msg} }
func (e *fieldErr) Error() string        { return e.field + " " + e.msg }
