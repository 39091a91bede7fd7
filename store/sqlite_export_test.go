package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/export/exporttest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

type pair struct {
	R measure.Record
	C measure.Control
}

// StreamRows (SQLite's own merge of two cursors) yields exactly what
// Records (one SQL join) does, campaign by campaign, including a record
// without a control (left out by both) and a host without records.
func TestStreamRowsSameAsRecords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var cs []*store.Campaign
	for i, id := range []string{"a", "b"} {
		spec := exporttest.Spec{Campaign: id, Start: time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC), Span: 8 * time.Hour,
			Hosts: 70, Domains: []string{"facebook.com", "vk.com", "mail.ru"}, Targeted: 2,
			Vantages: []string{"kz", "us"}, Intercept: []float64{0.3, 0.05}, Seed: uint64(i + 1), Batch: 9}
		c, err := exporttest.Fill(ctx, st, spec)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	db := rawDB(t, path)
	exec(t, db, `INSERT INTO records(campaign, vantage, host, sni, outcome, time, attempts) SELECT n, 'kz', '10.0.0.0:1', 'x.com', 'ok', 1, 1 FROM campaigns WHERE id = 'a'`)
	exec(t, db, `INSERT INTO records(campaign, vantage, host, sni, outcome, time, attempts) SELECT n, 'zz', '10.9.9.9:443', 'x.com', 'ok', 1, 1 FROM campaigns WHERE id = 'a'`)
	exec(t, db, `INSERT INTO controls(campaign, vantage, host, sni, outcome) SELECT n, 'kz', '10.0.0.0:2', 'c', 'ok' FROM campaigns WHERE id = 'a'`)
	for _, c := range cs {
		var want, got []pair
		if err := st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
			want = append(want, pair{r, ctl})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := store.StreamRows(ctx, st, c, func(row *store.Row) error {
			r, ctl := row.Record()
			got = append(got, pair{r, ctl})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// The ranges SplitHosts cuts, read one after another, are the
		// same records again.
		for _, n := range []int{2, 3, 7} {
			ranges, err := store.SplitHosts(ctx, st, c, n)
			if err != nil || len(ranges) != n {
				t.Fatalf("SplitHosts(%d) = %d ranges, %v", n, len(ranges), err)
			}
			var parts []pair
			for _, rg := range ranges {
				k := len(parts)
				if err := store.StreamRange(ctx, st, c, rg, func(row *store.Row) error {
					r, ctl := row.Record()
					parts = append(parts, pair{r, ctl})
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if len(parts)-k < len(want)/n/2 {
					t.Errorf("SplitHosts(%d): a range of %d records of %d", n, len(parts)-k, len(want))
				}
			}
			if !reflect.DeepEqual(parts, want) {
				t.Errorf("SplitHosts(%d): the ranges hold %d records, not those of the campaign (%d)", n, len(parts), len(want))
			}
		}
		if len(want) != 2*70*3 {
			t.Fatalf("campaign %s: Records gave %d records, want %d", c.ID, len(want), 2*70*3)
		}
		if !reflect.DeepEqual(got, want) {
			for i := range min(len(got), len(want)) {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("campaign %s: record %d:\n got %+v\nwant %+v", c.ID, i, got[i], want[i])
				}
			}
			t.Fatalf("campaign %s: StreamRows gave %d records, Records %d", c.ID, len(got), len(want))
		}
	}
}

// A stream stopped by its callback ends its read transaction: the pooled
// connection serves the next streams (more than the pool holds) and
// writers.
func TestStreamRowsStoppedReleasesConnection(t *testing.T) {
	ctx := context.Background()
	st, c, spec := filledStore(t, filepath.Join(t.TempDir(), "m.db"), 20, "a.com", "b.com")
	stop := errors.New("stop")
	for range 6 {
		if err := store.StreamRows(ctx, st, c, func(*store.Row) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("StreamRows = %v, want the callback's error", err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	n := 0
	err := store.StreamRows(cctx, st, c, func(*store.Row) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if err == nil || n >= spec.Records() {
		t.Fatalf("cancelled StreamRows read %d of %d records, err %v", n, spec.Records(), err)
	}
	n = 0
	if err := store.StreamRows(ctx, st, c, func(*store.Row) error { n++; return nil }); err != nil || n != spec.Records() {
		t.Fatalf("StreamRows after stops: %d records, %v; want %d", n, err, spec.Records())
	}
	c2 := &store.Campaign{ID: "b", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c2); err != nil {
		t.Fatalf("writing after stopped streams: %v", err)
	}
}

func TestCertsByHash(t *testing.T) {
	ctx := context.Background()
	st, c, _ := filledStore(t, filepath.Join(t.TempDir(), "m.db"), 700, "a.com")
	seen := map[chain.Hash]bool{}
	var hs []chain.Hash
	if err := store.StreamRows(ctx, st, c, func(r *store.Row) error {
		for _, h := range store.Hashes(store.Hashes(nil, r.Chain), r.ControlChain) {
			if !seen[h] {
				seen[h] = true
				hs = append(hs, h)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// In the order asked, each DER the callback's to keep.
	var order []chain.Hash
	var ders [][]byte
	if err := st.CertsByHash(ctx, hs, func(h chain.Hash, der []byte) error {
		order, ders = append(order, h), append(ders, der)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(order, hs) {
		t.Fatalf("CertsByHash gave %d certificates, not the %d asked in their order", len(order), len(hs))
	}
	for i, der := range ders {
		if chain.Hash(sha256.Sum256(der)) != hs[i] {
			t.Fatalf("certificate %d (%s): the DER kept is not its own", i, hs[i])
		}
	}
	missing := append(hs[:3:3], chain.Hash{1, 2, 3})
	if err := st.CertsByHash(ctx, missing, func(chain.Hash, []byte) error { return nil }); err == nil {
		t.Fatal("CertsByHash of a hash not stored succeeded")
	}
}

// The export opens the database file again by its name, on a connection
// of its own: a name that would mean something else as a URI ("?", "#",
// "%20") is still that file.
func TestStreamRowsOddFileName(t *testing.T) {
	ctx := context.Background()
	st, c, spec := filledStore(t, filepath.Join(t.TempDir(), "my db?mode=memory#x%20.db"), 15, "a.com", "b.com")
	n := 0
	if err := store.StreamRows(ctx, st, c, func(*store.Row) error { n++; return nil }); err != nil || n != spec.Records() {
		t.Fatalf("StreamRows: %d records, %v; want %d", n, err, spec.Records())
	}
}

// The export opens the file again by its name: a file put there since the
// store was opened, not mitmguard's, is refused rather than read.
func TestStreamRowsFileReplaced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "m.db")
	st, c, _ := filledStore(t, path, 5, "a.com")
	// Its log emptied first: a log left beside the new file would still
	// be read as the old database's pages.
	exec(t, rawDB(t, path), `PRAGMA wal_checkpoint(TRUNCATE)`)
	other := rawDB(t, filepath.Join(dir, "other.db"))
	exec(t, other, `CREATE TABLE records(x)`)
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "other.db"), path); err != nil {
		t.Fatal(err)
	}
	var fe *store.ForeignError
	err := store.StreamRows(ctx, st, c, func(*store.Row) error { return nil })
	if !errors.As(err, &fe) {
		t.Fatalf("StreamRows of a replaced file = %v, want a *store.ForeignError", err)
	}
}

// A hostile file can make one step of the export's queries run for ever (a
// view in place of a table, which Open does not look at): cancelling the
// context still stops StreamRows and CertsByHash, as it stops a query of
// database/sql, rather than only between rows.
func TestStreamRowsCancelledMidStep(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "a", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Endless views yielding no row: no memory grows while they run.
	db := rawDB(t, path)
	exec(t, db, `DROP TABLE records`)
	exec(t, db, `CREATE VIEW records AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n)
		SELECT 1 AS campaign, 'v' AS vantage, 'h' AS host, 's' AS sni, 'ok' AS outcome, 0 AS time, NULL AS chain,
			1 AS attempts, '' AS traits, '' AS issuer, '' AS error, 0.0 AS ms FROM n WHERE x < 0`)
	exec(t, db, `DROP TABLE certs`)
	exec(t, db, `CREATE VIEW certs AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n)
		SELECT zeroblob(32) AS sha256, x'00' AS der FROM n WHERE x < 0`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func(context.Context) error{
		"StreamRows": func(ctx context.Context) error {
			return store.StreamRows(ctx, st, c, func(*store.Row) error { return nil })
		},
		"CertsByHash": func(ctx context.Context) error {
			return store.CertsByHash(ctx, st, []chain.Hash{{}}, func(chain.Hash, []byte) error { return nil })
		},
	} {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- read(cctx) }()
		// Most likely inside the endless step by then; the test holds
		// whenever the cancellation comes.
		time.AfterFunc(200*time.Millisecond, cancel)
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s cancelled = %v, want context.Canceled", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s went on 20 s after it was cancelled", name)
		}
	}
}

// A value of a type Write never stores (a crafted or damaged file) is
// refused by the export, naming its row, as Records refuses it, rather than
// read as whatever SQLite converts it to ('7x' as 7, a text as a chain).
func TestStreamRowsRefusesMalformedRows(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, edit string }{
		{"time as text", `UPDATE records SET time = 'notatime' WHERE sni = 'b.com'`},
		{"attempts as text", `UPDATE records SET attempts = '7x' WHERE sni = 'b.com'`},
		{"attempts as real", `UPDATE records SET attempts = 2.5 WHERE sni = 'b.com'`},
		{"chain of 33 bytes", `UPDATE records SET chain = zeroblob(33) WHERE sni = 'b.com'`},
		{"chain as text", `UPDATE records SET chain = 'abc' WHERE sni = 'b.com'`},
		{"ms as text", `UPDATE records SET ms = '1.5x' WHERE sni = 'b.com'`},
		{"ms as blob", `UPDATE records SET ms = x'00' WHERE sni = 'b.com'`},
		{"time as real", `UPDATE records SET time = 1.5 WHERE sni = 'b.com'`},
		{"control chain as text", `UPDATE controls SET chain = 'x'`},
		{"control chain of 31 bytes", `UPDATE controls SET chain = zeroblob(31)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.db")
			st, c, spec := filledStore(t, path, 3, "a.com", "b.com")
			n := 0
			if err := store.StreamRows(ctx, st, c, func(*store.Row) error { n++; return nil }); err != nil || n != spec.Records() {
				t.Fatalf("before the edit: %d records, %v", n, err)
			}
			exec(t, rawDB(t, path), tc.edit)
			var me *store.MalformedError
			err := store.StreamRows(ctx, st, c, func(*store.Row) error { return nil })
			if !errors.As(err, &me) || me.Vantage != "kz" || me.Host == "" {
				t.Fatalf("StreamRows = %v, want a *store.MalformedError naming the row", err)
			}
		})
	}
}

// A file in UTF-16 (PRAGMA encoding, a crafted one: Open makes UTF-8
// files) is refused by the export, whose text would otherwise come out as
// UTF-16 bytes (and whose merge of the cursors assumes UTF-8 order).
func TestStreamRowsUTF16File(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	db := rawDB(t, path)
	exec(t, db, `PRAGMA encoding = 'UTF-16le'`)
	exec(t, db, `CREATE TABLE t(x); DROP TABLE t`) // the encoding is set by the first write
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st, c, spec := filledStore(t, path, 3, "a.com", "b.com")
	var want, got []pair
	if err := st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		want = append(want, pair{r, ctl})
		return nil
	}); err != nil || len(want) != spec.Records() {
		t.Fatalf("Records: %d, %v", len(want), err)
	}
	err := store.StreamRows(ctx, st, c, func(row *store.Row) error {
		r, ctl := row.Record()
		got = append(got, pair{r, ctl})
		return nil
	})
	var fe *store.ForeignError
	if !errors.As(err, &fe) {
		t.Fatalf("StreamRows of a UTF-16 file: %v, want a *store.ForeignError; first record %+v, Records' %+v", err, got[:min(1, len(got))], want[0])
	}
}

// The export only reads, even a file that replaced the store's since it
// was opened: someone else's WAL-mode database, whose log is not yet
// checkpointed, is refused and left as it was (no checkpoint, its log kept),
// which a read-write connection closing last would not do.
func TestStreamRowsReplacedFileLeftAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "m.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "a", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	exec(t, rawDB(t, path), `PRAGMA wal_checkpoint(TRUNCATE)`)
	// Someone else's database, its last write still in its log: copied
	// while its writer has it open, so no connection has the copy open.
	other := rawDB(t, filepath.Join(dir, "other.db"))
	exec(t, other, `PRAGMA journal_mode=WAL`)
	exec(t, other, `CREATE TABLE t(x); INSERT INTO t VALUES(1)`)
	exec(t, other, `PRAGMA wal_checkpoint(TRUNCATE)`)
	exec(t, other, `INSERT INTO t VALUES(2)`)
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, "other.db"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "copy.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(path + "-wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "copy.db-wal"), path+"-wal"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "copy.db"), path); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil || len(wal) == 0 {
		t.Fatalf("the copy's log: %d bytes, %v", len(wal), err)
	}
	var fe *store.ForeignError
	if err := store.StreamRows(ctx, st, c, func(*store.Row) error { return nil }); !errors.As(err, &fe) {
		t.Fatalf("StreamRows of a replaced file = %v, want a *store.ForeignError", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !reflect.DeepEqual(after, before) {
		t.Errorf("the replaced file was written (%v)", err)
	}
	if wal2, err := os.ReadFile(path + "-wal"); err != nil || !reflect.DeepEqual(wal2, wal) {
		t.Errorf("the replaced file's log was changed or removed (%d bytes, %v)", len(wal2), err)
	}
}

// filledStore opens an SQLite store at path, closed when the test ends,
// with one generated campaign "a" of the hosts x domains seen from "kz".
func filledStore(t *testing.T, path string, hosts int, domains ...string) (*store.SQLite, *store.Campaign, exporttest.Spec) {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	spec := exporttest.Spec{Campaign: "a", Start: time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC), Span: time.Hour,
		Hosts: hosts, Domains: domains, Targeted: 1, Vantages: []string{"kz"}, Intercept: []float64{0.5}, Seed: 1}
	c, err := exporttest.Fill(context.Background(), st, spec)
	if err != nil {
		t.Fatal(err)
	}
	return st, c, spec
}
