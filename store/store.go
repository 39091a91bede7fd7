// Package store keeps measurement records and the certificates they saw in
// one SQLite file (the pure-Go modernc.org/sqlite driver, no cgo).
//
// A certificate is stored once, keyed by its SHA-256, and records refer to
// it by hash, so a campaign that sees the same forged chain on a thousand
// hosts stores that chain once. What a host's controls saw is stored once per
// host, not once per record. Records of one host are written in one
// transaction with the host's control, so after a crash a host is either
// wholly recorded or not at all, which is what lets a campaign resume
// without losing or duplicating a record.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
)

const schema = `
CREATE TABLE IF NOT EXISTS campaigns(
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
) WITHOUT ROWID;
`

// Store is an open measurement database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// Open opens or creates the database file.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: abs}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "foreign_keys(ON)"} {
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
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Campaign is one run of a measurement, with the parameters it ran with.
type Campaign struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	Params  string    `json:"params"` // JSON
	n       int64
}

// ErrNoCampaign is returned for an unknown campaign id.
var ErrNoCampaign = errors.New("store: no such campaign")

// CreateCampaign records a new campaign.
func (s *Store) CreateCampaign(c *Campaign) error {
	res, err := s.db.Exec(`INSERT INTO campaigns(id, started, params) VALUES(?, ?, ?)`, c.ID, c.Started.UnixNano(), c.Params)
	if err != nil {
		return fmt.Errorf("store: campaign %s: %w", c.ID, err)
	}
	c.n, err = res.LastInsertId()
	return err
}

// Campaign returns a campaign by id, or the newest one for "".
func (s *Store) Campaign(id string) (*Campaign, error) {
	q := `SELECT n, id, started, params FROM campaigns WHERE id = ?`
	args := []any{id}
	if id == "" {
		q, args = `SELECT n, id, started, params FROM campaigns ORDER BY started DESC LIMIT 1`, nil
	}
	var c Campaign
	var started int64
	err := s.db.QueryRow(q, args...).Scan(&c.n, &c.ID, &started, &c.Params)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoCampaign
	}
	if err != nil {
		return nil, err
	}
	c.Started = time.Unix(0, started).UTC()
	return &c, nil
}

