package chain

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxCertificates bounds a chain read from outside; real chains have 2-5.
const MaxCertificates = 32

// Cert is one presented certificate. X509 is nil when crypto/x509 refused
// the DER (ParseErr says why); SPKI, SHA256 and the raw names are known as
// long as the outer structure is sound.
type Cert struct {
	DER      []byte
	X509     *x509.Certificate
	ParseErr error
	SPKI     Hash
	SHA256   Hash
	Fields
	// TrustSettings are OpenSSL's trust settings that followed the
	// certificate in a TRUSTED CERTIFICATE block, nil otherwise. mitmguard
	// does not interpret them; a reader that builds a trust store the way
	// Go does skips such certificates.
	TrustSettings []byte
}

// NewCert reads one DER certificate. It fails only when not even the
// subject, issuer and key can be located; a certificate that crypto/x509
// rejects for a subtler reason is returned with ParseErr set.
func NewCert(der []byte) (*Cert, error) {
	f, err := ParseFields(der)
	if err != nil {
		return nil, err
	}
	c := &Cert{DER: der, Fields: f, SPKI: sha256.Sum256(f.RawSPKI), SHA256: sha256.Sum256(der)}
	c.X509, c.ParseErr = x509.ParseCertificate(der)
	return c, nil
}

// FromX509 wraps an already parsed certificate.
func FromX509(x *x509.Certificate) *Cert {
	return &Cert{
		DER: x.Raw, X509: x,
		SPKI: sha256.Sum256(x.RawSubjectPublicKeyInfo), SHA256: sha256.Sum256(x.Raw),
		Fields: Fields{RawIssuer: x.RawIssuer, RawSubject: x.RawSubject, RawSPKI: x.RawSubjectPublicKeyInfo},
	}
}

// Subject returns the subject distinguished name in RFC 2253 form.
func (c *Cert) Subject() string { return nameString(c.RawSubject) }

// Issuer returns the issuer distinguished name in RFC 2253 form.
func (c *Cert) Issuer() string { return nameString(c.RawIssuer) }

// SelfIssued reports whether subject and issuer are the same name.
func (c *Cert) SelfIssued() bool { return bytes.Equal(c.RawSubject, c.RawIssuer) }

func nameString(raw []byte) string { return NameString(raw) }

// MaxNameAttributes bounds the attributes NameString renders. A forger may
// put tens of thousands of attributes in a name; rendering them all would
// cost time quadratic in their number (pkix builds the string by
// concatenation) and bury the report. Real names have fewer than ten.
const MaxNameAttributes = 32

// NameString renders a DER distinguished name in RFC 2253 form, as
// pkix.Name.String does, but with at most MaxNameAttributes attributes: a
// longer name is cut, and the text says how many attributes were left out.
func NameString(raw []byte) string {
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdn); err != nil || len(rest) != 0 {
		return "<unreadable name>"
	}
	total := 0
	for _, set := range rdn {
		total += len(set)
	}
	omitted := 0
	if total > MaxNameAttributes {
		rdn, omitted = capRDN(rdn, MaxNameAttributes), total-MaxNameAttributes
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	s := n.String()
	if omitted > 0 {
		s += fmt.Sprintf(",...(%d more attributes not shown)", omitted)
	}
	return s
}

// capRDN keeps the last max attributes of a name: RFC 2253 renders the
// name last RDN first, so what is cut is the end of the rendered text.
func capRDN(rdn pkix.RDNSequence, max int) pkix.RDNSequence {
	start := len(rdn)
	for start > 0 && max > 0 {
		start--
		set := rdn[start]
		if len(set) > max {
			rdn[start] = set[len(set)-max:]
		}
		max -= len(rdn[start])
	}
	return rdn[start:]
}

// PEM returns the certificate as a PEM block.
func (c *Cert) PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
}

// Chain is a presented chain, leaf first, in the order the server sent it.
type Chain []*Cert

// FromDER reads a chain from raw certificates, as crypto/tls hands them over.
func FromDER(ders [][]byte) (Chain, error) {
	if len(ders) > MaxCertificates {
		return nil, &TooLongError{N: len(ders)}
	}
	c := make(Chain, 0, len(ders))
	for i, der := range ders {
		cert, err := NewCert(der)
		if err != nil {
			return nil, &CertError{Index: i, Err: err}
		}
		c = append(c, cert)
	}
	return c, nil
}

// Leaf returns the first certificate, or nil for an empty chain.
func (c Chain) Leaf() *Cert {
	if len(c) == 0 {
		return nil
	}
	return c[0]
}

// Parsed returns the certificates crypto/x509 could parse, in order.
func (c Chain) Parsed() []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(c))
	for _, cert := range c {
		if cert.X509 != nil {
			out = append(out, cert.X509)
		}
	}
	return out
}

// DER returns the raw certificates, in order.
func (c Chain) DER() [][]byte {
	out := make([][]byte, len(c))
	for i, cert := range c {
		out[i] = cert.DER
	}
	return out
}

// CheckOrder verifies that each certificate was issued by the next one by
// name, the order TLS requires and the order a chain file must use. A chain
// listed root first is reported as such, since that is the usual mistake.
func (c Chain) CheckOrder() error {
	for i := 0; i+1 < len(c); i++ {
		if !bytes.Equal(c[i].RawIssuer, c[i+1].RawSubject) {
			return &OrderError{Index: i, Reversed: c.reversed(), Chain: c}
		}
	}
	return nil
}

