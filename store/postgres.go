package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
)

// pgMigrations bring the PostgreSQL schema from version i to i+1; the
// versions applied are rows of mitmguard_migrations. Text keys use the "C"
// collation so that records come back in byte order, as from SQLite, and
// the indexes stay cheap.
var pgMigrations = []string{
	// 1: campaigns, certificates once by hash, one control per (campaign,
	// vantage, host), records unique on (campaign, vantage, host, SNI).
	`CREATE TABLE campaigns(
		n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		id text COLLATE "C" NOT NULL UNIQUE,
		started timestamptz NOT NULL,
		params text NOT NULL
	);
	CREATE TABLE certs(
		sha256 bytea PRIMARY KEY CHECK (length(sha256) = 32),
		der bytea NOT NULL
	);
	CREATE TABLE controls(
		campaign bigint NOT NULL REFERENCES campaigns(n) ON DELETE CASCADE,
		vantage text COLLATE "C" NOT NULL,
		host text COLLATE "C" NOT NULL,
		sni text NOT NULL,
		outcome text NOT NULL,
		chain bytea,
		PRIMARY KEY(campaign, vantage, host)
	);
	CREATE TABLE records(
		campaign bigint NOT NULL,
		vantage text COLLATE "C" NOT NULL,
		host text COLLATE "C" NOT NULL,
		sni text COLLATE "C" NOT NULL,
		outcome text NOT NULL,
		time timestamptz NOT NULL,
		chain bytea,
		attempts integer NOT NULL,
		traits text,
		issuer text,
		error text,
		ms double precision,
		PRIMARY KEY(campaign, vantage, host, sni),
		FOREIGN KEY(campaign, vantage, host) REFERENCES controls ON DELETE CASCADE
	);`,
	// 2: nothing: SQLite's version 2 added the vantage point, which this
	// schema has had from version 1. Both backends keep one numbering.
	`SELECT 1`,
	// 3: hop results of probe --locate (store/postgres_hops.go).
	pgHopResults,
	// 4: declared vantage points (store/postgres_vantage.go).
	pgVantages,
}

// pgTables are the tables pgMigrations create.
var pgTables = []string{"campaigns", "certs", "controls", "records", "vantages"}

// pgLockKey is the advisory lock that serialises migrations: workers
// started together migrate a new database once.
const pgLockKey = 0x6d677264 // "mgrd", as SQLite's application_id

// Postgres is a Store in a PostgreSQL database, shared by the workers of
// many vantage points.
type Postgres struct {
	pool *pgxpool.Pool
}

var _ Store = (*Postgres)(nil)

// PostgresError says why a PostgreSQL DSN is unusable. It names the server
// as user@host:port/database and never shows the password.
type PostgresError struct {
	Where  string
	Reason string
	Err    error
}

func (e *PostgresError) Error() string { return "store: PostgreSQL " + e.Where + ": " + e.Reason }

func (e *PostgresError) Unwrap() error { return e.Err }

// OpenPostgres connects to the database at dsn (postgres://... or
// key=value), checks that the server answers within a few seconds, and
// migrates the schema. A schema newer than this build is refused.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, &PostgresError{Where: "--db", Reason: "not a valid DSN (postgres://user:password@host:port/database)"}
	}
	cc := cfg.ConnConfig
	where := fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > 10*time.Second {
		cc.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, pgOpenError(where, cc.Password, err)
	}
	p := &Postgres{pool: pool}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		var nerr *NewerError
		if errors.As(err, &nerr) {
			nerr.Path = where
			return nil, nerr
		}
		var ferr *ForeignError
		if errors.As(err, &ferr) {
			ferr.Path = where
			return nil, ferr
		}
		return nil, pgOpenError(where, cc.Password, err)
	}
	return p, nil
}

func pgOpenError(where, password string, err error) error {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "28P01":
		return &PostgresError{where, "the server refused the password (SQLSTATE 28P01)", err}
	case errors.As(err, &pe):
		return &PostgresError{where, pe.Message + " (SQLSTATE " + pe.Code + ")", err}
	}
	msg := err.Error()
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	return &PostgresError{where, "cannot connect: " + msg, err}
}

