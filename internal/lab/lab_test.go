package lab

import (
	"crypto/tls"
	"io"

	"github.com/mitmguard/mitmguard/internal/leak"
	"strings"
	"testing"
	"time"
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
