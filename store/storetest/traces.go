package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// LocatedTrace is the trace of a box on router 3 of a path whose server is
// 6 hops away, as probe --locate stores it.
func LocatedTrace(vantage, host, sni string) *store.Trace {
	r1, r2 := "10.77.0.2", "10.77.1.2"
	three, six := 3, 6
	return &store.Trace{Vantage: vantage, Host: host, SNI: sni, Time: time.UnixMilli(1764072000456).UTC(), Result: locate.Result{
		Target: sni + ":443", SNI: sni, Address: host, Finding: locate.Located, Outcome: outcome.Suspected, Issuer: "CN=national root",
		FirstForgedHop: &three, LastCleanRouter: &r2, ServerHops: &six, RoutersVisible: true, Message: "interception located",
		Notes: []string{"server_hops from a UDP probe"},
		Hops: []locate.Hop{
			{TTL: 1, Outcome: locate.Expired, Router: &r1, Detail: "time-exceeded from " + r1},
			{TTL: 2, Outcome: locate.Expired, Router: &r2, Detail: "time-exceeded from " + r2},
			{TTL: 3, Outcome: outcome.Suspected, Issuer: "CN=national root"},
		},
	}}
}

// traces: a located trace and a failed one come back as written, keyed as
// their records; a second write replaces; a pair with no record is refused.
func traces(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "traces", time.Now())
	other := newCampaign(t, st, "other", time.Now())
	ctl, forged := Cert(t, "real"), Cert(t, "forged")
	for _, camp := range []*store.Campaign{c, other} {
		if _, err := st.Write(ctx, camp, []*measure.HostResult{
			host("kz", "127.0.0.2:443", []string{"a.example", "b.example"}, ctl, forged),
			host("", "127.0.0.1:443", []string{"a.example"}, ctl, forged),
		}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(c *store.Campaign) []store.Trace {
		t.Helper()
		var out []store.Trace
		if err := st.Traces(ctx, c, func(tr store.Trace) error { out = append(out, tr); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := read(c); len(got) != 0 {
		t.Fatalf("traces before any was written: %+v", got)
	}
	located := LocatedTrace("kz", "127.0.0.2:443", "b.example")
	failed := &store.Trace{Host: "127.0.0.1:443", SNI: "a.example", Time: time.UnixMilli(1764072000789).UTC(),
		Error: "locate: cannot connect to 127.0.0.1:443 (attempt with TTL 1): connection refused"}
	for _, tr := range []*store.Trace{located, failed} {
		if err := st.WriteTrace(ctx, c, tr); err != nil {
			t.Fatal(err)
		}
	}
	got := read(c)
	if len(got) != 2 {
		t.Fatalf("%d traces, want 2: %+v", len(got), got)
	}
	// (vantage, host, SNI) order, bytewise: kz before local.
	l, f := got[0], got[1]
	if f.Vantage != "local" || f.Host != failed.Host || f.SNI != "a.example" || f.Error != failed.Error || !f.Time.Equal(failed.Time) ||
		f.Result.Finding != store.FailedFinding || f.Result.FirstForgedHop != nil || len(f.Result.Hops) != 0 {
		t.Errorf("failed trace read back as %+v", f)
	}
	if l.Vantage != "kz" || l.Host != located.Host || l.SNI != located.SNI || !l.Time.Equal(located.Time) || l.Error != "" {
		t.Errorf("located trace keyed %s %s %s at %v, error %q", l.Vantage, l.Host, l.SNI, l.Time, l.Error)
	}
	if !reflect.DeepEqual(l.Result, located.Result) {
		t.Errorf("located trace read back\n%+v, want\n%+v", l.Result, located.Result)
	}
	if got := read(other); len(got) != 0 {
		t.Errorf("another campaign has %d traces", len(got))
	}
	// A second trace of the pair replaces the first.
	again := LocatedTrace("", "127.0.0.1:443", "a.example")
	if err := st.WriteTrace(ctx, c, again); err != nil {
		t.Fatal(err)
	}
	// Every column is replaced: the failed trace held none of the located
	// one's.
	if got := read(c); len(got) != 2 || got[1].Error != "" || !got[1].Time.Equal(again.Time) || !reflect.DeepEqual(got[1].Result, again.Result) {
		t.Errorf("after replacing: %+v", got)
	}
	// A trace belongs to a stored record.
	if err := st.WriteTrace(ctx, c, LocatedTrace("local", "127.0.0.9:443", "a.example")); err == nil {
		t.Error("a trace of a pair with no record was stored")
	}
	tooMany := LocatedTrace("kz", "127.0.0.2:443", "a.example")
	tooMany.Result.Hops = make([]locate.Hop, locate.MaxTTL+1)
	if err := st.WriteTrace(ctx, c, tooMany); err == nil {
		t.Error("a trace of more hops than a TTL holds was stored")
	}
}
