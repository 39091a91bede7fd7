package duckdbtest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/mitmguard/mitmguard/export"
	"github.com/mitmguard/mitmguard/export/exporttest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/report"
	"github.com/mitmguard/mitmguard/store"
)

// TestDuckDBReadsExport exports two campaigns to Parquet and reads them
// back with DuckDB: per campaign the same counts per outcome as report's
// JSON, the Hive partitions as columns, and every chain hash resolvable in
// the certificates table.
func TestDuckDBReadsExport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	specs := []exporttest.Spec{
		{Campaign: "kz-2026-11-24", Start: time.Date(2026, 11, 24, 22, 0, 0, 0, time.UTC), Span: 4 * time.Hour, Hosts: 300,
			Domains: []string{"facebook.com", "vk.com", "mail.ru", "github.com", "en.wikipedia.org"}, Targeted: 3,
			Vantages: []string{"kz-almaty", "us-east"}, Intercept: []float64{0.24, 0.07}, Seed: 7},
		{Campaign: "kz-2026-11-25", Start: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Span: time.Hour, Hosts: 120,
			Domains: []string{"facebook.com", "github.com"}, Targeted: 1, Vantages: []string{"local"}, Intercept: []float64{0.5}, Seed: 8},
	}
	for _, s := range specs {
		c, err := exporttest.Fill(ctx, st, s)
		if err != nil {
			t.Fatal(err)
		}
		// The first campaign's kz-almaty operator declared its network
		// and country; no one else declared anything.
		if s.Campaign == "kz-2026-11-24" {
			if _, err := st.DeclareVantage(ctx, c, measure.Vantage{Name: "kz-almaty", ASN: 9198, Country: "KZ"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cs, err := export.Campaigns(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "wh")
	if _, err := export.Parquet(ctx, st, cs, out, export.Options{RowGroup: 500}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := "read_parquet('" + filepath.Join(out, "records", "*", "*", "*.parquet") + "', hive_partitioning = true)"
	certs := "read_parquet('" + filepath.Join(out, "certificates", "*", "*.parquet") + "', hive_partitioning = true)"

	for _, s := range specs {
		rep, err := report.Build(ctx, st, s.Campaign)
		if err != nil {
			t.Fatal(err)
		}
		// What report --json prints.
		js, _ := json.Marshal(rep)
		var want struct {
			Outcomes map[string]int `json:"outcomes"`
			Records  int            `json:"records"`
		}
		if err := json.Unmarshal(js, &want); err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "SELECT outcome, count(*) FROM "+recs+" WHERE campaign = ? GROUP BY outcome", s.Campaign)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		total := 0
		for rows.Next() {
			var o string
			var n int
			if err := rows.Scan(&o, &n); err != nil {
				t.Fatal(err)
			}
			got[o] = n
			total += n
		}
		rows.Close()
		if len(got) != len(want.Outcomes) || total != want.Records || total != s.Records() {
			t.Fatalf("%s: duckdb %v (%d), report %v (%d)", s.Campaign, got, total, want.Outcomes, want.Records)
		}
		for o, n := range want.Outcomes {
			if got[o] != n {
				t.Fatalf("%s: outcome %s: duckdb %d, report %d", s.Campaign, o, got[o], n)
			}
		}
	}

	// The date partition is the record's UTC day.
	var bad int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+recs+" WHERE CAST(date AS VARCHAR) <> strftime(time, '%Y-%m-%d')").Scan(&bad); err != nil {
		t.Fatal(err)
	}
	var days int
	if err := db.QueryRowContext(ctx, "SELECT count(DISTINCT date) FROM "+recs+" WHERE campaign = 'kz-2026-11-24'").Scan(&days); err != nil {
		t.Fatal(err)
	}
	if bad != 0 || days != 2 {
		t.Fatalf("%d records in the wrong date partition; %d dates for a campaign over midnight", bad, days)
	}
	// Every hash a record names is a certificate of its campaign, exported once.
	var missing, dup int
	q := "SELECT count(*) FROM (SELECT campaign, unnest(chain || control_chain) AS h FROM " + recs + ") r ANTI JOIN " + certs + " c ON c.campaign = r.campaign AND c.sha256 = r.h"
	if err := db.QueryRowContext(ctx, q).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) - count(DISTINCT (campaign, sha256)) FROM "+certs).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if missing != 0 || dup != 0 {
		t.Fatalf("%d chain hashes without a certificate, %d certificates exported twice", missing, dup)
	}
	// The intercepted share per vantage, as an analyst would ask it.
	var kz, us float64
	q = "SELECT avg(CASE WHEN outcome LIKE 'mitm.%' THEN 1 ELSE 0 END) FROM " + recs + " WHERE vantage = ? AND sni = 'facebook.com'"
	if err := db.QueryRowContext(ctx, q, "kz-almaty").Scan(&kz); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, q, "us-east").Scan(&us); err != nil {
		t.Fatal(err)
	}
	if !(kz > us) {
		t.Fatalf("facebook.com intercepted %.2f from kz-almaty, %.2f from us-east", kz, us)
	}
	// The declared ASN and country of each vantage point, per campaign: 0
	// and '' where nothing was declared.
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT campaign, vantage, vantage_asn, vantage_country FROM "+recs+" ORDER BY ALL")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var c, v, country string
		var asn int64
		if err := rows.Scan(&c, &v, &asn, &country); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %d %q", c, v, asn, country))
	}
	rows.Close()
	want := []string{`kz-2026-11-24 kz-almaty 9198 "KZ"`, `kz-2026-11-24 us-east 0 ""`, `kz-2026-11-25 local 0 ""`}
	if !slices.Equal(got, want) {
		t.Fatalf("declared vantage points\n%q, want\n%q", got, want)
	}
}
