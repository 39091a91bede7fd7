package store

import (
	"context"
	"fmt"

	"github.com/mitmguard/mitmguard/measure"
)

// pgVantages is PostgreSQL's migration 4, the same table as SQLite's
// (store/vantage.go), bounded by the database too.
const pgVantages = `CREATE TABLE vantages(
		campaign bigint NOT NULL REFERENCES campaigns(n) ON DELETE CASCADE,
		vantage text COLLATE "C" NOT NULL,
		asn bigint NOT NULL DEFAULT 0 CHECK (asn BETWEEN 0 AND 4294967295),
		country text NOT NULL DEFAULT '' CHECK (country ~ '^([A-Z][A-Z])?$'),
		PRIMARY KEY(campaign, vantage)
	);`

// DeclareVantage stores what the operator declared of a vantage point of
// the campaign.
func (p *Postgres) DeclareVantage(ctx context.Context, c *Campaign, v measure.Vantage) (measure.Vantage, error) {
	if err := checkDeclaration(v); err != nil {
		return v, err
	}
	var asn int64
	var country string
	if err := p.pool.QueryRow(ctx, fmt.Sprintf(declareVantageSQL, "$1", "$2", "$3", "$4"), c.n, v.Name, int64(v.ASN), v.Country).Scan(&asn, &country); err != nil {
		return v, fmt.Errorf("store: declaring vantage point %s: %w", v.Name, err)
	}
	return declared(c, v, v.Name, asn, country)
}

// Vantages returns the declared vantage points of the campaign, by name.
func (p *Postgres) Vantages(ctx context.Context, c *Campaign) ([]measure.Vantage, error) {
	rows, err := p.pool.Query(ctx, `SELECT vantage, asn, country FROM vantages WHERE campaign = $1 ORDER BY vantage LIMIT $2`, c.n, maxVantages+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanVantages(rows.Next, rows.Scan, rows.Err)
}
