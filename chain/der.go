package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Hash is a SHA-256 digest, the unit of identity for keys and certificates
// throughout mitmguard.
type Hash [sha256.Size]byte

// String returns the lowercase hex form used in files and JSON.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash as lowercase hex, for JSON.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	*h = v
	return err
}

// ParseHash reads a lowercase or uppercase hex SHA-256.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, errors.New("chain: not a hex SHA-256: " + quote(s))
	}
	copy(h[:], b)
	return h, nil
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + s + `"`
}

// Fields are the parts of a certificate that can be read from its DER even
// when crypto/x509 refuses the certificate as a whole.
type Fields struct {
	RawIssuer  []byte
	RawSubject []byte
	RawSPKI    []byte
}

var errMalformed = errors.New("chain: malformed certificate DER")

// ParseFields walks the outer structure of an X.509 certificate:
// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
// and TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }.
// It does not interpret the serial, so a negative one is no obstacle.
func ParseFields(der []byte) (Fields, error) {
	var f Fields
	in := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, asn1.SEQUENCE) || !in.Empty() {
		return f, errMalformed
	}
	if !cert.ReadASN1(&tbs, asn1.SEQUENCE) {
		return f, errMalformed
	}
	var issuer, subject, spki cryptobyte.String
	if !tbs.SkipOptionalASN1(asn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(asn1.INTEGER) ||
		!tbs.SkipASN1(asn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&issuer, asn1.SEQUENCE) ||
		!tbs.SkipASN1(asn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&subject, asn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&spki, asn1.SEQUENCE) {
		return f, errMalformed
	}
	f.RawIssuer, f.RawSubject, f.RawSPKI = issuer, subject, spki
	return f, nil
}

// SPKIHash returns the SHA-256 of the certificate's DER SubjectPublicKeyInfo,
// the value browsers' block lists are keyed by (a re-issued certificate with
// the same key has the same SPKI hash).
func SPKIHash(der []byte) (Hash, error) {
	f, err := ParseFields(der)
	if err != nil {
		return Hash{}, err
	}
	return sha256.Sum256(f.RawSPKI), nil
}
