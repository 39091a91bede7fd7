package lab

import (
	"crypto/tls"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Close ends every connection the lab holds, stalled ones included, and
// leaves no goroutine behind.
func TestCloseLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
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
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) { // the client-side dial goroutine may linger briefly
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, g, buf[:runtime.Stack(buf, true)])
	}
}
