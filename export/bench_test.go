package export_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/export"
	"github.com/mitmguard/mitmguard/export/exporttest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// BenchmarkParquet exports a 100,000-record campaign (EXPORT_BENCH_HOSTS
// hosts x 20 records) per iteration and
// reports records/s beside the store cursor alone (the baseline export
// cannot beat) and bytes per record; bench/export.sh runs the CLI on
// 1,000,000 records.
func benchHosts() int {
	if n, err := strconv.Atoi(os.Getenv("EXPORT_BENCH_HOSTS")); err == nil && n > 0 {
		return n
	}
	return 5000
}

func BenchmarkParquet(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	spec := exporttest.Spec{Campaign: "bench", Start: time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC), Span: 12 * time.Hour,
		Hosts: benchHosts(), Domains: []string{"a.com", "b.com", "c.com", "d.com", "e.com", "f.com", "g.com", "h.com", "i.com", "j.com"}, Targeted: 5,
		Vantages: []string{"kz", "us"}, Intercept: []float64{0.24, 0.07}, Seed: 1, Batch: 1000}
	c, err := exporttest.Fill(ctx, st, spec)
	if err != nil {
		b.Fatal(err)
	}
	var cursor, exp time.Duration
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := st.Records(ctx, c, func(measure.Record, measure.Control) error { return nil }); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		stats, err := export.Parquet(ctx, st, []*store.Campaign{c}, filepath.Join(dir, strconv.Itoa(i)), export.Options{})
		if err != nil {
			b.Fatal(err)
		}
		cursor, exp, bytes = cursor+t1.Sub(t0), exp+time.Since(t1), bytes+stats.Bytes
	}
	n := float64(spec.Records() * b.N)
	b.ReportMetric(n/exp.Seconds(), "records/s")
	b.ReportMetric(n/cursor.Seconds(), "cursor-records/s")
	b.ReportMetric(exp.Seconds()/cursor.Seconds(), "export/cursor-time")
	b.ReportMetric(float64(bytes)/n, "bytes/record")
}
