package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"
)

// issuer is a certificate with its key.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newSerial() *big.Int {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return s
}

func newECKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// newCA makes a CA certificate signed by parent (self-signed when nil).
func newCA(subject pkix.Name, parent *issuer, now time.Time) (*issuer, error) {
	key := newECKey()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	return &issuer{cert: c, key: key}, err
}

// issueLeaf makes a server certificate for names (its subject alternative
// names, the names clients check) with cn as its subject's common name.
func (ca *issuer) issueLeaf(cn string, names []string, aiaURL string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key := newECKey()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"mitmguard lab"}},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if aiaURL != "" {
		tmpl.IssuingCertificateURL = []string{aiaURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

// PEM encodes certificates as PEM blocks.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// pki is a lab's certificate authorities.
type pki struct {
	publicRoot, publicCA, national, security *issuer
}

// newPKI makes the lab's authorities: a "public" root and the intermediate
// that issues origins' certificates; a "national" root and the "Security
// Certificate" intermediate under it that the middlebox forges with.
func newPKI(now time.Time) (*pki, error) {
	var p pki
	var err error
	if p.publicRoot, err = newCA(pkix.Name{CommonName: "mitmguard lab public root", Organization: []string{"mitmguard lab"}}, nil, now); err != nil {
		return nil, err
	}
	if p.publicCA, err = newCA(pkix.Name{CommonName: "mitmguard lab public CA 1", Organization: []string{"mitmguard lab"}}, p.publicRoot, now); err != nil {
		return nil, err
	}
	if p.national, err = newCA(pkix.Name{CommonName: "mitmguard lab national root", Country: []string{"KZ"}}, nil, now); err != nil {
		return nil, err
	}
	if p.security, err = newCA(pkix.Name{CommonName: "Security Certificate", Country: []string{"KZ"}}, p.national, now); err != nil {
		return nil, err
	}
	return &p, nil
}
