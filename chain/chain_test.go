package chain

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/testtool"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const google = "../verdict/testdata/go-x509/www.google.com-2023.pem"

func TestParsePEM(t *testing.T) {
	c, err := ParsePEM(append([]byte("leading text\n"), read(t, google)...))
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 2 || c.Leaf().Subject() != "CN=www.google.com" || c[1].Subject() != "CN=GTS CA 1C3,O=Google Trust Services LLC,C=US" {
		t.Fatalf("got %d: %s / %s", len(c), c.Leaf().Subject(), c[1].Subject())
	}
	if err := c.CheckOrder(); err != nil {
		t.Error(err)
	}
	in := c.Leaf().Info()
	if in.Issuer != c[1].Subject() || len(in.SPKISHA256) != 64 || in.NotBefore.IsZero() || !strings.HasPrefix(in.PEM, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("info %+v", in)
	}
	if len(c.DER()) != 2 || len(c.Parsed()) != 2 {
		t.Error("DER/Parsed")
	}
}

func TestOrder(t *testing.T) {
	rev, err := ParsePEM(read(t, "../verdict/testdata/go-x509/www.google.com-2023-reversed.pem"))
	if err != nil {
		t.Fatal(err)
	}
	err = rev.CheckOrder()
	var oe *OrderError
	if !errors.As(err, &oe) || !oe.Reversed || !strings.Contains(err.Error(), "reverse order") {
		t.Fatalf("reversed chain: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"not PEM":     "hello world",
		"private key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"not DER":     "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		if _, err := ParsePEM([]byte(in)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := ParsePEM(nil); !errors.Is(err, ErrNoCertificates) {
		t.Errorf("empty: %v", err)
	}
	long := strings.Repeat(string(read(t, google)), MaxCertificates)
	var tl *TooLongError
	if _, err := ParsePEM([]byte(long)); !errors.As(err, &tl) {
		t.Errorf("long chain: %v", err)
	}
}

// DSDTestProvider has a negative serial: crypto/x509 refuses it, the DER
// walker still finds its key, and its SPKI hash is the one Chromium lists.
func TestNegativeSerial(t *testing.T) {
	c, err := ParsePEM(read(t, "../blocklist/testdata/chromium/130ad4e0633521290531b6651f5759b0bc7bc656709ff8f365c2143b0389b6f6.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if c[0].X509 != nil || c[0].ParseErr == nil {
		t.Fatal("expected crypto/x509 to refuse the negative serial")
	}
	if c[0].SPKI.String() != "130ad4e0633521290531b6651f5759b0bc7bc656709ff8f365c2143b0389b6f6" {
		t.Errorf("SPKI %s", c[0].SPKI)
	}
	if c[0].Subject() != "CN=DSDTestProvider,OU=DSDTestProvider,O=DSDTestProvider" || c[0].Info().ParseError == "" {
		t.Errorf("subject %q", c[0].Subject())
	}
}

func TestParseHash(t *testing.T) {
	if _, err := ParseHash("zz"); err == nil {
		t.Error("bad hash accepted")
	}
	h, err := ParseHash(strings.Repeat("AB", 32))
	if err != nil || h.String() != strings.Repeat("ab", 32) {
		t.Error(h, err)
	}
}

// trustedPEM converts a PEM certificate file with the real openssl into a
// TRUSTED CERTIFICATE file (the certificate followed by OpenSSL's trust
// settings), as `openssl x509 -trustout` writes them.
func trustedPEM(t *testing.T, in string) []byte {
	t.Helper()
	openssl := testtool.Need(t, "openssl", "openssl")
	out, err := exec.Command(openssl, "x509", "-in", in, "-trustout", "-addtrust", "serverAuth", "-setalias", "test root").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return out
}

// ParsePEM reads real `openssl x509 -trustout` output: the certificate, with
// OpenSSL's trust settings ignored. It refused every such file before.
func TestParsePEMTrustedCertificate(t *testing.T) {
	plain, err := ParsePEM(read(t, google))
	if err != nil {
		t.Fatal(err)
	}
	data := trustedPEM(t, google)
	if !strings.Contains(string(data), "-----BEGIN TRUSTED CERTIFICATE-----") {
		t.Fatalf("openssl wrote no TRUSTED CERTIFICATE block:\n%s", data)
	}
	c, err := ParsePEM(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 1 || c[0].X509 == nil || !bytes.Equal(c[0].DER, plain[0].DER) {
		t.Fatalf("got %d certificates, want the leaf's DER", len(c))
	}
	// The trust settings alone, or a block that is not even a SEQUENCE, are refused.
	bad := pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: []byte{0x04, 0x01, 0x00}})
	if _, err := ParsePEM(bad); err == nil {
		t.Error("a TRUSTED CERTIFICATE block without a certificate accepted")
	}
}
