// Package clienttest holds the clients that the tests of detect and
// detect/detecthttp judge: uTLS parrots of today's browsers with their real
// User-Agents, the raw ClientHello a parrot sends, and a test CA for the
// servers they connect to. It is for tests only (internal), so that no test
// hook sits in a public API and no helper is copied between the packages.
package clienttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect/tlshello"
)

// ChromeUA is Chrome 133's User-Agent on Windows.
const ChromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36"

// Parrot is a uTLS imitation of a browser, with that browser's User-Agent.
type Parrot struct {
	Name string
	ID   utls.ClientHelloID
	UA   string
}

// Parrots are today's browsers as uTLS imitates them.
var Parrots = []Parrot{
	{"Chrome 133 on Windows", utls.HelloChrome_133, ChromeUA},
	{"Chrome 131 on Android", utls.HelloChrome_131, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"},
	{"Chrome 120 on macOS", utls.HelloChrome_120, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
	{"Edge 106 on Windows", utls.HelloEdge_106, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/106.0.0.0 Safari/537.36 Edg/106.0.1370.34"},
	{"Edge 85 on Windows", utls.HelloEdge_85, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/85.0.4183.102 Safari/537.36 Edg/85.0.564.51"},
	{"Firefox 120 on Linux", utls.HelloFirefox_120, "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"},
	{"Firefox 102 ESR on Windows", utls.HelloFirefox_102, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:102.0) Gecko/20100101 Firefox/102.0"},
	{"Safari 16 on macOS", utls.HelloSafari_16_0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Safari/605.1.15"},
	{"Safari on iOS 14", utls.HelloIOS_14, "Mozilla/5.0 (iPhone; CPU iPhone OS 14_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Mobile/15E148 Safari/604.1"},
	{"Chrome on iOS 14 (WebKit)", utls.HelloIOS_14, "Mozilla/5.0 (iPhone; CPU iPhone OS 14_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1"},
}

// Hello returns the ClientHello records the parrot id sends.
func Hello(t testing.TB, id utls.ClientHelloID) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	// A parrot that fails before its hello is whole fails the test, not hangs it.
	server.SetReadDeadline(time.Now().Add(30 * time.Second))
	go utls.UClient(client, &utls.Config{ServerName: "www.example.com", InsecureSkipVerify: true}, id).Handshake()
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		n, err := server.Read(chunk)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, chunk[:n]...)
		_, err = tlshello.Parse(buf)
		if err == nil {
			client.Close()
			return buf
		}
		if !errors.Is(err, tlshello.ErrIncomplete) {
			// More bytes cannot mend a hello that does not parse.
			t.Fatal(err)
		}
	}
}

// CA makes a root and a server certificate for localhost it issued:
// Firefox takes no self-signed server certificate as a trust anchor.
func CA(t testing.TB) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mitmguard test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, leafKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return root, tls.Certificate{Certificate: [][]byte{leafDER, der}, PrivateKey: leafKey}
}

// Cert makes a server certificate for localhost (issued by a test root).
func Cert(t testing.TB) tls.Certificate {
	t.Helper()
	_, cert := CA(t)
	return cert
}

// Verdict names a Result's Intercepted for test logs.
func Verdict(intercepted *bool) string {
	if intercepted == nil {
		return "unknown"
	}
	if *intercepted {
		return "intercepted"
	}
	return "not intercepted"
}