// Campaigns returns every campaign, oldest first.
func (s *Store) Campaigns() ([]*Campaign, error) {
	rows, err := s.db.Query(`SELECT n, id, started, params FROM campaigns ORDER BY started`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Campaign
	for rows.Next() {
		var c Campaign
		var started int64
		if err := rows.Scan(&c.n, &c.ID, &started, &c.Params); err != nil {
			return nil, err
		}
		c.Started = time.Unix(0, started).UTC()
		out = append(out, &c)
	}
	return out, rows.Err()
}

// Control is what a host's control handshake saw.
type Control struct {
	Host    string          `json:"-"`
	SNI     string          `json:"sni"`
	Outcome outcome.Outcome `json:"outcome"`
	Chain   []chain.Hash    `json:"chain"`
}

// Record is one (host, SNI) measurement.
type Record struct {
	Host     string          `json:"host"`
	SNI      string          `json:"sni"`
	Outcome  outcome.Outcome `json:"outcome"`
	Time     time.Time       `json:"time"`
	Chain    []chain.Hash    `json:"chain"`
	Attempts int             `json:"attempts"`
	Traits   []string        `json:"traits,omitempty"`
	Issuer   string          `json:"issuer,omitempty"`
	Error    string          `json:"error,omitempty"`
	MS       float64         `json:"handshake_ms,omitempty"` // the last handshake's duration
}

// JSONRecord is the JSON Lines form of a record (`mitmguard probe --jsonl`,
// `mitmguard report` exports): the record with its campaign and control.
// Certificates travel as separate lines (JSONCert) the first time they are
// stored, so records carry only hashes.
type JSONRecord struct {
	Type     string `json:"type"` // "record"
	Campaign string `json:"campaign"`
	Record
	Control Control `json:"control"`
}

// JSONCert is the JSON Lines form of a certificate.
type JSONCert struct {
	Type   string     `json:"type"` // "certificate"
	SHA256 chain.Hash `json:"sha256"`
	PEM    string     `json:"pem"`
}

// HostResult is everything measured for one host: written at once.
type HostResult struct {
	Control Control
	Records []Record
	// Certs are the DER certificates the records and control refer to;
	// ones already stored are skipped.
	Certs [][]byte
}

// Write stores the results of several hosts in one transaction and returns
// the certificates that were not stored before.
func (s *Store) Write(ctx context.Context, c *Campaign, results []*HostResult) (newCerts [][]byte, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	certStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO certs(sha256, der) VALUES(?, ?)`)
	if err != nil {
		return nil, err
	}
	ctlStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO controls(campaign, host, sni, outcome, chain) VALUES(?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	recStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO records(campaign, host, sni, outcome, time, chain, attempts, traits, issuer, error, ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	for _, hr := range results {
		for _, der := range hr.Certs {
			sum := chainHash(der)
			res, err := certStmt.ExecContext(ctx, sum[:], der)
			if err != nil {
				return nil, err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				newCerts = append(newCerts, der)
			}
		}
		ct := hr.Control
		if _, err := ctlStmt.ExecContext(ctx, c.n, ct.Host, ct.SNI, string(ct.Outcome), packHashes(ct.Chain)); err != nil {
			return nil, err
		}
		for _, r := range hr.Records {
			if _, err := recStmt.ExecContext(ctx, c.n, r.Host, r.SNI, string(r.Outcome), r.Time.UnixMilli(), packHashes(r.Chain),
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

// HostDone reports whether the host's records are stored.
func (s *Store) HostDone(ctx context.Context, c *Campaign, host string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM controls WHERE campaign = ? AND host = ?`, c.n, host).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Records calls fn for every record of the campaign, in (host, SNI) order,
// with the host's control.
func (s *Store) Records(ctx context.Context, c *Campaign, fn func(Record, Control) error) error {
	rows, err := s.db.QueryContext(ctx, `
		SELECT r.host, r.sni, r.outcome, r.time, r.chain, r.attempts, IFNULL(r.traits, ''), IFNULL(r.issuer, ''), IFNULL(r.error, ''), IFNULL(r.ms, 0),
		       c.sni, c.outcome, c.chain
		FROM records r JOIN controls c ON c.campaign = r.campaign AND c.host = r.host
		WHERE r.campaign = ? ORDER BY r.host, r.sni`, c.n)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r Record
		var ct Control
		var ms int64
		var chainB, ctlChain []byte
		var traits, out, ctlOut string
		if err := rows.Scan(&r.Host, &r.SNI, &out, &ms, &chainB, &r.Attempts, &traits, &r.Issuer, &r.Error, &r.MS, &ct.SNI, &ctlOut, &ctlChain); err != nil {
			return err
		}
		r.Outcome, ct.Outcome, ct.Host = outcome.Outcome(out), outcome.Outcome(ctlOut), r.Host
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
func (s *Store) Count(ctx context.Context, c *Campaign) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE campaign = ?`, c.n).Scan(&n)
	return n, err
}

// OutcomeCounts returns how many records of the campaign have each outcome,
// counted by the database rather than by reading every record.
func (s *Store) OutcomeCounts(ctx context.Context, c *Campaign) (map[outcome.Outcome]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT outcome, COUNT(*) FROM records WHERE campaign = ? GROUP BY outcome`, c.n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[outcome.Outcome]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			return nil, err
		}
		out[outcome.Outcome(o)] = n
	}
	return out, rows.Err()
}

// Cert returns a stored certificate by hash.
func (s *Store) Cert(ctx context.Context, h chain.Hash) ([]byte, error) {
	var der []byte
	err := s.db.QueryRowContext(ctx, `SELECT der FROM certs WHERE sha256 = ?`, h[:]).Scan(&der)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: no certificate %s", h)
	}
	return der, err
}

// Checkpoint folds the write-ahead log into the database file, so that its
// size is the data's.
func (s *Store) Checkpoint() error {
	_, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

func packHashes(hs []chain.Hash) []byte {
	if len(hs) == 0 {
		return nil
	}
	b := make([]byte, 0, len(hs)*len(chain.Hash{}))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func unpackHashes(b []byte) []chain.Hash {
	var out []chain.Hash
	for len(b) >= len(chain.Hash{}) {
		var h chain.Hash
		copy(h[:], b)
		out = append(out, h)
		b = b[len(h):]
	}
	return out
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func chainHash(der []byte) chain.Hash { return chain.Hash(sha256.Sum256(der)) }
