package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
)

// ApplicationID marks an SQLite file as mitmguard's (PRAGMA application_id,
// "mgrd"), so that a database of another program is never mistaken for one.
const ApplicationID = 0x6d677264

// migrations bring the schema from version i to i+1 (PRAGMA user_version).
// Version 1 is the schema of the first releases, which set no version; a
// file at version 0 holding exactly those tables is taken as version 1.
var migrations = []string{
	// 1: campaigns, certificates once by hash, one control per host.
	`CREATE TABLE IF NOT EXISTS campaigns(
		n INTEGER PRIMARY KEY,
		id TEXT NOT NULL UNIQUE,
		started INTEGER NOT NULL,
		params TEXT NOT NULL
	);
	CREATE TABLE IF NOT EXISTS certs(
		sha256 BLOB PRIMARY KEY,
		der BLOB NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE IF NOT EXISTS controls(
		campaign INTEGER NOT NULL,
		host TEXT NOT NULL,
		sni TEXT NOT NULL,
		outcome TEXT NOT NULL,
		chain BLOB,
		PRIMARY KEY(campaign, host)
	) WITHOUT ROWID;
	CREATE TABLE IF NOT EXISTS records(
		campaign INTEGER NOT NULL,
		host TEXT NOT NULL,
		sni TEXT NOT NULL,
		outcome TEXT NOT NULL,
		time INTEGER NOT NULL,
		chain BLOB,
		attempts INTEGER NOT NULL,
		traits TEXT,
		issuer TEXT,
		error TEXT,
		ms REAL,
		PRIMARY KEY(campaign, host, sni)
	) WITHOUT ROWID;`,
	// 2: records and controls carry the vantage point they were measured
	// from, part of their key (the records of earlier versions: "local").
	`ALTER TABLE controls RENAME TO controls_v1;
	CREATE TABLE controls(
		campaign INTEGER NOT NULL,
		vantage TEXT NOT NULL,
		host TEXT NOT NULL,
		sni TEXT NOT NULL,
		outcome TEXT NOT NULL,
		chain BLOB,
		PRIMARY KEY(campaign, vantage, host)
	) WITHOUT ROWID;
	INSERT INTO controls SELECT campaign, 'local', host, sni, outcome, chain FROM controls_v1;
	DROP TABLE controls_v1;
	ALTER TABLE records RENAME TO records_v1;
	CREATE TABLE records(
		campaign INTEGER NOT NULL,
		vantage TEXT NOT NULL,
		host TEXT NOT NULL,
		sni TEXT NOT NULL,
		outcome TEXT NOT NULL,
		time INTEGER NOT NULL,
		chain BLOB,
		attempts INTEGER NOT NULL,
		traits TEXT,
		issuer TEXT,
		error TEXT,
		ms REAL,
		PRIMARY KEY(campaign, vantage, host, sni)
	) WITHOUT ROWID;
	INSERT INTO records SELECT campaign, 'local', host, sni, outcome, time, chain, attempts, traits, issuer, error, ms FROM records_v1;
	DROP TABLE records_v1;`,
	// 3: hop results of probe --locate (store/hops.go), one per record's
	// pair at most.
	sqliteHopResults,
	// 4: what the operators declared of each vantage point (ASN, country).
	sqliteVantages,
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations)

// v1Tables are the tables (and columns) of a version-1 database, the only
// tables an unmarked file may hold to be taken as mitmguard's.
var v1Tables = map[string][]string{
	"campaigns": {"n", "id", "started", "params"},
	"certs":     {"sha256", "der"},
	"controls":  {"campaign", "host", "sni", "outcome", "chain"},
	"records":   {"campaign", "host", "sni", "outcome", "time", "chain", "attempts", "traits", "issuer", "error", "ms"},
}

// ForeignError is a database that is not mitmguard's: it is refused before
// anything is written to it.
type ForeignError struct {
	Path   string
	Reason string
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("store: %s is not a mitmguard database (%s); give --db a new file or one mitmguard wrote", e.Path, e.Reason)
}

// NewerError is a database written by a newer mitmguard.
type NewerError struct {
	Path            string
	Version, Latest int
}

func (e *NewerError) Error() string {
	return fmt.Sprintf("store: %s has schema version %d, newer than this mitmguard's %d: upgrade mitmguard", e.Path, e.Version, e.Latest)
}

// SQLite is a Store in one SQLite file.
type SQLite struct {
	db *sql.DB
}

var _ Store = (*SQLite)(nil)

// Options tune Open. The zero value is the default.
type Options struct {
	// BusyTimeout is how long one statement waits for another writer's
	// lock before failing with a transient error (default 10s).
	BusyTimeout time.Duration
}

