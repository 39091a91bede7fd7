package store

import (
	"context"
	"fmt"
)

// pgHopResults is PostgreSQL's migration 3, the same table as SQLite's
// (store/hops.go), its hop list as jsonb.
const pgHopResults = `CREATE TABLE hop_results(
		campaign bigint NOT NULL,
		vantage text COLLATE "C" NOT NULL,
		host text COLLATE "C" NOT NULL,
		sni text COLLATE "C" NOT NULL,
		time timestamptz NOT NULL,
		finding text NOT NULL,
		outcome text,
		first_forged_hop integer,
		last_clean_router text,
		server_hops integer,
		blocked_at_hop integer,
		routers_visible boolean NOT NULL,
		message text,
		notes jsonb,
		hops jsonb NOT NULL,
		error text,
		PRIMARY KEY(campaign, vantage, host, sni),
		FOREIGN KEY(campaign, vantage, host, sni) REFERENCES records ON DELETE CASCADE
	);`

// WriteTrace stores the trace of a record's pair, replacing an earlier one.
func (p *Postgres) WriteTrace(ctx context.Context, c *Campaign, t *Trace) error {
	finding, rest, err := traceArgs(t)
	if err != nil {
		return err
	}
	args := append([]any{c.n, vantage(t.Vantage), t.Host, t.SNI, t.Time, finding}, rest...)
	_, err = p.pool.Exec(ctx, `INSERT INTO hop_results(`+traceColumns+`)
		VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15::jsonb, $16)
		ON CONFLICT (campaign, vantage, host, sni) DO UPDATE SET
		time = EXCLUDED.time, finding = EXCLUDED.finding, outcome = EXCLUDED.outcome, first_forged_hop = EXCLUDED.first_forged_hop,
		last_clean_router = EXCLUDED.last_clean_router, server_hops = EXCLUDED.server_hops, blocked_at_hop = EXCLUDED.blocked_at_hop,
		routers_visible = EXCLUDED.routers_visible, message = EXCLUDED.message, notes = EXCLUDED.notes, hops = EXCLUDED.hops, error = EXCLUDED.error`, args...)
	if err != nil {
		return fmt.Errorf("store: trace of %s %s: %w", t.Host, t.SNI, err)
	}
	return nil
}

// Traces calls fn for every trace of the campaign, in (vantage, host, SNI)
// order.
func (p *Postgres) Traces(ctx context.Context, c *Campaign, fn func(Trace) error) error {
	rows, err := p.pool.Query(ctx, `SELECT vantage, host, sni, time, finding, COALESCE(outcome, ''), first_forged_hop, last_clean_router, server_hops, blocked_at_hop,
		routers_visible, message, notes::text, hops::text, error FROM hop_results WHERE campaign = $1 ORDER BY vantage, host, sni`, c.n)
	if err != nil {
		return err
	}
	defer rows.Close()
	err = eachTrace(rows.Next, func(row *traceRow) error {
		return rows.Scan(&row.vantage, &row.host, &row.sni, &row.time, &row.finding, &row.outcome, &row.firstForged, &row.lastClean, &row.serverHops, &row.blockedAt,
			&row.routersVisible, &row.message, &row.notes, &row.hops, &row.errText)
	}, fn)
	if err != nil {
		return err
	}
	return rows.Err()
}