// migrate applies the missing migrations in one transaction under an
// advisory lock.
func (p *Postgres) migrate(ctx context.Context) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockKey); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS mitmguard_migrations(
		version integer PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM mitmguard_migrations`).Scan(&version); err != nil {
		return err
	}
	if version > len(pgMigrations) {
		return &NewerError{Version: version, Latest: len(pgMigrations)}
	}
	if version == 0 {
		// A schema mitmguard never migrated may hold another program's
		// tables under our names: refuse it rather than fail half-way or,
		// worse, write into them.
		var taken []string
		if err := tx.QueryRow(ctx, `SELECT COALESCE(array_agg(table_name::text ORDER BY table_name), '{}')
			FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_name = ANY($1)`, pgTables).Scan(&taken); err != nil {
			return err
		}
		if len(taken) > 0 {
			return &ForeignError{Reason: "it has tables " + strings.Join(taken, ", ") + " that mitmguard did not create"}
		}
	}
	for i := version; i < len(pgMigrations); i++ {
		if _, err := tx.Exec(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mitmguard_migrations(version) VALUES($1)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Close closes the connections.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// Transient reports errors that may pass when tried again: a lost or
// refused connection (the server restarting), a serialization failure or
// deadlock, too many connections.
func (p *Postgres) Transient(err error) bool { return pgTransient(err) }

func pgTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "40"),                           // serialization failure, deadlock
			pe.Code == "53300",                                         // too many connections
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutting down, starting up
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, pgconn.ErrConnClosed)
}

// CreateCampaign records a new campaign.
func (p *Postgres) CreateCampaign(ctx context.Context, c *Campaign) error {
	err := p.pool.QueryRow(ctx, `INSERT INTO campaigns(id, started, params) VALUES($1, $2, $3) RETURNING n`,
		c.ID, c.Started, c.Params).Scan(&c.n)
	if err != nil {
		return fmt.Errorf("store: campaign %s: %w", c.ID, err)
	}
	return nil
}

const pgCampaignCols = `SELECT n, id, started, params FROM campaigns`

// Campaign returns a campaign by id, or the newest one for "".
func (p *Postgres) Campaign(ctx context.Context, id string) (*Campaign, error) {
	q, args := pgCampaignCols+` WHERE id = $1`, []any{id}
	if id == "" {
		q, args = pgCampaignCols+` ORDER BY started DESC, n DESC LIMIT 1`, nil
	}
	c, err := pgScanCampaign(p.pool.QueryRow(ctx, q, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoCampaign
	}
	return c, err
}

func pgScanCampaign(row pgx.Row) (*Campaign, error) {
	var c Campaign
	if err := row.Scan(&c.n, &c.ID, &c.Started, &c.Params); err != nil {
		return nil, err
	}
	c.Started = c.Started.UTC()
	return &c, nil
}

// Campaigns returns every campaign, oldest first.
func (p *Postgres) Campaigns(ctx context.Context) ([]*Campaign, error) {
	rows, err := p.pool.Query(ctx, pgCampaignCols+` ORDER BY started, n`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Campaign
	for rows.Next() {
		c, err := pgScanCampaign(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Write stores the results of several hosts in one transaction and returns
// the certificates that were not stored before. A host whose control is
// stored already keeps what it has: its records are not written again.
func (p *Postgres) Write(ctx context.Context, c *Campaign, results []*measure.HostResult) (newCerts [][]byte, err error) {
	// Certificates are inserted in hash order, once each: two writers
	// sharing certificates then take their row locks in the same order and
	// never deadlock.
	type cert struct {
		sum [32]byte
		der []byte
	}
	var certs []cert
	for _, hr := range results {
		for _, der := range hr.Certs {
			certs = append(certs, cert{sha256.Sum256(der), der})
		}
	}
	slices.SortFunc(certs, func(a, b cert) int { return bytes.Compare(a.sum[:], b.sum[:]) })
	certs = slices.CompactFunc(certs, func(a, b cert) bool { return a.sum == b.sum })

	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	for _, ct := range certs {
		b.Queue(`INSERT INTO certs(sha256, der) VALUES($1, $2) ON CONFLICT DO NOTHING`, ct.sum[:], ct.der)
	}
	for _, hr := range results {
		ct := hr.Control
		b.Queue(`INSERT INTO controls(campaign, vantage, host, sni, outcome, chain) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			c.n, vantage(ct.Vantage), ct.Host, ct.SNI, string(ct.Outcome), packHashes(ct.Chain))
	}
	br := tx.SendBatch(ctx, b)
	for _, ct := range certs {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, err
		}
		if tag.RowsAffected() == 1 {
			newCerts = append(newCerts, ct.der)
		}
	}
	var rows [][]any
	for _, hr := range results {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			continue // the host is stored already: keep what it was
		}
		for _, r := range hr.Records {
			rows = append(rows, []any{c.n, vantage(r.Vantage), r.Host, r.SNI, string(r.Outcome), r.Time, packHashes(r.Chain),
				int32(r.Attempts), nullIfEmpty(strings.Join(r.Traits, ",")), nullIfEmpty(r.Issuer), nullIfEmpty(r.Error), r.MS})
		}
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	// The controls inserted above are this transaction's, so no record of
	// their hosts exists: COPY needs no conflict handling.
	if len(rows) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"records"},
			[]string{"campaign", "vantage", "host", "sni", "outcome", "time", "chain", "attempts", "traits", "issuer", "error", "ms"},
			pgx.CopyFromRows(rows)); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return newCerts, nil
}

