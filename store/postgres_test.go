package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mitmguard/mitmguard/internal/pgtest"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/store/storetest"
)

func openPG(t *testing.T, dsn string) *store.Postgres {
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPostgresSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPG(t, pgtest.Schema(t)) })
}

// Workers started together open a new database at once: the schema is
// created once, and every one of them can use it.
func TestPostgresConcurrentMigrate(t *testing.T) {
	dsn := pgtest.Schema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			st, err := store.OpenPostgres(context.Background(), dsn)
			if err == nil {
				st.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, v int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), max(version) FROM mitmguard_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != store.SchemaVersion || v != store.SchemaVersion { // one numbering with SQLite
		t.Fatalf("migrations table: %d rows, version %d", n, v)
	}
	// A database a newer mitmguard migrated is refused, not written.
	if _, err := conn.Exec(context.Background(), `INSERT INTO mitmguard_migrations(version) VALUES(99)`); err != nil {
		t.Fatal(err)
	}
	_, err = store.OpenPostgres(context.Background(), dsn)
	var newer *store.NewerError
	if !errors.As(err, &newer) || newer.Version != 99 || !strings.Contains(err.Error(), "upgrade mitmguard") {
		t.Fatalf("newer schema: %v", err)
	}
}

// OpenDSN picks the backend from the --db value.
func TestOpenDSN(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDSN(ctx, t.TempDir()+"/m.db")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*store.SQLite); !ok {
		t.Errorf("a path opened %T", st)
	}
	st.Close()
	dsn := pgtest.Schema(t)
	st, err = store.OpenDSN(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*store.Postgres); !ok {
		t.Errorf("%s opened %T", dsn, st)
	}
	st.Close()
}

// Bad DSNs fail at once with an error naming the server and the cause,
// never the password.
func TestPostgresBadDSN(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	wrong := pgtest.WithPassword(t, dsn, "not-the-password-4242")
	_, err := store.OpenPostgres(ctx, wrong)
	var pe *store.PostgresError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "refused the password") || strings.Contains(err.Error(), "not-the-password-4242") {
		t.Errorf("wrong password: %v", err)
	}

	// A port nothing listens on: take one and release it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = store.OpenPostgres(ctx, "postgres://u:secretpw@"+addr+"/db?sslmode=disable")
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "cannot connect") || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("unreachable: %v", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("unreachable server took %v to fail", time.Since(start))
	}
	if _, err := store.OpenPostgres(ctx, "postgres://u:secretpw@[::1/db"); !errors.As(err, &pe) || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("malformed: %v", err)
	}
}

// A host already stored keeps its records when a redelivered job writes it
// again in a batch with new hosts: the new hosts are stored, nothing is
// duplicated.
func TestPostgresRedeliveredBatch(t *testing.T) {
	ctx := context.Background()
	st := openPG(t, pgtest.Schema(t))
	defer st.Close()
	c := &store.Campaign{ID: "redeliver", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	c2, err := st.Campaign(ctx, "redeliver")
	if err != nil {
		t.Fatal(err)
	}
	der := storetest.Cert(t, "x")
	hr := func(h string) *measure.HostResult {
		return &measure.HostResult{
			Control: measure.Control{Vantage: "a", Host: h, SNI: "ctl", Outcome: "ok"},
			Records: []measure.Record{{Vantage: "a", Host: h, SNI: "x.example", Outcome: "ok", Time: time.Now(), Attempts: 1}},
			Certs:   [][]byte{der, der},
		}
	}
	if _, err := st.Write(ctx, c2, []*measure.HostResult{hr("127.0.0.1:443")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(ctx, c2, []*measure.HostResult{hr("127.0.0.1:443"), hr("127.0.0.2:443")}); err != nil {
		t.Fatal(err)
	}
	got, err := st.VantageCounts(ctx, c2)
	if err != nil || len(got) != 1 || got["a"] != 2 {
		t.Fatalf("per vantage %v %v", got, err)
	}
}

// TestPostgresTransientConnClosed: a connection pgx already closed is
// recognised by pgx's sentinel, wrapped or not, and not by the words
// "conn closed" in any error's text.
func TestPostgresTransientConnClosed(t *testing.T) {
	var p *store.Postgres
	if !p.Transient(fmt.Errorf("write batch: %w", pgconn.ErrConnClosed)) {
		t.Error("a wrapped pgconn.ErrConnClosed is not transient")
	}
	if p.Transient(errors.New(`check: host "conn closed.example" refused`)) {
		t.Error(`an error that merely says "conn closed" is transient`)
	}
}

// A schema that another program wrote, with its own table under one of
// mitmguard's names, is refused before anything is created or written in
// it; the SQLite backend refuses such a file the same way.
func TestPostgresRefuseForeignSchema(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE records(id integer PRIMARY KEY, body text);
		INSERT INTO records VALUES (1, 'theirs')`); err != nil {
		t.Fatal(err)
	}
	_, err = store.OpenPostgres(ctx, dsn)
	var fe *store.ForeignError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "records") || !strings.Contains(err.Error(), "mitmguard_test@") {
		t.Fatalf("foreign schema: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the foreign schema has %d tables after the refused open, want its 1", n)
	}
}
