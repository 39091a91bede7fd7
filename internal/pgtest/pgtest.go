// Package pgtest gives tests a real PostgreSQL server: the DSN in
// MITMGUARD_TEST_POSTGRES (printed by .ci/postgres.sh), and a fresh schema
// per test so tests running in parallel, or a failed run's leftovers, never
// see each other's tables.
//
// Without the variable a test is skipped outside CI and failed under CI
// (internal/testtool), because CI starts the server and a silent skip there
// would hide a broken setup.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mitmguard/mitmguard/internal/testtool"
)

// EnvVar names the variable holding the server's DSN.
const EnvVar = "MITMGUARD_TEST_POSTGRES"

// DSN returns the test server's DSN, or stops the test when none is set.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvVar)
	if dsn == "" {
		testtool.Missing(t, "a PostgreSQL server ("+EnvVar+`; start one with: eval "$(.ci/postgres.sh)")`)
	}
	return dsn
}

// Schema creates a new, empty schema for this test and returns a DSN whose
// search_path is that schema, so everything the code under test creates
// without a schema name lands there. The schema and all it holds are
// dropped when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	base := DSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", EnvVar, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", name, err)
		}
	})
	return WithParam(base, "search_path", name)
}

// WithParam returns dsn (URL or key=value form) with one more connection
// parameter, e.g. search_path, or replaced when it is there already.
func WithParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set(key, value)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " " + key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
}

// WithPassword returns the URL-form dsn with its password replaced, for
// tests of what a wrong password does.
func WithPassword(t testing.TB, dsn, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		t.Fatalf("pgtest: %s is not a postgres:// URL with a user", EnvVar)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}
