// Command exportgen makes the store bench/export.sh exports: a synthetic
// two-vantage campaign of -records records (export/exporttest), written
// through the store API. With -read it instead times reading a store's
// records through the cursor alone, the baseline export is compared to.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/mitmguard/mitmguard/export"
	"github.com/mitmguard/mitmguard/export/exporttest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

func main() {
	db := flag.String("db", "", "the SQLite `FILE` to create (or read with -read)")
	records := flag.Int("records", 1_000_000, "records to generate")
	read := flag.Bool("read", false, "time reading every record of the store's campaigns instead")
	parquetDir := flag.String("parquet", "", "export the store's campaigns to Parquet under `DIR` instead (profiling)")
	readers := flag.Int("readers", 0, "with -parquet: ranges read side by side (export.Options.Readers; 0: the default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of -read or -parquet to `FILE`")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "exportgen:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	if *parquetDir != "" {
		err = runParquet(*db, *parquetDir, export.Options{Readers: *readers})
	} else {
		err = run(*db, *records, *read)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "exportgen:", err)
		os.Exit(1)
	}
}

func run(db string, records int, read bool) error {
	ctx := context.Background()
	if db == "" {
		return fmt.Errorf("-db is required")
	}
	if !read {
		if _, err := os.Stat(db); err == nil {
			return fmt.Errorf("%s exists", db)
		}
	}
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	defer st.Close()
	if read {
		cs, err := st.Campaigns(ctx)
		if err != nil {
			return err
		}
		start, n := time.Now(), 0
		for _, c := range cs {
			if err := store.StreamRows(ctx, st, c, func(*store.Row) error { n++; return nil }); err != nil {
				return err
			}
		}
		el := time.Since(start)
		fmt.Printf("store rows alone: %d records in %.2f s = %.0f records/s\n", n, el.Seconds(), float64(n)/el.Seconds())
		start, n = time.Now(), 0
		for _, c := range cs {
			if err := st.Records(ctx, c, func(measure.Record, measure.Control) error { n++; return nil }); err != nil {
				return err
			}
		}
		el = time.Since(start)
		fmt.Printf("store Records (decoded): %d records in %.2f s = %.0f recs/s\n", n, el.Seconds(), float64(n)/el.Seconds())
		return nil
	}
	domains := []string{"facebook.com", "vk.com", "mail.ru", "google.com", "youtube.com", "github.com", "en.wikipedia.org", "twitter.com", "instagram.com", "yandex.ru"}
	vantages := []string{"kz-almaty", "us-east"}
	spec := exporttest.Spec{Campaign: "bench", Start: time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC), Span: 12 * time.Hour,
		Hosts: max(records/(len(domains)*len(vantages)), 1), Domains: domains, Targeted: 5,
		Vantages: vantages, Intercept: []float64{0.24, 0.07}, Seed: 2019, Batch: 1000}
	start := time.Now()
	if _, err := exporttest.Fill(ctx, st, spec); err != nil {
		return err
	}
	fmt.Printf("generated %d records (%d hosts x %d domains x %d vantages) in %.1f s\n", spec.Records(), spec.Hosts, len(domains), len(vantages), time.Since(start).Seconds())
	return nil
}

// runParquet exports every campaign of db under dir, as mitmguard export
// does, and prints the rate.
func runParquet(db, dir string, o export.Options) error {
	ctx := context.Background()
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := export.Campaigns(ctx, st, "")
	if err != nil {
		return err
	}
	start := time.Now()
	stats, err := export.Parquet(ctx, st, cs, dir, o)
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("parquet export: %d records in %.2f s = %.0f records/s\n", stats.Records, el.Seconds(), float64(stats.Records)/el.Seconds())
	return nil
}
