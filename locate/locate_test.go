package locate

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/leak"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/verdict"
)

func classifier() *verdict.Classifier { return verdict.New(verdict.Options{}) }

// Bad input is refused before any packet leaves, with errors a caller can
// tell apart.
func TestRunBadInput(t *testing.T) {
	ctx := context.Background()
	var in *InputError
	for _, c := range []struct {
		target string
		opts   Options
	}{
		{"example.com", Options{MaxHops: 0}},
		{"example.com", Options{MaxHops: 256}},
		{"example.com", Options{MaxHops: 5, Connect: "not-an-ip"}},
		{"", Options{MaxHops: 5}},
		{"example.com:99999", Options{MaxHops: 5}},
	} {
		c.opts.Classifier = classifier()
		if _, err := Run(ctx, c.target, c.opts); !errors.As(err, &in) {
			t.Errorf("%q %+v: %v, want an input error", c.target, c.opts, err)
		}
	}
	// A name that does not resolve: a resolver that answers "no such host".
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}
	}}
	_, err := Run(ctx, "no-such-host.invalid", Options{Classifier: classifier(), MaxHops: 5, Resolver: res, Timeout: time.Second})
	var re *ResolveError
	if !errors.As(err, &re) || re.Name != "no-such-host.invalid" {
		t.Fatalf("unresolvable: %v", err)
	}
}

// A connect that fails at the full TTL ends the trace with a DialError.
func TestRunDialError(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	leak.Check(t, 0, func() {
		_, err = Run(context.Background(), "example.com", Options{Classifier: classifier(), MaxHops: 3, Connect: addr, NoICMP: true, Timeout: 2 * time.Second})
	})
	var de *DialError
	if !errors.As(err, &de) || de.TTL != 1 {
		t.Fatalf("%v, want a DialError at TTL 1", err)
	}
}

func hops(outcomes ...outcome.Outcome) *Result {
	r := &Result{}
	for i, o := range outcomes {
		h := Hop{TTL: i + 1, Outcome: o}
		if o == Expired {
			s := "10.77." + string(rune('0'+i)) + ".2"
			h.Router = &s
		}
		r.Hops = append(r.Hops, h)
	}
	return r
}

// finish reads the conclusion off the hops as the contract says.
func TestFinish(t *testing.T) {
	r := hops(Expired, Expired, outcome.Suspected)
	r.finish(30)
	if r.Finding != Located || *r.FirstForgedHop != 3 || *r.LastCleanRouter != "10.77.1.2" || r.ServerHops != nil {
		t.Fatalf("forged at 3: %+v", r)
	}
	r = hops(outcome.Known("x"))
	r.finish(30)
	if r.Finding != Located || *r.FirstForgedHop != 1 || r.LastCleanRouter != nil {
		t.Fatalf("forged at 1: %+v", r)
	}
	r = hops(Expired, outcome.BlockedReset)
	r.finish(30)
	if r.Finding != Blocking || *r.BlockedAtHop != 2 || r.FirstForgedHop != nil {
		t.Fatalf("reset at 2: %+v", r)
	}
	r = hops(Expired, Expired, Expired, outcome.OK)
	r.finish(30)
	if r.Finding != Clean || *r.ServerHops != 4 || r.FirstForgedHop != nil || r.LastCleanRouter != nil {
		t.Fatalf("clean: %+v", r)
	}
	r = hops(Expired, Expired)
	r.finish(2)
	if r.Finding != Unreached || r.Message != "no answer within 2 hops" {
		t.Fatalf("unreached: %+v", r)
	}
}
