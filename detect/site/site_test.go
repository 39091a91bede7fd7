package site

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/detect/detecthttp"
)

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36"

// The example site's page warns an intercepted visitor (Go's crypto/tls
// under Chrome's User-Agent), names the product and gives the advice; its
// certificate is the one SelfSigned makes.
func TestPageWarns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := SelfSigned(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	srv := &http.Server{Handler: Handler(detecthttp.Options{}), ConnContext: detecthttp.ConnContext, TLSConfig: cfg}
	go srv.Serve(tls.NewListener(detecthttp.NewListener(ln), cfg))
	defer srv.Close()

	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "127.0.0.1", RootCAs: pool(t, cert), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("the SelfSigned certificate does not verify for its address: %v", err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n", chromeUA)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"being monitored", "Go crypto/tls", "VPN or Tor", "Change the passwords", "mitmguard audit"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func pool(t *testing.T, cert tls.Certificate) *x509.CertPool {
	t.Helper()
	c, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}
