package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mitmguard/mitmguard/chain"
)

var _ Streamer = (*SQLite)(nil)

// The export reads two cursors side by side, each in primary key order, and
// joins them itself: SQLite joins only by nested loops, which for every
// record would look its host's control up in the controls tree again.
const (
	exportRecords = `SELECT vantage, host, sni, outcome, time, chain, attempts, traits, issuer, error, ms
		FROM records WHERE campaign = ?1 %s ORDER BY vantage, host, sni`
	exportControls = `SELECT vantage, host, sni, outcome, chain
		FROM controls WHERE campaign = ?1 %s ORDER BY vantage, host`
	// exportCacheKiB is the page cache of the export's connection (SQLite's
	// default is 2 MiB). The export reads each page once, in order, so a
	// small cache loses nothing, and each page SQLite caches is a libc
	// allocation (mmap, then madvise when freed): with 8 MiB the export
	// measured 0.5 s more CPU per million records.
	exportCacheKiB = 1 << 10
)

// StreamRange calls fn for every record of the range, in (vantage, host,
// SNI) order, with its host's control, as Records does, in one read
// transaction. It reads on a connection of its own to the file (see
// liteConn), not through database/sql.
func (s *SQLite) StreamRange(ctx context.Context, c *Campaign, rg Range, fn func(*Row) error) error {
	lc, err := s.openRead(ctx)
	if err != nil {
		return ctxErr(ctx, err)
	}
	defer lc.close()
	return ctxErr(ctx, streamRows(ctx, lc, c.n, rg, fn))
}

// openRead opens a liteConn to the store's file, in a read transaction.
func (s *SQLite) openRead(ctx context.Context) (*liteConn, error) {
	var path string
	if err := s.db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("store: the export reads only a database file")
	}
	lc, err := openLite(path)
	if err != nil {
		return nil, err
	}
	lc.interruptOn(ctx)
	// One read transaction: the statements see one snapshot, so, say,
	// every record's control is there however writers go on.
	if err := lc.exec(fmt.Sprintf(`PRAGMA cache_size=-%d; BEGIN`, exportCacheKiB)); err != nil {
		lc.close()
		return nil, err
	}
	// The file now at the path need not be the one Open checked (it may
	// have been replaced since): read it only if it is a mitmguard
	// database of this schema.
	appID, err := lc.pragmaInt("application_id")
	if err != nil {
		lc.close()
		return nil, err
	}
	version, err := lc.pragmaInt("user_version")
	if err != nil {
		lc.close()
		return nil, err
	}
	if appID != ApplicationID || version != int64(SchemaVersion) {
		lc.close()
		return nil, &ForeignError{Path: path, Reason: fmt.Sprintf("replaced since it was opened: application_id %#x, schema version %d", appID, version)}
	}
	// Text is read as stored, and the two cursors are merged in Go's
	// byte order: both hold only in UTF-8, which Open makes every file.
	utf8, err := lc.queryInt(`SELECT encoding = 'UTF-8' FROM pragma_encoding`)
	if err != nil {
		lc.close()
		return nil, err
	}
	if utf8 != 1 {
		lc.close()
		return nil, &ForeignError{Path: path, Reason: "its text is in UTF-16, mitmguard writes UTF-8"}
	}
	return lc, nil
}

func streamRows(ctx context.Context, lc *liteConn, campaign int64, rg Range, fn func(*Row) error) error {
	var where string
	args := []any{campaign}
	if rg.From != nil {
		where += " AND (vantage, host) >= (?2, ?3)"
		args = append(args, rg.From.Vantage, rg.From.Host)
	}
	if rg.To != nil {
		n := len(args)
		where += fmt.Sprintf(" AND (vantage, host) < (?%d, ?%d)", n+1, n+2)
		args = append(args, rg.To.Vantage, rg.To.Host)
	}
	recs, err := lc.query(fmt.Sprintf(exportRecords, where), args...)
	if err != nil {
		return err
	}
	defer recs.close()
	ctls, err := lc.query(fmt.Sprintf(exportControls, where), args...)
	if err != nil {
		return err
	}
	defer ctls.close()
	// One interner per column (the keys' shared by records and controls).
	vantages, hosts := interner{runs: true}, interner{runs: true}
	var snis, outcomes, traits, issuers, errs, ctlSNIs, ctlOutcomes interner
	var row Row
	var chainBuf, ctlChainBuf []byte
	var ctlVantage, ctlHost string
	haveCtl := false
	done := ctx.Done()
	for {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		if ok, err := recs.next(); err != nil || !ok {
			return err
		}
		// The C API converts any value to the type asked for ('7x'
		// reads as the integer 7): a value of a type Write never stores
		// (a crafted or damaged file) is refused, as Records refuses it,
		// rather than exported made up. Asked before the columns are
		// read, which would convert them.
		if !recs.is(4, sqlite3.SQLITE_INTEGER) || !recs.is(6, sqlite3.SQLITE_INTEGER) ||
			!recs.is(10, sqlite3.SQLITE_FLOAT, sqlite3.SQLITE_INTEGER, sqlite3.SQLITE_NULL) || !chainOK(recs, 5) {
			return malformed("records", recs, 0, 1, 2)
		}
		// Interned in the same interners as the controls' keys, which
		// the comparisons below then mostly find identical.
		vantage, host := vantages.str(recs.bytes(0)), hosts.str(recs.bytes(1))
		// Advance the controls to this record's host. A record without
		// a control (which Write never stores) is left out, as the join
		// in Records leaves it out.
		for !haveCtl || cmpKey(ctlVantage, ctlHost, vantage, host) < 0 {
			if ok, err := ctls.next(); err != nil || !ok {
				return err
			}
			haveCtl = true
			if !chainOK(ctls, 4) {
				return malformed("controls", ctls, 0, 1, 2)
			}
			ctlVantage, ctlHost = vantages.str(ctls.bytes(0)), hosts.str(ctls.bytes(1))
			row.ControlSNI, row.ControlOutcome = ctlSNIs.str(ctls.bytes(2)), ctlOutcomes.str(ctls.bytes(3))
			ctlChainBuf = append(ctlChainBuf[:0], ctls.bytes(4)...)
		}
		if ctlVantage != vantage || ctlHost != host {
			continue
		}
		chainBuf = append(chainBuf[:0], recs.bytes(5)...)
		row = Row{Vantage: ctlVantage, Host: ctlHost, SNI: snis.str(recs.bytes(2)), Outcome: outcomes.str(recs.bytes(3)),
			TimeMS: recs.int64(4), Chain: nilIfEmpty(chainBuf), Attempts: int(recs.int64(6)),
			Traits: traits.str(recs.bytes(7)), Issuer: issuers.str(recs.bytes(8)), Error: errs.str(recs.bytes(9)), MS: recs.float64(10),
			ControlSNI: row.ControlSNI, ControlOutcome: row.ControlOutcome, ControlChain: nilIfEmpty(ctlChainBuf)}
		if err := fn(&row); err != nil {
			return err
		}
	}
}