// Open opens or creates the database file, refusing a file that is not
// mitmguard's and migrating an older schema.
func Open(path string) (*SQLite, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, o Options) (*SQLite, error) {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: abs}
	q := url.Values{}
	for _, p := range []string{"synchronous(NORMAL)", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()), "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	u.RawQuery = q.Encode()
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	// WAL lets readers run beside the writer; the busy timeout covers the
	// rare second writer. (One connection would deadlock a query made while
	// iterating Records.)
	db.SetMaxOpenConns(4)
	s := &SQLite{db: db}
	if err := s.init(context.Background(), path); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init checks that the file is mitmguard's, only reading, and then
// switches it to WAL and migrates it.
func (s *SQLite) init(ctx context.Context, path string) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return openError(path, err)
	}
	defer conn.Close()
	version, err := s.check(ctx, conn, path)
	if err != nil {
		return err
	}
	if version == SchemaVersion {
		return nil
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA journal_mode=WAL`); err != nil {
		return fmt.Errorf("store: %s: %w", path, err)
	}
	// BEGIN IMMEDIATE: two processes opening one old file migrate it once.
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("store: %s: %w", path, err)
	}
	err = func() error {
		if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			return err
		}
		// A version-1 file that set no version is at 0 too: migration 1
		// creates only what is missing.
		for i := version; i < SchemaVersion; i++ {
			if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		_, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id=%d; PRAGMA user_version=%d`, ApplicationID, SchemaVersion))
		return err
	}()
	if err != nil {
		conn.ExecContext(ctx, `ROLLBACK`)
		return fmt.Errorf("store: %s: %w", path, err)
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("store: %s: %w", path, err)
	}
	return nil
}

// check returns the file's schema version, or an error for a file that is
// not mitmguard's or is newer than this build. It only reads.
func (s *SQLite) check(ctx context.Context, conn *sql.Conn, path string) (int, error) {
	var appID, version int
	if err := conn.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID); err != nil {
		return 0, openError(path, err)
	}
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("store: %s: %w", path, err)
	}
	switch {
	case appID == ApplicationID && version > SchemaVersion:
		return 0, &NewerError{Path: path, Version: version, Latest: SchemaVersion}
	case appID == ApplicationID:
		return version, nil
	case appID != 0:
		return 0, &ForeignError{Path: path, Reason: fmt.Sprintf("application_id %#x", appID)}
	}
	rows, err := conn.QueryContext(ctx, `SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return 0, fmt.Errorf("store: %s: %w", path, err)
	}
	var objects, odd []string
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			rows.Close()
			return 0, err
		}
		objects = append(objects, name)
		if typ != "table" || v1Tables[name] == nil {
			odd = append(odd, typ+" "+name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(objects) == 0 {
		return 0, nil // new
	}
	if version != 0 {
		return 0, &ForeignError{Path: path, Reason: fmt.Sprintf("schema version %d of another program", version)}
	}
	if len(odd) > 0 {
		return 0, &ForeignError{Path: path, Reason: "it holds " + strings.Join(odd, ", ")}
	}
	for _, name := range objects {
		var cols []string
		rows, err := conn.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, name)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return 0, err
			}
			cols = append(cols, c)
		}
		rows.Close()
		if !slices.Equal(cols, v1Tables[name]) {
			return 0, &ForeignError{Path: path, Reason: fmt.Sprintf("its table %s has columns %s", name, strings.Join(cols, ", "))}
		}
	}
	return 0, nil
}

func openError(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_NOTADB {
		return &ForeignError{Path: path, Reason: "not an SQLite database"}
	}
	return fmt.Errorf("store: %s: %w", path, err)
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Transient reports SQLITE_BUSY and SQLITE_LOCKED: another connection holds
// a lock for longer than the busy timeout.
func (s *SQLite) Transient(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// CreateCampaign records a new campaign.
func (s *SQLite) CreateCampaign(ctx context.Context, c *Campaign) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO campaigns(id, started, params) VALUES(?, ?, ?)`, c.ID, c.Started.UnixNano(), c.Params)
	if err != nil {
		return fmt.Errorf("store: campaign %s: %w", c.ID, err)
	}
	c.n, err = res.LastInsertId()
	return err
}

// Campaign returns a campaign by id, or the newest one for "".
func (s *SQLite) Campaign(ctx context.Context, id string) (*Campaign, error) {
	q := `SELECT n, id, started, params FROM campaigns WHERE id = ?`
	args := []any{id}
	if id == "" {
		q, args = `SELECT n, id, started, params FROM campaigns ORDER BY started DESC, n DESC LIMIT 1`, nil
	}
	c, err := scanCampaign(s.db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoCampaign
	}
	return c, err
}

func scanCampaign(row interface{ Scan(...any) error }) (*Campaign, error) {
	var c Campaign
	var started int64
	if err := row.Scan(&c.n, &c.ID, &started, &c.Params); err != nil {
		return nil, err
	}
	c.Started = time.Unix(0, started).UTC()
	return &c, nil
}

