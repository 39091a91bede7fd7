package locate

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/verdict"
)

// A host on this machine is one hop away: the first probe draws port
// unreachable.
func TestServerDistanceLoopback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the TTL of one datagram is set on Linux only")
	}
	for _, a := range []string{"127.0.0.1", "::1"} {
		d, err := serverDistance(context.Background(), netip.MustParseAddr(a), 1, 5, 2*time.Second)
		if err != nil || d != 1 {
			t.Errorf("%s: distance %d, %v; want 1", a, d, err)
		}
	}
	// A context that has ended stops the probe with its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := serverDistance(ctx, netip.MustParseAddr("127.0.0.1"), 1, 5, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// A trace that locates the lab's middlebox on this machine's loopback, with
// ServerDistance, also gives the server's hop count (1) and says where it
// came from; without it, ServerHops stays null as the CLI's contract has it.
func TestRunServerDistance(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the TTL of one write is set on Linux only")
	}
	l, err := lab.Start(lab.Config{ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cl := verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{l.PublicRoot}})
	for _, dist := range []bool{false, true} {
		r, err := Run(context.Background(), "facebook.com", Options{Classifier: cl, Connect: l.MiddleboxAddr, MaxHops: 5, NoICMP: true,
			Timeout: 10 * time.Second, ServerDistance: dist})
		if err != nil {
			t.Fatal(err)
		}
		if r.Finding != Located || *r.FirstForgedHop != 1 {
			t.Fatalf("distance %v: %+v", dist, r)
		}
		if !dist {
			if r.ServerHops != nil {
				t.Errorf("server_hops %d without ServerDistance", *r.ServerHops)
			}
			continue
		}
		if r.ServerHops == nil || *r.ServerHops != 1 || !strings.Contains(strings.Join(r.Notes, "\n"), "UDP probe") {
			t.Errorf("with ServerDistance: server_hops %v, notes %q", r.ServerHops, r.Notes)
		}
	}
}
