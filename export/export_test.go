package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/export"
	"github.com/mitmguard/mitmguard/export/exporttest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// fill writes a two-vantage campaign spanning two UTC days.
func fill(t *testing.T, id string) (store.Store, *store.Campaign, exporttest.Spec) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	spec := exporttest.Spec{Campaign: id, Start: time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC), Span: 8 * time.Hour,
		Hosts: 60, Domains: []string{"facebook.com", "vk.com", "mail.ru", "github.com"}, Targeted: 3,
		Vantages: []string{"kz-almaty", "us-east"}, Intercept: []float64{0.3, 0.05}, Seed: 1, Batch: 7}
	c, err := exporttest.Fill(context.Background(), st, spec)
	if err != nil {
		t.Fatal(err)
	}
	// kz-almaty's operator declared its network and country, us-east's
	// nothing.
	if _, err := st.DeclareVantage(context.Background(), c, kzDeclared); err != nil {
		t.Fatal(err)
	}
	return st, c, spec
}

var kzDeclared = measure.Vantage{Name: "kz-almaty", ASN: 9198, Country: "KZ"}

// declaredOf is what a record of vantage v carries of its declaration.
func declaredOf(v string) (int64, string) {
	if v == kzDeclared.Name {
		return int64(kzDeclared.ASN), kzDeclared.Country
	}
	return 0, ""
}

func readRows[T any](t *testing.T, path string) []T {
	t.Helper()
	rows, err := parquet.ReadFile[T](path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// Every record once, in the partition of its date, with its certificates,
// whether the campaign is read in one range or in several side by side.
func TestParquetRoundTrip(t *testing.T) {
	for _, readers := range []int{1, 3} {
		t.Run(fmt.Sprintf("readers=%d", readers), func(t *testing.T) { testParquetRoundTrip(t, readers) })
	}
}

func testParquetRoundTrip(t *testing.T, readers int) {
	ctx := context.Background()
	st, c, spec := fill(t, "c1")
	dir := t.TempDir()
	// A small row group and one open file force several row groups and a
	// partition continued in a second part.
	stats, err := export.Parquet(ctx, st, []*store.Campaign{c}, dir, export.Options{RowGroup: 50, MaxOpen: 1, Readers: readers})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Records != spec.Records() {
		t.Fatalf("exported %d records, want %d", stats.Records, spec.Records())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "records", "campaign=c1", "date=*", "part-*.parquet"))
	var dates []string
	var got []export.RecordRow
	for _, f := range files {
		d := filepath.Base(filepath.Dir(f))
		if !slices.Contains(dates, d) {
			dates = append(dates, d)
		}
		rows := readRows[export.RecordRow](t, f)
		for _, r := range rows {
			if "date="+r.Time.UTC().Format("2006-01-02") != d {
				t.Fatalf("%s holds a record of %s", f, r.Time)
			}
		}
		got = append(got, rows...)
	}
	slices.Sort(dates)
	if !slices.Equal(dates, []string{"date=2026-11-24", "date=2026-11-25"}) {
		t.Fatalf("date partitions %v", dates)
	}
	if len(files) < 4 {
		t.Fatalf("want a date's records continued in a second part with MaxOpen 1, got files %v", files)
	}
	// Every record, as the store holds it.
	byKey := map[string]export.RecordRow{}
	for _, r := range got {
		byKey[r.Vantage+"|"+r.Host+"|"+r.SNI] = r
	}
	if len(byKey) != len(got) || len(got) != spec.Records() {
		t.Fatalf("%d rows, %d distinct, want %d", len(got), len(byKey), spec.Records())
	}
	certs := map[string]bool{}
	for _, f := range mustGlob(t, filepath.Join(dir, "certificates", "campaign=c1", "part-*.parquet")) {
		for _, cr := range readRows[export.CertRow](t, f) {
			if certs[cr.SHA256] {
				t.Fatalf("certificate %s exported twice", cr.SHA256)
			}
			certs[cr.SHA256] = true
		}
	}
	n := 0
	err = st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		n++
		row, ok := byKey[r.Vantage+"|"+r.Host+"|"+r.SNI]
		if !ok {
			t.Fatalf("record %s %s %s missing", r.Vantage, r.Host, r.SNI)
		}
		if row.Campaign != "c1" || row.Outcome != string(r.Outcome) || !row.Time.Equal(r.Time) || row.Issuer != r.Issuer ||
			!slices.Equal(row.Traits, r.Traits) || len(row.Chain) != len(r.Chain) || row.ControlOutcome != string(ctl.Outcome) || row.Error != r.Error {
			t.Fatalf("row %+v for record %+v", row, r)
		}
		if asn, country := declaredOf(r.Vantage); row.VantageASN != asn || row.VantageCountry != country {
			t.Fatalf("row of %s declares AS%d %q, want AS%d %q", r.Vantage, row.VantageASN, row.VantageCountry, asn, country)
		}
		for i, h := range r.Chain {
			if row.Chain[i] != h.String() || !certs[row.Chain[i]] {
				t.Fatalf("chain %v, want %v, each exported", row.Chain, r.Chain)
			}
		}
		return nil
	})
	if err != nil || n != len(got) {
		t.Fatal(n, err)
	}
	// Exporting again into the same folder refuses and keeps what is there.
	_, err = export.Parquet(ctx, st, []*store.Campaign{c}, dir, export.Options{})
	var ee *export.ExistsError
	if !errors.As(err, &ee) {
		t.Fatalf("second export: %v, want ExistsError", err)
	}
	if again := mustGlob(t, filepath.Join(dir, "records", "campaign=c1", "date=*", "*.parquet")); len(again) != len(files) {
		t.Fatalf("files changed: %v", again)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("%s: %v %v", pattern, m, err)
	}
	return m
}

