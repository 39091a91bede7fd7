package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

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
	// exportCacheKiB is the page cache of the export's connection for the
	// time of the export (SQLite's default is 2 MiB).
	exportCacheKiB = 8 << 10
)

// StreamRange calls fn for every record of the range, in (vantage, host,
// SNI) order, with its host's control, as Records does, in one read
// transaction. It bypasses database/sql's per-row locking and conversion
// (the driver's values are read as they come, into one reused Row).
func (s *SQLite) StreamRange(ctx context.Context, c *Campaign, rg Range, fn func(*Row) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		x, ok2 := dc.(driver.ExecerContext)
		if !ok || !ok2 {
			return errors.New("store: the SQLite driver cannot query a raw connection")
		}
		exec := func(ctx context.Context, stmt string) error {
			_, err := x.ExecContext(ctx, stmt, nil)
			return err
		}
		// One read transaction: both cursors see the same snapshot, so
		// every record's control is there however writers go on.
		if err := exec(ctx, fmt.Sprintf(`PRAGMA cache_size=-%d; BEGIN`, exportCacheKiB)); err != nil {
			return err
		}
		err := streamRows(ctx, q, c.n, rg, fn)
		// Not ctx: the connection goes back to the pool, and must end its
		// transaction even when the export was cancelled.
		if rerr := exec(context.Background(), `ROLLBACK; PRAGMA cache_size=-2000`); rerr != nil {
			return errors.Join(err, rerr, driver.ErrBadConn) // drop the connection
		}
		return err
	})
}

func streamRows(ctx context.Context, q driver.QueryerContext, campaign int64, rg Range, fn func(*Row) error) error {
	// Parameters ?1 to ?5 in turn, as many as the bounds need (an unused
	// ?2 and ?3 bound to empty strings).
	var where string
	from, to := HostKey{}, HostKey{}
	nargs := 1
	if rg.From != nil {
		where += " AND (vantage, host) >= (?2, ?3)"
		from, nargs = *rg.From, 3
	}
	if rg.To != nil {
		where += " AND (vantage, host) < (?4, ?5)"
		to, nargs = *rg.To, 5
	}
	args := []driver.NamedValue{{Ordinal: 1, Value: campaign}, {Ordinal: 2, Value: from.Vantage}, {Ordinal: 3, Value: from.Host},
		{Ordinal: 4, Value: to.Vantage}, {Ordinal: 5, Value: to.Host}}[:nargs]
	recs, err := q.QueryContext(ctx, fmt.Sprintf(exportRecords, where), args)
	if err != nil {
		return err
	}
	defer recs.Close()
	ctls, err := q.QueryContext(ctx, fmt.Sprintf(exportControls, where), args)
	if err != nil {
		return err
	}
	defer ctls.Close()
	rv := make([]driver.Value, 11)
	cv := make([]driver.Value, 5)
	var row Row
	var ctlVantage, ctlHost string
	haveCtl := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := recs.Next(rv); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		row = Row{Vantage: str(rv[0]), Host: str(rv[1]), SNI: str(rv[2]), Outcome: str(rv[3]), TimeMS: i64(rv[4]), Chain: blob(rv[5]),
			Attempts: int(i64(rv[6])), Traits: str(rv[7]), Issuer: str(rv[8]), Error: str(rv[9]), MS: f64(rv[10]),
			ControlSNI: row.ControlSNI, ControlOutcome: row.ControlOutcome, ControlChain: row.ControlChain}
		// Advance the controls to this record's host. A record without
		// a control (which Write never stores) is left out, as the join
		// in Records leaves it out.
		for !haveCtl || cmpKey(ctlVantage, ctlHost, row.Vantage, row.Host) < 0 {
			if err := ctls.Next(cv); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			haveCtl = true
			ctlVantage, ctlHost = str(cv[0]), str(cv[1])
			row.ControlSNI, row.ControlOutcome, row.ControlChain = str(cv[2]), str(cv[3]), blob(cv[4])
		}
		if ctlVantage != row.Vantage || ctlHost != row.Host {
			continue
		}
		row.Vantage, row.Host = ctlVantage, ctlHost // one string per host, not per record
		if err := fn(&row); err != nil {
			return err
		}
	}
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

func str(v driver.Value) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

func blob(v driver.Value) []byte {
	switch v := v.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	return nil
}

func i64(v driver.Value) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

func f64(v driver.Value) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

// exportCertBatch is how many certificates one CertsByHash query asks for
// (SQLite allows 32766 parameters).
const exportCertBatch = 500

// CertsByHash calls fn for each certificate hs names, looking them up
// exportCertBatch at a time; a hash not stored fails.
func (s *SQLite) CertsByHash(ctx context.Context, hs []chain.Hash, fn func(chain.Hash, []byte) error) error {
	args := make([]any, 0, exportCertBatch)
	for len(hs) > 0 {
		n := min(len(hs), exportCertBatch)
		args = args[:0]
		for i := range hs[:n] {
			args = append(args, hs[i][:])
		}
		rows, err := s.db.QueryContext(ctx, `SELECT sha256, der FROM certs WHERE sha256 IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return err
		}
		found := 0
		for rows.Next() {
			var sum, der []byte
			if err := rows.Scan(&sum, &der); err != nil {
				rows.Close()
				return err
			}
			if len(sum) != len(chain.Hash{}) {
				rows.Close()
				return fmt.Errorf("store: a certificate keyed by %d bytes", len(sum))
			}
			found++
			if err := fn(chain.Hash(sum), der); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if found != n {
			return fmt.Errorf("store: %d of %d certificates are not stored", n-found, n)
		}
		hs = hs[n:]
	}
	return nil
}
