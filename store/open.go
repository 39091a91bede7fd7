package store

import (
	"context"
	"strings"
)

// IsPostgresDSN reports whether a --db value names a PostgreSQL database
// (postgres://... or postgresql://...) rather than an SQLite file.
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// OpenDSN opens the store a --db value names: a PostgreSQL database for a
// postgres:// or postgresql:// URL, else an SQLite file at that path.
func OpenDSN(ctx context.Context, dsn string) (Store, error) {
	if IsPostgresDSN(dsn) {
		return OpenPostgres(ctx, dsn)
	}
	return Open(dsn)
}
