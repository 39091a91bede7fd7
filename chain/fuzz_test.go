package chain

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
)

// FuzzParsePEM: the chain reader returns a chain or an error for any input,
// and every certificate it returns re-encodes to the same DER.
func FuzzParsePEM(f *testing.F) {
	for _, name := range []string{google, "../blocklist/testdata/chromium/130ad4e0633521290531b6651f5759b0bc7bc656709ff8f365c2143b0389b6f6.pem"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	// openssl x509 -trustout: the certificate, then the trust settings.
	if b, err := os.ReadFile(google); err == nil {
		if c, err := ParsePEM(b); err == nil {
			aux := []byte{0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01}
			f.Add(pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: append(append([]byte{}, c[0].DER...), aux...)}))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParsePEM(data)
		if err != nil {
			return
		}
		for _, cert := range c {
			_ = cert.Info()
			again, err := ParsePEM([]byte(cert.PEM()))
			if err != nil || !bytes.Equal(again[0].DER, cert.DER) {
				t.Fatalf("PEM round trip: %v", err)
			}
		}
		_ = c.CheckOrder()
	})
}

// FuzzParseFields: the DER walker agrees with crypto/x509 on every
// certificate crypto/x509 accepts, and never panics on the rest.
func FuzzParseFields(f *testing.F) {
	if b, err := os.ReadFile(google); err == nil {
		c, _ := ParsePEM(b)
		for _, cert := range c {
			f.Add(cert.DER)
		}
	}
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		fields, err := ParseFields(der)
		x, xerr := x509.ParseCertificate(der)
		if xerr != nil {
			return
		}
		if err != nil {
			t.Fatalf("crypto/x509 parsed what the walker refused: %v", err)
		}
		if !bytes.Equal(fields.RawSPKI, x.RawSubjectPublicKeyInfo) || !bytes.Equal(fields.RawSubject, x.RawSubject) || !bytes.Equal(fields.RawIssuer, x.RawIssuer) {
			t.Fatal("walker and crypto/x509 disagree")
		}
	})
}
