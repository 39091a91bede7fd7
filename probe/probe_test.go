package probe

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/outcome"
)

func TestHandshakeOutcomes(t *testing.T) {
	l, err := lab.Start(lab.Config{
		Names:   []string{"a.example.com", "b.example.com", "c.example.com", "d.example.com", "e.example.com"},
		Targets: map[string]lab.Action{"b.example.com": lab.Reset, "c.example.com": lab.Stall, "d.example.com": lab.Close, "e.example.com": lab.Intercept},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A port that refuses: listen, note the address, close.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()

	tests := []struct {
		addr, sni string
		want      outcome.Outcome
		chainLen  int
	}{
		{l.MiddleboxAddr, "a.example.com", "", 2},
		{l.MiddleboxAddr, "b.example.com", outcome.BlockedReset, 0},
		{l.MiddleboxAddr, "c.example.com", outcome.BlockedTimeout, 0},
		{l.MiddleboxAddr, "d.example.com", outcome.BlockedClosed, 0},
		{l.MiddleboxAddr, "e.example.com", "", 2},
		{refused, "a.example.com", outcome.ErrorDial, 0},
	}
	for _, tt := range tests {
		r := Handshake(context.Background(), Target{Address: tt.addr, SNI: tt.sni}, Options{Timeout: 700 * time.Millisecond})
		if r.Failure != tt.want || len(r.Chain) != tt.chainLen {
			t.Errorf("%s: failure %q (%v), chain %d; want %q, %d", tt.sni, r.Failure, r.Err, len(r.Chain), tt.want, tt.chainLen)
		}
		if r.Failure == "" && (r.TLSVersion != "TLS 1.3" || r.CipherSuite == "" || r.ALPN != "http/1.1" || r.Handshake <= 0) {
			t.Errorf("%s: parameters not recorded: %+v", tt.sni, r)
		}
		if r.Describe() == "" {
			t.Error("no description")
		}
	}
}

// A handshake the caller stops (Ctrl-C) is not reported as blocking.
func TestStoppedIsNotBlocking(t *testing.T) {
	l, err := lab.Start(lab.Config{Names: []string{"a.example.com"}, Targets: map[string]lab.Action{"a.example.com": lab.Stall}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := Handshake(ctx, Target{Address: l.MiddleboxAddr, SNI: "a.example.com"}, Options{Timeout: 5 * time.Second})
	if r.Failure != outcome.Stopped {
		t.Errorf("failure %q (%v), want error.stopped", r.Failure, r.Err)
	}
}
