package roots

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func TestMozilla(t *testing.T) {
	certs := Certificates()
	if len(certs) < 100 {
		t.Fatalf("only %d Mozilla roots", len(certs))
	}
	found := false
	for _, c := range certs {
		if c.Subject.CommonName == "GTS Root R1" {
			found = true
			if !IsMozilla(sha256.Sum256(c.RawSubjectPublicKeyInfo)) {
				t.Error("GTS Root R1 not recognised by key")
			}
		}
	}
	if !found {
		t.Error("GTS Root R1 missing")
	}
	if IsMozilla([32]byte{1}) {
		t.Error("random key recognised")
	}
	// Public(extra) trusts the extra root and leaves the shared set alone.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "extra root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	extra, _ := x509.ParseCertificate(der)
	if _, err := extra.Verify(x509.VerifyOptions{Roots: Public(extra)}); err != nil {
		t.Errorf("extra root not trusted: %v", err)
	}
	if _, err := extra.Verify(x509.VerifyOptions{Roots: Public()}); err == nil {
		t.Error("an extra root leaked into the shared public set")
	}
}
