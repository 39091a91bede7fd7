package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/outcome"
)

// Trace is the locate trace (probe --locate) of one record's pair: where on
// the path from the vantage point a forged answer first came back. It is
// keyed as the record is, by (campaign, vantage, host, SNI), and the record
// must be stored first.
type Trace struct {
	Vantage string
	Host    string // IP:port, as in the record
	SNI     string
	Time    time.Time
	// Error says why the trace failed (no permission, the host no longer
	// answers ...); Result then holds what it saw before, maybe nothing.
	Error  string
	Result locate.Result
}

// FailedFinding is the finding stored for a trace that failed before it
// reached one.
const FailedFinding locate.Finding = "failed"

// Bounds on what a trace read back from a database may hold: the database
// may come from someone else.
const (
	maxTraceHops  = locate.MaxTTL
	maxTraceNotes = 16
	maxTraceJSON  = 1 << 20
	// maxTraceText bounds each text column (message, error, the key ...):
	// a write refuses longer, a read too.
	maxTraceText = 64 << 10
)

// longText reports whether any of ss is longer than maxTraceText.
func longText(ss ...string) bool {
	for _, s := range ss {
		if len(s) > maxTraceText {
			return true
		}
	}
	return false
}

// traceRow is a trace as its columns hold it.
type traceRow struct {
	vantage, host, sni, finding, outcome string
	time                                 time.Time
	firstForged, serverHops, blockedAt   sql.NullInt64
	lastClean, message, errText          sql.NullString
	routersVisible                       bool
	notes                                sql.NullString
	hops                                 string
}

// traceColumns are the columns of hop_results a write fills, in order.
const traceColumns = `campaign, vantage, host, sni, time, finding, outcome, first_forged_hop, last_clean_router, server_hops, blocked_at_hop, routers_visible, message, notes, hops, error`

// traceArgs are a trace's column values after the campaign key, in
// traceColumns' order; the time is left to the backend.
func traceArgs(t *Trace) (finding string, rest []any, err error) {
	if len(t.Result.Hops) > maxTraceHops || len(t.Result.Notes) > maxTraceNotes {
		return "", nil, fmt.Errorf("store: trace of %s %s: %d hops, %d notes: too many", t.Host, t.SNI, len(t.Result.Hops), len(t.Result.Notes))
	}
	if longText(t.Vantage, t.Host, t.SNI, string(t.Result.Finding), string(t.Result.Outcome), t.Result.Message, t.Error) {
		return "", nil, fmt.Errorf("store: trace of %.64s %.64s: text longer than %d bytes", t.Host, t.SNI, maxTraceText)
	}
	hops, err := json.Marshal(t.Result.Hops)
	if err != nil {
		return "", nil, err
	}
	if t.Result.Hops == nil {
		hops = []byte("[]")
	}
	var notes []byte
	if len(t.Result.Notes) > 0 {
		if notes, err = json.Marshal(t.Result.Notes); err != nil {
			return "", nil, err
		}
	}
	finding = string(t.Result.Finding)
	if finding == "" {
		finding = string(FailedFinding)
	}
	r := t.Result
	return finding, []any{nullIfEmpty(string(r.Outcome)), nullInt(r.FirstForgedHop), nullStr(r.LastCleanRouter), nullInt(r.ServerHops), nullInt(r.BlockedAtHop),
		r.RoutersVisible, nullIfEmpty(r.Message), nullBytes(notes), string(hops), nullIfEmpty(t.Error)}, nil
}

// trace turns the columns read back into a Trace, refusing what no write
// makes: a database may have been edited by someone else.
func (row *traceRow) trace() (Trace, error) {
	if longText(row.vantage, row.host, row.sni, row.finding, row.outcome, row.message.String, row.errText.String) {
		return Trace{}, fmt.Errorf("store: trace of %.64q %.64q: text longer than %d bytes", row.host, row.sni, maxTraceText)
	}
	t := Trace{Vantage: row.vantage, Host: row.host, SNI: row.sni, Time: row.time.UTC(), Error: row.errText.String}
	hops, err := decodeHops([]byte(row.hops))
	if err != nil {
		return t, fmt.Errorf("store: trace of %.64q %.64q: %w", row.host, row.sni, err)
	}
	var notes []string
	if row.notes.String != "" {
		if len(row.notes.String) > maxTraceJSON {
			return t, fmt.Errorf("store: trace of %.64q %.64q: notes too long", row.host, row.sni)
		}
		if err := json.Unmarshal([]byte(row.notes.String), &notes); err != nil || len(notes) > maxTraceNotes {
			return t, fmt.Errorf("store: trace of %.64q %.64q: bad notes", row.host, row.sni)
		}
	}
	for _, n := range [...]sql.NullInt64{row.firstForged, row.serverHops, row.blockedAt} {
		if n.Valid && (n.Int64 < 1 || n.Int64 > locate.MaxTTL) {
			return t, fmt.Errorf("store: trace of %.64q %.64q: hop %d", row.host, row.sni, n.Int64)
		}
	}
	if row.lastClean.Valid && !isAddr(row.lastClean.String) {
		return t, fmt.Errorf("store: trace of %.64q %.64q: last clean router %q is not an address", row.host, row.sni, row.lastClean.String)
	}
	r := locate.Result{
		SNI: row.sni, Address: row.host, Finding: locate.Finding(row.finding), Outcome: outcome.Outcome(row.outcome),
		FirstForgedHop: intPtr(row.firstForged), LastCleanRouter: strPtr(row.lastClean), ServerHops: intPtr(row.serverHops),
		BlockedAtHop: intPtr(row.blockedAt), RoutersVisible: row.routersVisible, Notes: notes, Message: row.message.String, Hops: hops,
	}
	if _, port, err := net.SplitHostPort(row.host); err == nil {
		r.Target = net.JoinHostPort(row.sni, port)
	}
	if n := len(hops); n > 0 {
		r.Issuer = hops[n-1].Issuer
	}
	t.Result = r
	return t, nil
}

