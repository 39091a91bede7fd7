// Package roots owns the public root program that mitmguard measures chains
// against: the Mozilla (NSS) root set as golang.org/x/crypto/x509roots/fallback
// ships it. Using a fixed, published set rather than the device's own store is
// the point: an interception root that a user was told to install is in the
// device store, and must not make a forged chain look public.
package roots

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

type set struct {
	pool  *x509.CertPool
	certs []*x509.Certificate
	spki  map[[32]byte]bool
}

var mozilla = sync.OnceValue(func() *set {
	s := &set{pool: x509.NewCertPool(), spki: map[[32]byte]bool{}}
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			panic("roots: the Mozilla bundle holds an unparsable root: " + err.Error())
		}
		if r.Constraint != nil {
			s.pool.AddCertWithConstraint(c, r.Constraint)
		} else {
			s.pool.AddCert(c)
		}
		s.certs = append(s.certs, c)
		s.spki[sha256.Sum256(c.RawSubjectPublicKeyInfo)] = true
	}
	return s
})

// Public returns a new pool of the Mozilla roots plus extra, which callers
// may use to add roots they treat as public (the tests' lab root, a private
// PKI a company treats as its own). The pool is the caller's to modify.
func Public(extra ...*x509.Certificate) *x509.CertPool {
	p := mozilla().pool.Clone()
	for _, c := range extra {
		p.AddCert(c)
	}
	return p
}

// Certificates returns the Mozilla roots. The caller must not modify them.
func Certificates() []*x509.Certificate { return mozilla().certs }

// IsMozilla reports whether a certificate with this SPKI SHA-256 is a root of
// the Mozilla program. Keyed by key, not certificate, because root programs
// trust keys: a re-issued root with the same key is the same trust anchor.
func IsMozilla(spki [32]byte) bool { return mozilla().spki[spki] }
