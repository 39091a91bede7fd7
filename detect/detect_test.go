package detect_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/detecthttp"
	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// The tests here judge real handshakes through the whole server side: a
// capturing listener, the middleware and the verdict handler of package
// detecthttp. They are external tests, as detecthttp imports detect.

// serve runs the example site over a capturing listener on loopback.
func serve(t testing.TB) (addr string, cert tls.Certificate) {
	t.Helper()
	return serveWith(t, detecthttp.Options{Header: "Mitmguard-Intercepted"})
}

// serveWith runs the example site with the options.
func serveWith(t testing.TB, opts detecthttp.Options) (addr string, cert tls.Certificate) {
	t.Helper()
	return serveCert(t, opts, clienttest.Cert(t))
}

// serveCert runs the example site with the options and certificate.
func serveCert(t testing.TB, opts detecthttp.Options, cert tls.Certificate) (string, tls.Certificate) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// HTTP/1.1 only; a client that offers only h2 (one parrot does) gets no
	// ALPN answer, and the test clients speak HTTP/1.1.
	base := &tls.Config{Certificates: []tls.Certificate{cert}}
	base.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		for _, p := range h.SupportedProtos {
			if p == "http/1.1" {
				c.NextProtos = []string{"http/1.1"}
			}
		}
		return c, nil
	}
	// The verdict as JSON, as the example site (package site) serves it.
	mux := http.NewServeMux()
	mux.Handle("/mitmguard/verdict", detecthttp.VerdictHandler())
	mux.Handle("/", http.NotFoundHandler())
	srv := &http.Server{Handler: detecthttp.Middleware(mux, opts), ConnContext: detecthttp.ConnContext, TLSConfig: base}
	go srv.Serve(tls.NewListener(detecthttp.NewListener(ln), srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), cert
}

// verdictOver sends GET /mitmguard/verdict with the User-Agent over conn.
func verdictOver(t testing.TB, conn net.Conn, ua string) *detect.Result {
	t.Helper()
	fmt.Fprintf(conn, "GET /mitmguard/verdict HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n", ua)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r detect.Result
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// Today's browsers, as uTLS parrots them, over real handshakes on loopback,
// with their real User-Agents: none is judged intercepted.
func TestBrowsersNotIntercepted(t *testing.T) {
	addr, _ := serve(t)
	for _, p := range clienttest.Parrots {
		t.Run(p.Name, func(t *testing.T) {
			for i := 0; i < 5; i++ { // Chrome permutes its extensions: try several
				raw, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				uc := utls.UClient(raw, &utls.Config{ServerName: "localhost", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, p.ID)
				if err := uc.Handshake(); err != nil {
					t.Fatalf("handshake: %v", err)
				}
				r := verdictOver(t, uc, p.UA)
				uc.Close()
				if r.Intercepted == nil || *r.Intercepted {
					t.Fatalf("judged %v: %+v", r.Intercepted, r.Reasons)
				}
			}
		})
	}
}

// Go's crypto/tls and OpenSSL under a browser's User-Agent are judged
// intercepted, with the product named.
func TestNonBrowserStacksIntercepted(t *testing.T) {
	addr, _ := serve(t)
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	r := verdictOver(t, conn, clienttest.ChromeUA)
	conn.Close()
	if r.Intercepted == nil || !*r.Intercepted || r.Product != "Go crypto/tls" {
		t.Errorf("Go crypto/tls: %v %q %+v", r.Intercepted, r.Product, r.Reasons)
	}

	openssl := testtool.Need(t, "openssl", "openssl")
	cmd := exec.Command(openssl, "s_client", "-quiet", "-connect", addr, "-servername", "localhost")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("GET /mitmguard/verdict HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n", clienttest.ChromeUA))
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("openssl s_client: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(out))), nil)
	if err != nil {
		t.Fatalf("openssl response: %v\n%s", err, out)
	}
	body, _ := io.ReadAll(resp.Body)
	var or detect.Result
	if err := json.Unmarshal(body, &or); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if or.Intercepted == nil || !*or.Intercepted || or.Product != "OpenSSL" {
		t.Errorf("OpenSSL: %v %q %+v", or.Intercepted, or.Product, or.Reasons)
	}
	if resp.Header.Get("Mitmguard-Intercepted") != "yes; product=OpenSSL" {
		t.Errorf("header %q", resp.Header.Get("Mitmguard-Intercepted"))
	}
}

// A client that names no browser gets "unknown", not a false alarm.
func TestUnknownClient(t *testing.T) {
	addr, _ := serve(t)
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if r := verdictOver(t, conn, "curl/8.5.0"); r.Intercepted != nil {
		t.Errorf("curl judged %v", *r.Intercepted)
	}
}

// The lab middlebox in front of the detecting server: a Chrome parrot whose
// connection the box re-originates is judged intercepted.
func TestLabMiddleboxIntercepted(t *testing.T) {
	addr, cert := serve(t)
	root, _ := x509.ParseCertificate(cert.Certificate[len(cert.Certificate)-1])
	l, err := lab.Start(lab.Config{Origin: addr, OriginRoot: root, ForgedKeyBits: 1024,
		Targets: map[string]lab.Action{"localhost": lab.Intercept}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw, err := net.Dial("tcp", l.MiddleboxAddr)
	if err != nil {
		t.Fatal(err)
	}
	uc := utls.UClient(raw, &utls.Config{ServerName: "localhost", InsecureSkipVerify: true}, utls.HelloChrome_133)
	if err := uc.Handshake(); err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	r := verdictOver(t, uc, clienttest.ChromeUA)
	if r.Intercepted == nil || !*r.Intercepted || len(r.Reasons) == 0 {
		t.Fatalf("through the middlebox: %v %+v", r.Intercepted, r.Reasons)
	}
	t.Logf("middlebox: product %q, reasons %d, JA4 %s", r.Product, len(r.Reasons), r.JA4)
}

// Java's own TLS stack (keytool -printcert -sslserver makes a real JSSE
// handshake) under a browser's User-Agent is judged intercepted, by name.
func TestJavaIntercepted(t *testing.T) {
	keytool := testtool.Need(t, "keytool", "default-jre-headless")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(keytool, "-printcert", "-sslserver", ln.Addr().String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c, err := detecthttp.NewListener(ln).Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	var ch *detect.ClientHello
	for ch == nil {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("reading Java's ClientHello: %v", err)
		}
		ch, _, _ = c.(*detecthttp.Conn).ClientHello()
	}
	r := detect.Default().Check(ch, clienttest.ChromeUA, nil)
	if r.Intercepted == nil || !*r.Intercepted || r.Product != "Java (JSSE)" {
		t.Errorf("Java: %v %q %+v", r.Intercepted, r.Product, r.Reasons)
	}
}