// HostDone reports whether the host's records are stored.
func (p *Postgres) HostDone(ctx context.Context, c *Campaign, vant, host string) (bool, error) {
	var done bool
	err := p.pool.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM controls WHERE campaign = $1 AND vantage = $2 AND host = $3)`,
		c.n, vantage(vant), host).Scan(&done)
	return done, err
}

// Records calls fn for every record of the campaign, in (vantage, host,
// SNI) order, with the host's control.
func (p *Postgres) Records(ctx context.Context, c *Campaign, fn func(measure.Record, measure.Control) error) error {
	rows, err := p.pool.Query(ctx, `
		SELECT r.vantage, r.host, r.sni, r.outcome, r.time, r.chain, r.attempts, COALESCE(r.traits, ''), COALESCE(r.issuer, ''), COALESCE(r.error, ''), COALESCE(r.ms, 0),
		       c.sni, c.outcome, c.chain
		FROM records r JOIN controls c USING (campaign, vantage, host)
		WHERE r.campaign = $1 ORDER BY r.vantage, r.host, r.sni`, c.n)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r measure.Record
		var ct measure.Control
		var chainB, ctlChain []byte
		var traits, out, ctlOut string
		var attempts int32
		if err := rows.Scan(&r.Vantage, &r.Host, &r.SNI, &out, &r.Time, &chainB, &attempts, &traits, &r.Issuer, &r.Error, &r.MS, &ct.SNI, &ctlOut, &ctlChain); err != nil {
			return err
		}
		r.Attempts = int(attempts)
		r.Outcome, ct.Outcome, ct.Host, ct.Vantage = outcome.Outcome(out), outcome.Outcome(ctlOut), r.Host, r.Vantage
		r.Time = r.Time.UTC()
		r.Chain, ct.Chain = unpackHashes(chainB), unpackHashes(ctlChain)
		if traits != "" {
			r.Traits = strings.Split(traits, ",")
		}
		if err := fn(r, ct); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Count returns the number of records of the campaign.
func (p *Postgres) Count(ctx context.Context, c *Campaign) (int, error) {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT count(*) FROM records WHERE campaign = $1`, c.n).Scan(&n)
	return int(n), err
}

// VantageCounts returns how many records of the campaign each vantage
// point has stored.
func (p *Postgres) VantageCounts(ctx context.Context, c *Campaign) (map[string]int, error) {
	return pgGroupCount(ctx, p.pool, `SELECT vantage, count(*) FROM records WHERE campaign = $1 GROUP BY vantage`, c.n)
}

// OutcomeCounts returns how many records of the campaign have each outcome.
func (p *Postgres) OutcomeCounts(ctx context.Context, c *Campaign) (map[outcome.Outcome]int, error) {
	m, err := pgGroupCount(ctx, p.pool, `SELECT outcome, count(*) FROM records WHERE campaign = $1 GROUP BY outcome`, c.n)
	if err != nil {
		return nil, err
	}
	out := make(map[outcome.Outcome]int, len(m))
	for k, v := range m {
		out[outcome.Outcome(k)] = v
	}
	return out, nil
}

func pgGroupCount(ctx context.Context, pool *pgxpool.Pool, q string, args ...any) (map[string]int, error) {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = int(n)
	}
	return out, rows.Err()
}

// Cert returns a stored certificate by hash.
func (p *Postgres) Cert(ctx context.Context, h chain.Hash) ([]byte, error) {
	var der []byte
	err := p.pool.QueryRow(ctx, `SELECT der FROM certs WHERE sha256 = $1`, h[:]).Scan(&der)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store: no certificate %s", h)
	}
	return der, err
}