// MalformedError is a row holding values of types Write never stores (a
// damaged file, or someone else's crafted one): the export refuses it
// rather than read made-up values.
type MalformedError struct {
	Table              string
	Vantage, Host, SNI string // the row's key, as text
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("store: a row of %s (vantage %.64q, host %.64q, SNI %.64q) holds values of types mitmguard never writes", e.Table, e.Vantage, e.Host, e.SNI)
}

// chainOK reports whether column i of st's current row is a chain as
// Write stores it: hashes of 32 bytes, or none.
func chainOK(st *liteStmt, i int32) bool {
	return st.is(i, sqlite3.SQLITE_NULL, sqlite3.SQLITE_BLOB) && sqlite3.Xsqlite3_column_bytes(st.c.tls, st.p, i)%int32(len(chain.Hash{})) == 0
}

// malformed is the *MalformedError of st's current row, whose key is in
// the columns v, h and s (their first 256 bytes: the row is hostile).
func malformed(table string, st *liteStmt, v, h, s int32) error {
	clip := func(i int32) string { b := st.bytes(i); return string(b[:min(len(b), 256)]) }
	return &MalformedError{Table: table, Vantage: clip(v), Host: clip(h), SNI: clip(s)}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// SplitHosts cuts the campaign into at most n ranges of about as many hosts
// each, by their controls (one per host).
func (s *SQLite) SplitHosts(ctx context.Context, c *Campaign, n int) ([]Range, error) {
	var hosts int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM controls WHERE campaign = ?`, c.n).Scan(&hosts); err != nil {
		return nil, err
	}
	var keys []*HostKey
	for i := 1; i < n; i++ {
		off := hosts * int64(i) / int64(n)
		if off == 0 || len(keys) > 0 && off == hosts*int64(i-1)/int64(n) {
			continue
		}
		var k HostKey
		if err := s.db.QueryRowContext(ctx, `SELECT vantage, host FROM controls WHERE campaign = ? ORDER BY vantage, host LIMIT 1 OFFSET ?`, c.n, off).Scan(&k.Vantage, &k.Host); err != nil {
			return nil, err
		}
		keys = append(keys, &k)
	}
	out := make([]Range, len(keys)+1)
	for i, k := range keys {
		out[i].To, out[i+1].From = k, k
	}
	return out, nil
}

// cmpKey orders (vantage, host) pairs as SQLite's BINARY collation does.
func cmpKey(v1, h1, v2, h2 string) int {
	if c := strings.Compare(v1, v2); c != 0 {
		return c
	}
	return strings.Compare(h1, h2)
}

// CertsByHash calls fn for each certificate hs names, in the order of hs
// (looking them up in key order is what walks the certificate tree
// fastest); a hash not stored fails.
func (s *SQLite) CertsByHash(ctx context.Context, hs []chain.Hash, fn func(chain.Hash, []byte) error) error {
	lc, err := s.openRead(ctx)
	if err != nil {
		return ctxErr(ctx, err)
	}
	defer lc.close()
	return ctxErr(ctx, certsByHash(ctx, lc, hs, fn))
}

func certsByHash(ctx context.Context, lc *liteConn, hs []chain.Hash, fn func(chain.Hash, []byte) error) error {
	st, err := lc.query(`SELECT der FROM certs WHERE sha256 = ?1`)
	if err != nil {
		return err
	}
	defer st.close()
	key, err := lc.malloc(len(chain.Hash{}))
	if err != nil {
		return err
	}
	defer lc.free(key)
	done := ctx.Done()
	for _, h := range hs {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		*(*chain.Hash)(ptr(key)) = h
		if err := st.bindStatic(1, key, len(h)); err != nil {
			return err
		}
		ok, err := st.next()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("store: certificate %s is not stored", h)
		}
		der := bytes.Clone(st.bytes(0))
		if err := st.reset(); err != nil {
			return err
		}
		if err := fn(h, der); err != nil {
			return err
		}
	}
	return nil
}
