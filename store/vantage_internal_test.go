package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mitmguard/mitmguard/internal/pgtest"
	"github.com/mitmguard/mitmguard/measure"
)

// migratedToVantages checks a store opened on a database of the schema
// before the vantages table, holding one record: the record is there, no
// vantage point is declared, and one can be.
func migratedToVantages(t *testing.T, st Store) {
	t.Helper()
	ctx := context.Background()
	c, err := st.Campaign(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	var got []measure.Record
	if err := st.Records(ctx, c, func(r measure.Record, _ measure.Control) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Vantage != "kz" || got[0].SNI != "facebook.com" || got[0].Outcome != "mitm.suspected" {
		t.Fatalf("records after migration: %+v", got)
	}
	if vs, err := st.Vantages(ctx, c); err != nil || len(vs) != 0 {
		t.Fatalf("declarations after migration: %v %v", vs, err)
	}
	kz := measure.Vantage{Name: "kz", ASN: 9198, Country: "KZ"}
	if v, err := st.DeclareVantage(ctx, c, kz); err != nil || v != kz {
		t.Fatalf("declaring after migration: %+v %v", v, err)
	}
}

// The version before the vantages table, found by position rather than by
// number: migrations appended by others may renumber it.
func beforeVantages(t *testing.T, list []string, m string) int {
	i := slices.Index(list, m)
	if i < 1 {
		t.Fatal("the vantages migration is not in the list")
	}
	return i
}

// An SQLite file of the schema before the vantages table, with a record, is
// migrated to the current version and keeps it.
func TestMigrateSQLiteToVantages(t *testing.T) {
	prev := beforeVantages(t, migrations, sqliteVantages)
	path := filepath.Join(t.TempDir(), "prev.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, m := range migrations[:prev] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = %d;
	INSERT INTO campaigns VALUES(1, 'old', 1764072000000000000, '{}');
	INSERT INTO controls VALUES(1, 'kz', '127.0.0.1:443', 'ctl', 'ok', NULL);
	INSERT INTO records VALUES(1, 'kz', '127.0.0.1:443', 'facebook.com', 'mitm.suspected', 1764072000123, NULL, 1, 'rsa-e3', 'CN=x', NULL, 2.5);`,
		ApplicationID, prev)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	migratedToVantages(t, st)
	var version int
	if err := st.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != SchemaVersion {
		t.Errorf("version %d after migration, want %d: %v", version, SchemaVersion, err)
	}
}

// The same for PostgreSQL.
func TestMigratePostgresToVantages(t *testing.T) {
	prev := beforeVantages(t, pgMigrations, pgVantages)
	dsn := pgtest.Schema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE mitmguard_migrations(version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for i, m := range pgMigrations[:prev] {
		if _, err := conn.Exec(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO mitmguard_migrations(version) VALUES($1)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `
	INSERT INTO campaigns(id, started, params) VALUES('old', '2025-11-25T12:00:00Z', '{}');
	INSERT INTO controls VALUES(1, 'kz', '127.0.0.1:443', 'ctl', 'ok', NULL);
	INSERT INTO records VALUES(1, 'kz', '127.0.0.1:443', 'facebook.com', 'mitm.suspected', '2025-11-25T12:00:00.123Z', NULL, 1, 'rsa-e3', 'CN=x', NULL, 2.5);`); err != nil {
		t.Fatal(err)
	}
	st, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	migratedToVantages(t, st)
	var version int
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM mitmguard_migrations`).Scan(&version); err != nil || version != SchemaVersion {
		t.Errorf("version %d after migration, want %d: %v", version, SchemaVersion, err)
	}
}

// A vantages row edited by someone else is refused when it holds what no
// declaration makes: an ASN out of 32 bits, a country that is not two
// upper-case letters, a name with spaces or escape sequences; and a
// campaign with more declarations than the bound.
func TestVantagesRefuseEditedRows(t *testing.T) {
	ctx := context.Background()
	st, err := Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &Campaign{ID: "edited", Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []string{
		`asn = -1`, `asn = 4294967296`, `asn = 'many'`, `country = 'kz'`, `country = '=1'`, `country = 'KAZ'`,
		`vantage = 'a b'`, `vantage = char(27) || '[2J'`, `vantage = ''`, `vantage = replace(hex(zeroblob(40)), '0', 'x')`,
	} {
		if _, err := st.db.ExecContext(ctx, `DELETE FROM vantages`); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DeclareVantage(ctx, c, measure.Vantage{Name: "kz", ASN: 9198, Country: "KZ"}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.db.ExecContext(ctx, `UPDATE vantages SET `+edit); err != nil {
			t.Fatalf("%s: %v", edit, err)
		}
		if vs, err := st.Vantages(ctx, c); err == nil {
			t.Errorf("a row edited with %s is read back: %+v", edit, vs)
		}
	}
	if _, err := st.db.ExecContext(ctx, `DELETE FROM vantages;
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i <= ?)
		INSERT INTO vantages(campaign, vantage) SELECT ?, 'v' || i FROM n`, maxVantages, c.n); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Vantages(ctx, c); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("%d declarations read back: %v", maxVantages+1, err)
	}
}

// PostgreSQL's own checks refuse an out-of-range ASN or a bad country even
// from a client that is not mitmguard; a name is checked on reading.
func TestPostgresVantagesRefuseEditedRows(t *testing.T) {
	ctx := context.Background()
	st, err := OpenPostgres(ctx, pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &Campaign{ID: "edited", Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeclareVantage(ctx, c, measure.Vantage{Name: "kz", ASN: 9198, Country: "KZ"}); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []string{`asn = -1`, `asn = 4294967296`, `country = 'kz'`} {
		if _, err := st.pool.Exec(ctx, `UPDATE vantages SET `+edit); err == nil {
			t.Errorf("the database took %s", edit)
		}
	}
	if _, err := st.pool.Exec(ctx, `UPDATE vantages SET vantage = E'\x1b[2J'`); err != nil {
		t.Fatal(err)
	}
	if vs, err := st.Vantages(ctx, c); err == nil {
		t.Errorf("an escape sequence for a name is read back: %+v", vs)
	}
}