// decodeHops reads the per-hop list of a trace: at most maxTraceHops hops,
// in increasing TTL order, each TTL 1..MaxTTL.
func decodeHops(b []byte) ([]locate.Hop, error) {
	if len(b) > maxTraceJSON {
		return nil, fmt.Errorf("hop list of %d bytes: too long", len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var hops []locate.Hop
	if err := dec.Decode(&hops); err != nil {
		return nil, fmt.Errorf("hop list: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("hop list: data after the list")
	}
	if len(hops) > maxTraceHops {
		return nil, fmt.Errorf("hop list of %d hops: too many", len(hops))
	}
	for i, h := range hops {
		if h.TTL < 1 || h.TTL > locate.MaxTTL || (i > 0 && h.TTL <= hops[i-1].TTL) {
			return nil, fmt.Errorf("hop list: hop %d has TTL %d", i+1, h.TTL)
		}
		if h.Router != nil && !isAddr(*h.Router) {
			return nil, fmt.Errorf("hop list: hop %d: router %q is not an address", i+1, *h.Router)
		}
	}
	if hops == nil {
		hops = []locate.Hop{}
	}
	return hops, nil
}

// isAddr reports whether s is an IP address as a trace writes a router's
// (the source of an ICMP time-exceeded).
func isAddr(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.String() == s
}

func nullInt(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func nullStr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

// WriteTrace stores the trace of a record's pair, replacing an earlier one.
func (s *SQLite) WriteTrace(ctx context.Context, c *Campaign, t *Trace) error {
	finding, rest, err := traceArgs(t)
	if err != nil {
		return err
	}
	args := append([]any{c.n, vantage(t.Vantage), t.Host, t.SNI, t.Time.UnixMilli(), finding}, rest...)
	_, err = s.db.ExecContext(ctx, `INSERT OR REPLACE INTO hop_results(`+traceColumns+`) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if err != nil {
		return fmt.Errorf("store: trace of %s %s: %w", t.Host, t.SNI, err)
	}
	return nil
}

// Traces calls fn for every trace of the campaign, in (vantage, host, SNI)
// order.
func (s *SQLite) Traces(ctx context.Context, c *Campaign, fn func(Trace) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT vantage, host, sni, time, finding, IFNULL(outcome, ''), first_forged_hop, last_clean_router, server_hops, blocked_at_hop,
		routers_visible, message, notes, hops, error FROM hop_results WHERE campaign = ? ORDER BY vantage, host, sni`, c.n)
	if err != nil {
		return err
	}
	defer rows.Close()
	var ms int64
	err = eachTrace(rows.Next, func(row *traceRow) error {
		err := rows.Scan(&row.vantage, &row.host, &row.sni, &ms, &row.finding, &row.outcome, &row.firstForged, &row.lastClean, &row.serverHops, &row.blockedAt,
			&row.routersVisible, &row.message, &row.notes, &row.hops, &row.errText)
		row.time = time.UnixMilli(ms)
		return err
	}, fn)
	if err != nil {
		return err
	}
	return rows.Err()
}

// eachTrace reads rows one at a time with scan while next reports one, and
// calls fn with each trace, stopping at the first failure: the loop both
// backends' Traces share.
func eachTrace(next func() bool, scan func(*traceRow) error, fn func(Trace) error) error {
	for next() {
		var row traceRow
		if err := scan(&row); err != nil {
			return err
		}
		t, err := row.trace()
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// sqliteHopResults is SQLite's migration 3.
const sqliteHopResults = `CREATE TABLE hop_results(
		campaign INTEGER NOT NULL,
		vantage TEXT NOT NULL,
		host TEXT NOT NULL,
		sni TEXT NOT NULL,
		time INTEGER NOT NULL,
		finding TEXT NOT NULL,
		outcome TEXT,
		first_forged_hop INTEGER,
		last_clean_router TEXT,
		server_hops INTEGER,
		blocked_at_hop INTEGER,
		routers_visible INTEGER NOT NULL,
		message TEXT,
		notes TEXT,
		hops TEXT NOT NULL,
		error TEXT,
		PRIMARY KEY(campaign, vantage, host, sni),
		FOREIGN KEY(campaign, vantage, host, sni) REFERENCES records(campaign, vantage, host, sni)
	) WITHOUT ROWID;`