// Campaigns returns every campaign, oldest first.
func (s *SQLite) Campaigns(ctx context.Context) ([]*Campaign, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT n, id, started, params FROM campaigns ORDER BY started, n`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Write stores the results of several hosts in one transaction and returns
// the certificates that were not stored before.
func (s *SQLite) Write(ctx context.Context, c *Campaign, results []*measure.HostResult) (newCerts [][]byte, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	certStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO certs(sha256, der) VALUES(?, ?)`)
	if err != nil {
		return nil, err
	}
	ctlStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO controls(campaign, vantage, host, sni, outcome, chain) VALUES(?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	recStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO records(campaign, vantage, host, sni, outcome, time, chain, attempts, traits, issuer, error, ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	for _, hr := range results {
		for _, der := range hr.Certs {
			sum := sha256.Sum256(der)
			res, err := certStmt.ExecContext(ctx, sum[:], der)
			if err != nil {
				return nil, err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				newCerts = append(newCerts, der)
			}
		}
		ct := hr.Control
		res, err := ctlStmt.ExecContext(ctx, c.n, vantage(ct.Vantage), ct.Host, ct.SNI, string(ct.Outcome), packHashes(ct.Chain))
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // the host is stored already: keep what it was
		}
		for _, r := range hr.Records {
			if _, err := recStmt.ExecContext(ctx, c.n, vantage(r.Vantage), r.Host, r.SNI, string(r.Outcome), r.Time.UnixMilli(), packHashes(r.Chain),
				r.Attempts, nullIfEmpty(strings.Join(r.Traits, ",")), nullIfEmpty(r.Issuer), nullIfEmpty(r.Error), r.MS); err != nil {
				return nil, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return newCerts, nil
}

func vantage(v string) string {
	if v == "" {
		return measure.DefaultVantage
	}
	return v
}

// HostDone reports whether the host's records are stored.
func (s *SQLite) HostDone(ctx context.Context, c *Campaign, vant, host string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM controls WHERE campaign = ? AND vantage = ? AND host = ?`, c.n, vantage(vant), host).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Records calls fn for every record of the campaign, in (vantage, host,
// SNI) order, with the host's control.
func (s *SQLite) Records(ctx context.Context, c *Campaign, fn func(measure.Record, measure.Control) error) error {
	rows, err := s.db.QueryContext(ctx, `
		SELECT r.vantage, r.host, r.sni, r.outcome, r.time, r.chain, r.attempts, IFNULL(r.traits, ''), IFNULL(r.issuer, ''), IFNULL(r.error, ''), IFNULL(r.ms, 0),
		       c.sni, c.outcome, c.chain
		FROM records r JOIN controls c ON c.campaign = r.campaign AND c.vantage = r.vantage AND c.host = r.host
		WHERE r.campaign = ? ORDER BY r.vantage, r.host, r.sni`, c.n)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r measure.Record
		var ct measure.Control
		var ms int64
		var chainB, ctlChain []byte
		var traits, out, ctlOut string
		if err := rows.Scan(&r.Vantage, &r.Host, &r.SNI, &out, &ms, &chainB, &r.Attempts, &traits, &r.Issuer, &r.Error, &r.MS, &ct.SNI, &ctlOut, &ctlChain); err != nil {
			return err
		}
		r.Outcome, ct.Outcome, ct.Host, ct.Vantage = outcome.Outcome(out), outcome.Outcome(ctlOut), r.Host, r.Vantage
		r.Time = time.UnixMilli(ms).UTC()
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
func (s *SQLite) Count(ctx context.Context, c *Campaign) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE campaign = ?`, c.n).Scan(&n)
	return n, err
}

// OutcomeCounts returns how many records of the campaign have each outcome,
// counted by the database rather than by reading every record.
func (s *SQLite) OutcomeCounts(ctx context.Context, c *Campaign) (map[outcome.Outcome]int, error) {
	m, err := s.groupCount(ctx, `SELECT outcome, COUNT(*) FROM records WHERE campaign = ? GROUP BY outcome`, c.n)
	if err != nil {
		return nil, err
	}
	out := make(map[outcome.Outcome]int, len(m))
	for k, v := range m {
		out[outcome.Outcome(k)] = v
	}
	return out, nil
}

// VantageCounts returns how many records of the campaign each vantage
// point has stored.
func (s *SQLite) VantageCounts(ctx context.Context, c *Campaign) (map[string]int, error) {
	return s.groupCount(ctx, `SELECT vantage, COUNT(*) FROM records WHERE campaign = ? GROUP BY vantage`, c.n)
}

// groupCount runs a "SELECT key, COUNT(*) ... GROUP BY key" query.
func (s *SQLite) groupCount(ctx context.Context, q string, args ...any) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// Cert returns a stored certificate by hash.
func (s *SQLite) Cert(ctx context.Context, h chain.Hash) ([]byte, error) {
	var der []byte
	err := s.db.QueryRowContext(ctx, `SELECT der FROM certs WHERE sha256 = ?`, h[:]).Scan(&der)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: no certificate %s", h)
	}
	return der, err
}

// Checkpoint folds the write-ahead log into the database file, so that its
// size is the data's.
func (s *SQLite) Checkpoint() error {
	_, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
