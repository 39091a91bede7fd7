package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/store/storetest"
)

func TestSQLiteSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// A file written by the first releases (no schema version, no vantage) is
// migrated: its records come back from vantage "local" and resume finds
// its hosts.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := rawDB(t, path)
	exec(t, db, `
	CREATE TABLE campaigns(n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, started INTEGER NOT NULL, params TEXT NOT NULL);
	CREATE TABLE certs(sha256 BLOB PRIMARY KEY, der BLOB NOT NULL) WITHOUT ROWID;
	CREATE TABLE controls(campaign INTEGER NOT NULL, host TEXT NOT NULL, sni TEXT NOT NULL, outcome TEXT NOT NULL, chain BLOB, PRIMARY KEY(campaign, host)) WITHOUT ROWID;
	CREATE TABLE records(campaign INTEGER NOT NULL, host TEXT NOT NULL, sni TEXT NOT NULL, outcome TEXT NOT NULL, time INTEGER NOT NULL, chain BLOB,
		attempts INTEGER NOT NULL, traits TEXT, issuer TEXT, error TEXT, ms REAL, PRIMARY KEY(campaign, host, sni)) WITHOUT ROWID;
	INSERT INTO campaigns VALUES(1, 'old', 1764072000000000000, '{}');
	INSERT INTO controls VALUES(1, '127.0.0.1:443', 'ctl', 'ok', NULL);
	INSERT INTO records VALUES(1, '127.0.0.1:443', 'facebook.com', 'mitm.suspected', 1764072000123, NULL, 1, 'rsa-e3', 'CN=x', NULL, 2.5);`)
	db.Close()

	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	c, err := st.Campaign(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	var got []measure.Record
	st.Records(ctx, c, func(r measure.Record, _ measure.Control) error { got = append(got, r); return nil })
	if len(got) != 1 || got[0].Vantage != "local" || got[0].Outcome != outcome.Suspected || got[0].Traits[0] != "rsa-e3" || got[0].MS != 2.5 {
		t.Fatalf("migrated records %+v", got)
	}
	if done, err := st.HostDone(ctx, c, "local", "127.0.0.1:443"); !done || err != nil {
		t.Errorf("HostDone after migration: %v %v", done, err)
	}
	var version, app int
	db = rawDB(t, path)
	db.QueryRow(`PRAGMA user_version`).Scan(&version)
	db.QueryRow(`PRAGMA application_id`).Scan(&app)
	if version != store.SchemaVersion || app != store.ApplicationID {
		t.Errorf("version %d, application id %#x", version, app)
	}
	st.Close()
	// Opening again changes nothing.
	st2, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st2.Close()
}

// A database of another program is refused before anything is written to
// it: the file is byte for byte what it was.
func TestRefuseForeignDatabase(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
	}{
		{"other tables", `CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES(1, 'alice');`},
		{"other tables beside ours", `CREATE TABLE records(x); CREATE TABLE users(id);`},
		{"same names, other columns", `CREATE TABLE records(id INTEGER PRIMARY KEY, body TEXT);`},
		{"an index of its own", `CREATE TABLE certs(sha256 BLOB PRIMARY KEY, der BLOB NOT NULL); CREATE INDEX mine ON certs(der);`},
		{"application id", `PRAGMA application_id = 1234; CREATE TABLE t(x);`},
		{"application id, empty", `PRAGMA application_id = 1234;`},
		{"versioned", `PRAGMA user_version = 7; CREATE TABLE t(x);`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "other.db")
			db := rawDB(t, path)
			exec(t, db, tc.sql)
			db.Close()
			before, _ := os.ReadFile(path)
			st, err := store.Open(path)
			var fe *store.ForeignError
			if !errors.As(err, &fe) {
				if st != nil {
					st.Close()
				}
				t.Fatalf("opened: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("the foreign database was changed")
			}
			if _, err := os.Stat(path + "-wal"); err == nil {
				t.Error("a write-ahead log was started on the foreign database")
			}
		})
	}
	t.Run("not sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "notes.txt")
		os.WriteFile(path, bytes.Repeat([]byte("my notes, not a database\n"), 200), 0o644)
		_, err := store.Open(path)
		var fe *store.ForeignError
		if !errors.As(err, &fe) {
			t.Fatalf("opened: %v", err)
		}
	})
}

func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db := rawDB(t, path)
	exec(t, db, fmt.Sprintf(`PRAGMA user_version = %d`, store.SchemaVersion+1))
	db.Close()
	_, err = store.Open(path)
	var ne *store.NewerError
	if !errors.As(err, &ne) {
		t.Fatalf("opened: %v", err)
	}
}

// A write while another connection holds the database locked fails with
// an error Transient recognises (so the engine retries), and passes once
// the lock is gone.
func TestLockedIsTransient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := store.OpenWith(path, store.Options{BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	c := &store.Campaign{ID: "c", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	other := rawDB(t, path)
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	hr := &measure.HostResult{Control: measure.Control{Host: "127.0.0.1:443", SNI: "ctl", Outcome: outcome.OK},
		Records: []measure.Record{{Host: "127.0.0.1:443", SNI: "a.example", Outcome: outcome.OK, Time: time.Now(), Attempts: 1}}}
	_, err = st.Write(ctx, c, []*measure.HostResult{hr})
	if err == nil || !st.Transient(err) {
		t.Fatalf("write under a lock: %v (transient: %v)", err, err != nil && st.Transient(err))
	}
	if st.Transient(errors.New("disk I/O error")) {
		t.Error("any error is transient")
	}
	conn.ExecContext(ctx, `COMMIT`)
	conn.Close()
	if _, err := st.Write(ctx, c, []*measure.HostResult{hr}); err != nil {
		t.Fatal(err)
	}
}
