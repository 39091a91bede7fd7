package guard_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/internal/lab"
)

// BenchmarkGuardOverhead measures what the guard adds to a full TLS
// handshake on loopback (TLS 1.3, no resumption): each iteration performs
// one plain and one guarded handshake to the same lab origin, alternating so
// that machine noise falls on both alike, and reports guarded/plain as the
// metric "ratio" (goal: under 1.03).
func BenchmarkGuardOverhead(b *testing.B) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	plain := &tls.Config{RootCAs: l.PublicPool(), ServerName: "www.google.com"}
	guarded := guard.Config(plain, guard.Options{})
	var tPlain, tGuarded time.Duration
	handshake := func(cfg *tls.Config) time.Duration {
		start := time.Now()
		c, err := tls.Dial("tcp", l.OriginAddr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		c.Close()
		return d
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tPlain += handshake(plain)
			tGuarded += handshake(guarded)
		} else {
			tGuarded += handshake(guarded)
			tPlain += handshake(plain)
		}
	}
	b.ReportMetric(float64(tGuarded)/float64(tPlain), "ratio")
	b.ReportMetric(float64(tPlain.Microseconds())/float64(b.N), "plain-µs/hs")
	b.ReportMetric(float64(tGuarded.Microseconds())/float64(b.N), "guarded-µs/hs")
}
