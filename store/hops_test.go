package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mitmguard/mitmguard/internal/pgtest"
	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/store/storetest"
)

// migratedKeepsRecords checks a store opened on a database of the previous
// schema: its record is there, and a trace of it can be stored and read.
func migratedKeepsRecords(t *testing.T, st store.Store) {
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
	if len(got) != 1 || got[0].Vantage != "kz" || got[0].SNI != "facebook.com" || got[0].Outcome != outcome.Suspected {
		t.Fatalf("records after migration: %+v", got)
	}
	if err := st.WriteTrace(ctx, c, storetest.LocatedTrace("kz", "127.0.0.1:443", "facebook.com")); err != nil {
		t.Fatal(err)
	}
	var traces []store.Trace
	if err := st.Traces(ctx, c, func(tr store.Trace) error { traces = append(traces, tr); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(traces) != 1 || traces[0].Result.Finding != locate.Located || *traces[0].Result.FirstForgedHop != 3 {
		t.Fatalf("traces after migration: %+v", traces)
	}
}

// An SQLite file of schema version 2 (records, no hop results) with records
// in it is migrated to the current version and keeps them.
func TestMigrateSQLiteFromVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	db := rawDB(t, path)
	exec(t, db, `
	CREATE TABLE campaigns(n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, started INTEGER NOT NULL, params TEXT NOT NULL);
	CREATE TABLE certs(sha256 BLOB PRIMARY KEY, der BLOB NOT NULL) WITHOUT ROWID;
	CREATE TABLE controls(campaign INTEGER NOT NULL, vantage TEXT NOT NULL, host TEXT NOT NULL, sni TEXT NOT NULL, outcome TEXT NOT NULL, chain BLOB,
		PRIMARY KEY(campaign, vantage, host)) WITHOUT ROWID;
	CREATE TABLE records(campaign INTEGER NOT NULL, vantage TEXT NOT NULL, host TEXT NOT NULL, sni TEXT NOT NULL, outcome TEXT NOT NULL, time INTEGER NOT NULL,
		chain BLOB, attempts INTEGER NOT NULL, traits TEXT, issuer TEXT, error TEXT, ms REAL, PRIMARY KEY(campaign, vantage, host, sni)) WITHOUT ROWID;
	INSERT INTO campaigns VALUES(1, 'old', 1764072000000000000, '{}');
	INSERT INTO controls VALUES(1, 'kz', '127.0.0.1:443', 'ctl', 'ok', NULL);
	INSERT INTO records VALUES(1, 'kz', '127.0.0.1:443', 'facebook.com', 'mitm.suspected', 1764072000123, NULL, 1, 'rsa-e3', 'CN=x', NULL, 2.5);
	PRAGMA application_id = 1835496036;
	PRAGMA user_version = 2;`)
	db.Close()

	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	migratedKeepsRecords(t, st)
	var version int
	rawDB(t, path).QueryRow(`PRAGMA user_version`).Scan(&version)
	if version != store.SchemaVersion {
		t.Errorf("version %d after migration, want %d", version, store.SchemaVersion)
	}
}

// A PostgreSQL schema at version 1 (what mitmguard wrote before hop
// results) with records in it is migrated to the current version, the same
// number as SQLite's, and keeps them.
func TestMigratePostgresFromVersion1(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
	CREATE TABLE mitmguard_migrations(version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());
	INSERT INTO mitmguard_migrations(version) VALUES(1);
	CREATE TABLE campaigns(n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE, started timestamptz NOT NULL, params text NOT NULL);
	CREATE TABLE certs(sha256 bytea PRIMARY KEY CHECK (length(sha256) = 32), der bytea NOT NULL);
	CREATE TABLE controls(campaign bigint NOT NULL REFERENCES campaigns(n) ON DELETE CASCADE, vantage text COLLATE "C" NOT NULL, host text COLLATE "C" NOT NULL,
		sni text NOT NULL, outcome text NOT NULL, chain bytea, PRIMARY KEY(campaign, vantage, host));
	CREATE TABLE records(campaign bigint NOT NULL, vantage text COLLATE "C" NOT NULL, host text COLLATE "C" NOT NULL, sni text COLLATE "C" NOT NULL,
		outcome text NOT NULL, time timestamptz NOT NULL, chain bytea, attempts integer NOT NULL, traits text, issuer text, error text, ms double precision,
		PRIMARY KEY(campaign, vantage, host, sni), FOREIGN KEY(campaign, vantage, host) REFERENCES controls ON DELETE CASCADE);
	INSERT INTO campaigns(id, started, params) VALUES('old', '2025-11-25T12:00:00Z', '{}');
	INSERT INTO controls VALUES(1, 'kz', '127.0.0.1:443', 'ctl', 'ok', NULL);
	INSERT INTO records VALUES(1, 'kz', '127.0.0.1:443', 'facebook.com', 'mitm.suspected', '2025-11-25T12:00:00.123Z', NULL, 1, 'rsa-e3', 'CN=x', NULL, 2.5);`); err != nil {
		t.Fatal(err)
	}
	st := openPG(t, dsn)
	defer st.Close()
	migratedKeepsRecords(t, st)
	var version int
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM mitmguard_migrations`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != store.SchemaVersion {
		t.Errorf("version %d after migration, want %d (SQLite's)", version, store.SchemaVersion)
	}
}

// A hop_results row edited by someone else (the database may come from
// anyone) is refused when it holds what no write makes: a hop number out of
// 1..255, text longer than 64 KiB, or a router that is not an address (text
// a terminal, a spreadsheet or a page would take for commands).
func TestTracesRefuseEditedRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "edited", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	hr := &measure.HostResult{Control: measure.Control{Vantage: "kz", Host: "127.0.0.1:443", SNI: "ctl.control.mitmguard.invalid", Outcome: outcome.OK},
		Records: []measure.Record{{Vantage: "kz", Host: "127.0.0.1:443", SNI: "facebook.com", Outcome: outcome.Suspected, Time: time.Now(), Attempts: 1}}}
	if _, err := st.Write(ctx, c, []*measure.HostResult{hr}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, edit := range []string{
		`first_forged_hop = -3`, `first_forged_hop = 0`, `first_forged_hop = 256`, `server_hops = 1099511627776`, `blocked_at_hop = -1`,
		`last_clean_router = '=HYPERLINK("http://evil.example/","x")'`, "last_clean_router = char(27) || '[2J'",
		`hops = '[{"ttl":1,"outcome":"expired","router":"<script>"}]'`,
		`message = replace(hex(zeroblob(40000)), '0', 'x')`, `error = replace(hex(zeroblob(40000)), '0', 'x')`,
		`finding = replace(hex(zeroblob(40000)), '0', 'x')`,
		// Last: the row keyed by a forged host stays beside the ones
		// written after it. Its key must not forge a line of the error.
		"host = '127.0.0.1:443' || char(10) || 'store: all is fine', first_forged_hop = 0",
	} {
		if err := st.WriteTrace(ctx, c, storetest.LocatedTrace("kz", "127.0.0.1:443", "facebook.com")); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE hop_results SET `+edit); err != nil {
			t.Fatalf("%s: %v", edit, err)
		}
		err := st.Traces(ctx, c, func(tr store.Trace) error { return nil })
		if err == nil {
			t.Errorf("a row edited with %s is read back", edit)
		} else if strings.ContainsAny(err.Error(), "\n\x1b") {
			t.Errorf("a row edited with %s: error %q holds a control character", edit, err)
		}
	}
}
