package lab

import (
	"crypto/tls"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/leak"
)

// Close ends every connection the lab holds, stalled ones included, and
// leaves no goroutine behind.
func TestCloseLeavesNothing(t *testing.T) {
	leak.Check(t, 2, func() { // the client-side dial goroutine may linger briefly
		closeWithConnections(t)
	})
}

func closeWithConnections(t *testing.T) {
	l, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := tls.Dial("tcp", l.OriginAddr, &tls.Config{RootCAs: l.PublicPool(), ServerName: "github.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	// A connection the middlebox stalls, and one it relays.
	go tls.Dial("tcp", l.MiddleboxAddr, &tls.Config{InsecureSkipVerify: true, ServerName: "ok.ru"})
	relayed, err := tls.Dial("tcp", l.MiddleboxAddr, &tls.Config{RootCAs: l.PublicPool(), ServerName: "github.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer relayed.Close()
	io.WriteString(relayed, "GET / HTTP/1.1\r\nHost: github.com\r\n\r\n")
	buf := make([]byte, 512)
	n, _ := relayed.Read(buf)
	if !strings.Contains(string(buf[:n]), "hello from the lab origin") {
		t.Fatalf("relayed: %q", buf[:n])
	}
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// The origin's certificate has a common name that is none of its names, and
// the forger copies it: a reader of the chain cannot take the subject for the
// name that matched (issue: en.wikipedia.org was shown a leaf "CN=facebook.com").
func TestOriginCommonNameIsNeutral(t *testing.T) {
	l, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if slices.Contains(l.Names, OriginCommonName) || strings.Contains(OriginCommonName, ".") {
		t.Fatalf("OriginCommonName %q looks like a served name", OriginCommonName)
	}
	for _, c := range []struct{ addr, sni string }{
		{l.OriginAddr, "en.wikipedia.org"},
		{l.MiddleboxAddr, "en.wikipedia.org"}, // relayed
		{l.MiddleboxAddr, "facebook.com"},     // forged
	} {
		conn, err := tls.Dial("tcp", c.addr, &tls.Config{InsecureSkipVerify: true, ServerName: c.sni})
		if err != nil {
			t.Fatal(err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if leaf.Subject.CommonName != OriginCommonName || leaf.VerifyHostname(c.sni) != nil {
			t.Errorf("%s via %s: leaf CN %q, names %v", c.sni, c.addr, leaf.Subject.CommonName, leaf.DNSNames)
		}
	}
}
