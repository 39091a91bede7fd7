package store

import "context"

// VantageCounts returns how many records of the campaign each vantage
// point has stored (campaign status).
func (s *SQLite) VantageCounts(ctx context.Context, c *Campaign) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT vantage, COUNT(*) FROM records WHERE campaign = ? GROUP BY vantage`, c.n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var v string
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			return nil, err
		}
		out[v] = n
	}
	return out, rows.Err()
}
