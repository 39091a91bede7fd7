package blocklist

import (
	"crypto/sha256"
	"crypto/x509"

	"github.com/mitmguard/mitmguard/chain"
)

// Match says how a chain runs through a blocked key.
type Match struct {
	Entry *Entry
	// Index is the position in the chain of the certificate that carries the
	// blocked key, or of the certificate the blocked key signed when the
	// blocked root was not sent (then Completed is true).
	Index     int
	Completed bool
}

// Match returns the first way the chain runs through a blocked key, or nil.
// A certificate in the chain with a blocked key matches directly; otherwise a
// certificate whose issuer name is an entry's subject and whose signature
// verifies under that entry's key matches as a completion. Signatures are
// checked only in that second case, so a clean chain costs one map lookup per
// certificate and one per issuer name.
func (l *List) Match(c chain.Chain) *Match {
	if l == nil {
		return nil
	}
	for i, cert := range c {
		if e := l.bySPKI[cert.SPKI]; e != nil {
			return &Match{Entry: e, Index: i}
		}
	}
	for i, cert := range c {
		if e := l.issuerOf(cert); e != nil {
			return &Match{Entry: e, Index: i, Completed: true}
		}
	}
	return nil
}

// MatchX509 is Match for a chain of parsed certificates, such as one that
// crypto/x509 built. It hashes only the keys, so it is cheap enough to run on
// every handshake.
func (l *List) MatchX509(certs []*x509.Certificate) *Match {
	if l == nil {
		return nil
	}
	for i, x := range certs {
		if e := l.bySPKI[sha256.Sum256(x.RawSubjectPublicKeyInfo)]; e != nil {
			return &Match{Entry: e, Index: i}
		}
	}
	for i, x := range certs {
		if e := l.signerOf(x); e != nil {
			return &Match{Entry: e, Index: i, Completed: true}
		}
	}
	return nil
}

// issuerOf returns an entry whose key signed cert.
func (l *List) issuerOf(cert *chain.Cert) *Entry {
	if cert.X509 == nil {
		return nil
	}
	return l.signerOf(cert.X509)
}

func (l *List) signerOf(x *x509.Certificate) *Entry {
	for _, e := range l.bySubject[string(x.RawIssuer)] {
		if e.cert.X509 != nil && x.CheckSignatureFrom(e.cert.X509) == nil {
			return e
		}
	}
	return nil
}

// Certificates returns the entries' parsed certificates, for use as extra
// intermediates when building a chain that a middlebox sent without its root.
func (l *List) Certificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, e := range l.entries {
		if e.cert != nil && e.cert.X509 != nil {
			out = append(out, e.cert.X509)
		}
	}
	return out
}
