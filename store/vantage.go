package store

import (
	"context"
	"fmt"
	"math"

	"github.com/mitmguard/mitmguard/measure"
)

// sqliteVantages is SQLite's migration 4: what the operators declared of
// each vantage point of a campaign (probe and worker --vantage-asn,
// --vantage-country), one row per (campaign, vantage point); 0 and the empty string
// are "not declared".
const sqliteVantages = `CREATE TABLE vantages(
		campaign INTEGER NOT NULL,
		vantage TEXT NOT NULL,
		asn INTEGER NOT NULL DEFAULT 0,
		country TEXT NOT NULL DEFAULT '',
		PRIMARY KEY(campaign, vantage)
	) WITHOUT ROWID;`

// declareVantageSQL stores a declaration under the rule "first declaration
// wins, a field left undeclared is filled by a later one that does not
// conflict" and returns what is stored. (A conflicting one changes nothing:
// the fields it would fill are as doubtful as the one it got wrong.) SQLite
// and PostgreSQL both take it, with their own placeholders.
const declareVantageSQL = `INSERT INTO vantages(campaign, vantage, asn, country) VALUES(%s, %s, %s, %s)
	ON CONFLICT(campaign, vantage) DO UPDATE SET
		asn = CASE WHEN vantages.asn = 0 AND ` + vantageAgrees + ` THEN excluded.asn ELSE vantages.asn END,
		country = CASE WHEN vantages.country = '' AND ` + vantageAgrees + ` THEN excluded.country ELSE vantages.country END
	RETURNING asn, country`

// vantageAgrees is true when the declaration being inserted conflicts with
// the stored one in no field both declare (measure.Vantage.Conflicts).
const vantageAgrees = `(excluded.asn = 0 OR vantages.asn = 0 OR excluded.asn = vantages.asn)
		AND (excluded.country = '' OR vantages.country = '' OR excluded.country = vantages.country)`

// maxVantages bounds the declarations read back for one campaign: the
// database may come from someone else.
const maxVantages = 4096

// checkDeclaration refuses a declaration no flag would give: a write
// stores only what measure.ParseASN and ParseCountry accept.
func checkDeclaration(v measure.Vantage) error {
	if err := v.Check(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// vantageRow turns the columns of a vantages row into a declaration,
// refusing what no write makes (a hand-edited or hostile database).
func vantageRow(name string, asn int64, country string) (measure.Vantage, error) {
	if asn < 0 || asn > math.MaxUint32 {
		return measure.Vantage{}, fmt.Errorf("store: vantage point %.64q: ASN %d out of range", name, asn)
	}
	v := measure.Vantage{Name: name, ASN: uint32(asn), Country: country}
	return v, checkDeclaration(v)
}

// declared returns the outcome of a declaration: what is stored, and a
// *measure.VantageConflictError when a field differs from what was
// declared first.
func declared(c *Campaign, v measure.Vantage, name string, asn int64, country string) (measure.Vantage, error) {
	stored, err := vantageRow(name, asn, country)
	if err != nil {
		return stored, err
	}
	if v.Conflicts(stored) {
		return stored, &measure.VantageConflictError{Campaign: c.ID, Declared: v, Stored: stored}
	}
	return stored, nil
}

// DeclareVantage stores what the operator declared of a vantage point of
// the campaign.
func (s *SQLite) DeclareVantage(ctx context.Context, c *Campaign, v measure.Vantage) (measure.Vantage, error) {
	if err := checkDeclaration(v); err != nil {
		return v, err
	}
	var asn int64
	var country string
	if err := s.db.QueryRowContext(ctx, fmt.Sprintf(declareVantageSQL, "?", "?", "?", "?"), c.n, v.Name, int64(v.ASN), v.Country).Scan(&asn, &country); err != nil {
		return v, fmt.Errorf("store: declaring vantage point %s: %w", v.Name, err)
	}
	return declared(c, v, v.Name, asn, country)
}

// Vantages returns the declared vantage points of the campaign, by name.
func (s *SQLite) Vantages(ctx context.Context, c *Campaign) ([]measure.Vantage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT vantage, asn, country FROM vantages WHERE campaign = ? ORDER BY vantage LIMIT ?`, c.n, maxVantages+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanVantages(rows.Next, rows.Scan, rows.Err)
}

// scanVantages reads the rows of a Vantages query.
func scanVantages(next func() bool, scan func(...any) error, rowsErr func() error) ([]measure.Vantage, error) {
	var out []measure.Vantage
	for next() {
		if len(out) == maxVantages {
			return nil, fmt.Errorf("store: more than %d declared vantage points in one campaign", maxVantages)
		}
		var name, country string
		var asn int64
		if err := scan(&name, &asn, &country); err != nil {
			return nil, err
		}
		v, err := vantageRow(name, asn, country)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rowsErr()
}

// VantageMap returns the declared vantage points of the campaign by name.
func VantageMap(ctx context.Context, st Store, c *Campaign) (map[string]measure.Vantage, error) {
	vs, err := st.Vantages(ctx, c)
	if err != nil {
		return nil, err
	}
	m := make(map[string]measure.Vantage, len(vs))
	for _, v := range vs {
		m[v.Name] = v
	}
	return m, nil
}