func (c Chain) reversed() bool {
	for i := 0; i+1 < len(c); i++ {
		if !bytes.Equal(c[i+1].RawIssuer, c[i].RawSubject) {
			return false
		}
	}
	return len(c) > 1
}

// Info is the description of one certificate that reports and JSON carry.
type Info struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	SPKISHA256 string    `json:"spki_sha256"`
	SHA256     string    `json:"sha256"`
	NotBefore  time.Time `json:"not_before,omitzero"`
	NotAfter   time.Time `json:"not_after,omitzero"`
	DNSNames   []string  `json:"dns_names,omitempty"`
	IsCA       bool      `json:"is_ca,omitempty"`
	ParseError string    `json:"parse_error,omitempty"`
	PEM        string    `json:"pem"`
}

// Info describes the certificate.
func (c *Cert) Info() Info {
	in := Info{
		Subject: c.Subject(), Issuer: c.Issuer(),
		SPKISHA256: c.SPKI.String(), SHA256: c.SHA256.String(),
		PEM: c.PEM(),
	}
	if c.X509 != nil {
		in.NotBefore, in.NotAfter = c.X509.NotBefore.UTC(), c.X509.NotAfter.UTC()
		in.DNSNames = c.X509.DNSNames
		in.IsCA = c.X509.IsCA
	}
	if c.ParseErr != nil {
		in.ParseError = c.ParseErr.Error()
	}
	return in
}

// Infos describes every certificate of the chain.
func (c Chain) Infos() []Info {
	out := make([]Info, len(c))
	for i, cert := range c {
		out[i] = cert.Info()
	}
	return out
}

// ReadPEM reads every CERTIFICATE block of r, in order. Text between blocks
// is ignored, as openssl does; a block of another type, a block whose DER is
// not a certificate, or no certificate at all is an error that says where.
func ReadPEM(r io.Reader) (Chain, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPEMBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("chain: PEM input larger than %d bytes", maxPEMBytes)
	}
	return ParsePEM(data)
}

const maxPEMBytes = 4 << 20

// ParsePEM is ReadPEM on bytes in memory.
func ParsePEM(data []byte) (Chain, error) {
	var c Chain
	for cert, err := range PEMCertificates(data) {
		if err != nil {
			return nil, err
		}
		if len(c) == MaxCertificates {
			return nil, &TooLongError{N: len(c) + 1}
		}
		c = append(c, cert)
	}
	if len(c) == 0 {
		return nil, ErrNoCertificates
	}
	return c, nil
}

// PEMCertificates yields the certificates of the PEM blocks in data, in
// order: a certificate, or a *CertError for a block that holds none. It is
// mitmguard's one PEM certificate reader; ParsePEM is its strict form, and a
// lenient caller (a system bundle) skips the errors. Text between blocks is
// ignored. A TRUSTED CERTIFICATE block (openssl x509 -trustout) is the DER
// certificate followed by OpenSSL's trust settings: the certificate is
// taken and the trust settings ignored, since mitmguard decides trust itself.
func PEMCertificates(data []byte) iter.Seq2[*Cert, error] {
	return func(yield func(*Cert, error) bool) {
		for i := 0; ; i++ {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				return
			}
			cert, err := blockCert(block)
			if err != nil {
				cert, err = nil, &CertError{Index: i, Err: err}
			}
			if !yield(cert, err) {
				return
			}
		}
	}
}

func blockCert(block *pem.Block) (*Cert, error) {
	switch block.Type {
	case "CERTIFICATE":
		return NewCert(block.Bytes)
	case "TRUSTED CERTIFICATE":
		in := cryptobyte.String(block.Bytes)
		var der cryptobyte.String
		if !in.ReadASN1Element(&der, cbasn1.SEQUENCE) {
			return nil, errMalformed
		}
		c, err := NewCert(der)
		if err == nil {
			c.TrustSettings = []byte(in)
		}
		return c, err
	}
	return nil, fmt.Errorf("PEM block of type %q, want CERTIFICATE", block.Type)
}

// ErrNoCertificates is returned for input that holds no PEM certificate.
var ErrNoCertificates = errors.New("chain: no PEM certificate found (expected -----BEGIN CERTIFICATE----- blocks)")

// CertError says which certificate of the input could not be read.
type CertError struct {
	Index int // 0-based position in the input
	Err   error
}

func (e *CertError) Error() string {
	return fmt.Sprintf("chain: certificate %d: %v", e.Index+1, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// TooLongError is returned for a chain longer than MaxCertificates.
type TooLongError struct{ N int }

func (e *TooLongError) Error() string {
	return fmt.Sprintf("chain: more than %d certificates", MaxCertificates)
}

// OrderError is returned by CheckOrder: certificate Index+1 did not issue
// certificate Index.
type OrderError struct {
	Index    int
	Reversed bool // the whole chain is in root-first order
	Chain    Chain
}

func (e *OrderError) Error() string {
	if e.Reversed {
		return "chain: the certificates are in reverse order (root first); list the leaf first, then each issuer"
	}
	return fmt.Sprintf("chain: certificate %d (%s) was not issued by certificate %d (%s); list the leaf first, then each issuer",
		e.Index+1, e.Chain[e.Index].Subject(), e.Index+2, e.Chain[e.Index+1].Subject())
}
