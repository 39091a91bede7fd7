// Package export writes a store's records and certificates in forms that
// analysis tools read directly: Parquet, partitioned Hive-style by campaign
// and date (DuckDB, Spark, pandas, BigQuery load it as one table), and JSON
// Lines, the same records one per line, for anything else.
//
// Both stream: rows come from the store's cursor and go to the output in
// bounded row groups, so memory stays flat on any campaign size (apart from
// the set of certificate hashes already written, which grows with distinct
// certificates, not records). The Parquet schema is documented in
// docs/export.md.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// Stats is what an export wrote.
type Stats struct {
	Records int   // record rows
	Certs   int   // certificates, each once per campaign
	Files   int   // files written (Parquet)
	Bytes   int64 // bytes written
}

// Campaigns resolves the campaigns to export: the one named, or every
// campaign in the store for "".
func Campaigns(ctx context.Context, st store.Store, id string) ([]*store.Campaign, error) {
	if id != "" {
		c, err := st.Campaign(ctx, id)
		if err != nil {
			return nil, err
		}
		return []*store.Campaign{c}, nil
	}
	cs, err := st.Campaigns(ctx)
	if err == nil && len(cs) == 0 {
		err = store.ErrNoCampaign
	}
	return cs, err
}

// certSet tracks the certificates already written for one campaign and
// writes each the first time a record or control refers to it.
type certSet struct {
	st   store.Store
	seen map[chain.Hash]struct{}
	emit func(h chain.Hash, der []byte) error
}

func (s *certSet) add(ctx context.Context, hs []chain.Hash) error {
	for _, h := range hs {
		if _, ok := s.seen[h]; ok {
			continue
		}
		der, err := s.st.Cert(ctx, h)
		if err != nil {
			return fmt.Errorf("export: certificate %s: %w", h, err)
		}
		s.seen[h] = struct{}{}
		if err := s.emit(h, der); err != nil {
			return err
		}
	}
	return nil
}

// JSONL writes the campaigns' records as JSON Lines to w, in the format of
// `mitmguard probe --jsonl` (measure.JSONRecord and measure.JSONCert lines):
// each certificate once per campaign, before the first record that refers
// to it.
func JSONL(ctx context.Context, st store.Store, cs []*store.Campaign, w io.Writer) (Stats, error) {
	var stats Stats
	cw := &countWriter{w: w}
	for _, c := range cs {
		enc := measure.NewJSONL(cw, c.ID)
		vs, err := st.Vantages(ctx, c)
		if err != nil {
			return stats, err
		}
		enc.Declare(vs...)
		certs := &certSet{st: st, seen: map[chain.Hash]struct{}{}, emit: func(_ chain.Hash, der []byte) error {
			stats.Certs++
			return enc.Cert(der)
		}}
		err = store.StreamRows(ctx, st, c, func(row *store.Row) error {
			r, ctl := row.Record()
			if err := certs.add(ctx, ctl.Chain); err != nil {
				return err
			}
			if err := certs.add(ctx, r.Chain); err != nil {
				return err
			}
			stats.Records++
			return enc.Record(r, ctl)
		})
		if err != nil {
			return stats, err
		}
	}
	stats.Bytes = cw.n
	return stats, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ExistsError is an export into a folder that already holds the campaign:
// export never overwrites or mixes runs, so a reader never sees a campaign
// twice.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("export: %s already exists (remove it to export the campaign again)", e.Path)
}

// ErrOutput is a Parquet export given no folder to write to.
var ErrOutput = errors.New("export: parquet needs --output DIR (a folder, not - or a file)")

// partitionValue escapes a Hive partition value so that any campaign ID
// (it comes from the store, which may be someone else's) names exactly one
// folder below the output: only [A-Za-z0-9_.-] stay as they are (a leading
// dot too is escaped, so "." and ".." cannot climb), the rest is %XX as Hive
// and DuckDB unescape it.
func partitionValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.' && i > 0
		if ok {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	if b.Len() == 0 {
		return "__HIVE_DEFAULT_PARTITION__"
	}
	return b.String()
}

// PartitionValue is how a value names its Hive partition folder
// ("campaign=" + PartitionValue(id)).
func PartitionValue(s string) string { return partitionValue(s) }