func TestParquetHostileCampaignID(t *testing.T) {
	st, c, _ := fill(t, "../../etc/x y")
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := export.Parquet(context.Background(), st, []*store.Campaign{c}, dir, export.Options{}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "records"))
	if len(ents) != 1 || ents[0].Name() != "campaign=%2E.%2F..%2Fetc%2Fx%20y" {
		t.Fatalf("partition folders %v", ents)
	}
	parent, _ := os.ReadDir(filepath.Dir(dir))
	if len(parent) != 1 {
		t.Fatalf("export wrote outside its folder: %v", parent)
	}
}

func TestParquetNeedsFolder(t *testing.T) {
	st, c, _ := fill(t, "c1")
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, out := range []string{"-", "", file} {
		if _, err := export.Parquet(context.Background(), st, []*store.Campaign{c}, out, export.Options{}); !errors.Is(err, export.ErrOutput) {
			t.Errorf("output %q: %v, want ErrOutput", out, err)
		}
	}
}

func TestJSONLSameRecords(t *testing.T) {
	ctx := context.Background()
	st, c, spec := fill(t, "c1")
	var buf bytes.Buffer
	stats, err := export.JSONL(ctx, st, []*store.Campaign{c}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[outcome.Outcome]int{}
	certs := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Type, Campaign, SHA256, Vantage string
			Outcome                         outcome.Outcome
			Chain                           []string
			VantageASN                      int64  `json:"vantage_asn"`
			VantageCountry                  string `json:"vantage_country"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		switch l.Type {
		case "certificate":
			if certs[l.SHA256] {
				t.Fatalf("certificate %s twice", l.SHA256)
			}
			certs[l.SHA256] = true
		case "record":
			counts[l.Outcome]++
			if asn, country := declaredOf(l.Vantage); l.VantageASN != asn || l.VantageCountry != country {
				t.Fatalf("record line declares AS%d %q: %s", l.VantageASN, l.VantageCountry, sc.Text())
			}
			for _, h := range l.Chain {
				if !certs[h] {
					t.Fatalf("record refers to %s before its certificate line", h)
				}
			}
		default:
			t.Fatalf("line %s", sc.Text())
		}
	}
	want, err := st.OutcomeCounts(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != len(want) || stats.Records != spec.Records() {
		t.Fatalf("outcomes %v, want %v", counts, want)
	}
	for o, n := range want {
		if counts[o] != n {
			t.Fatalf("outcome %s: %d, want %d", o, counts[o], n)
		}
	}
	if stats.Certs != len(certs) {
		t.Fatalf("stats %+v, %d certificates", stats, len(certs))
	}
}

func FuzzPartitionValue(f *testing.F) {
	for _, s := range []string{"c1", "..", ".", "a/b", "%", "20261125T120000-3fa2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := export.PartitionValue(s)
		if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\\x00=") || filepath.Base(v) != v || strings.HasPrefix(v, ".") {
			t.Fatalf("%q escapes to %q", s, v)
		}
	})
}

// cancelAfter is a store whose cursor cancels the export after n records.
type cancelAfter struct {
	store.Store
	n      int
	cancel func()
}

func (s cancelAfter) Records(ctx context.Context, c *store.Campaign, fn func(measure.Record, measure.Control) error) error {
	i := 0
	return s.Store.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		if i++; i == s.n {
			s.cancel()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(r, ctl)
	})
}

// An export stopped midway leaves nothing of the campaign behind, so that a
// reader never sees a partial campaign and the export can simply run again.
func TestParquetStoppedLeavesNothing(t *testing.T) {
	st, c, _ := fill(t, "c1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	_, err := export.Parquet(ctx, cancelAfter{st, 300, cancel}, []*store.Campaign{c}, dir, export.Options{RowGroup: 50})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("export: %v, want context.Canceled", err)
	}
	for _, d := range []string{"records/campaign=c1", "certificates/campaign=c1"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}
	if _, err := export.Parquet(context.Background(), st, []*store.Campaign{c}, dir, export.Options{}); err != nil {
		t.Fatalf("export after a stopped one: %v", err)
	}
}

// failLastRange is a store whose last range of hosts fails while the
// others wait for the export to stop them.
type failLastRange struct {
	store.Store
	err error
}

func (s failLastRange) StreamRange(ctx context.Context, c *store.Campaign, rg store.Range, fn func(*store.Row) error) error {
	if rg.To == nil {
		return s.err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s failLastRange) SplitHosts(ctx context.Context, c *store.Campaign, n int) ([]store.Range, error) {
	return s.Store.(store.Streamer).SplitHosts(ctx, c, n)
}

func (s failLastRange) CertsByHash(ctx context.Context, hs []chain.Hash, fn func(chain.Hash, []byte) error) error {
	return s.Store.(store.Streamer).CertsByHash(ctx, hs, fn)
}

// With several readers, the export fails with the failure of the range that
// failed, not with the cancellation it caused the ranges before it.
func TestParquetReadersReportTheFailure(t *testing.T) {
	st, c, _ := fill(t, "c1")
	boom := errors.New("the disk is on fire")
	_, err := export.Parquet(context.Background(), failLastRange{st, boom}, []*store.Campaign{c}, t.TempDir(), export.Options{Readers: 3})
	if !errors.Is(err, boom) {
		t.Fatalf("export: %v, want %v", err, boom)
	}
}
