package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/export"
	"github.com/mitmguard/mitmguard/store"
)

func newExport() *cobra.Command {
	var db, campaign, format, output string
	cmd := &cobra.Command{
		Use:   "export --db DSN|FILE [--campaign ID] --format parquet|jsonl --output DIR|FILE|-",
		Short: "Write a store's records and certificates as Parquet or JSON Lines for analysis",
		Long: `export writes the records of a campaign (every campaign without --campaign)
with their certificates for analysis tools. --format parquet writes a folder
partitioned Hive-style by campaign and date, which DuckDB, Spark, pandas or
BigQuery read as one table:

  DIR/records/campaign=ID/date=YYYY-MM-DD/part-N.parquet
  DIR/certificates/campaign=ID/part-N.parquet

(schema: docs/export.md). --format jsonl writes the same records one per line,
each certificate once before the first record that refers to it, in the form
of mitmguard probe --jsonl, to a FILE or to standard output (-). Both stream,
so memory stays flat on any campaign size. A campaign already in DIR is
refused rather than written twice.`,
		Example: `  mitmguard export --db kz.db --format parquet --output warehouse/
  duckdb -c "SELECT vantage, outcome, count(*) FROM 'warehouse/records/*/*/*.parquet' GROUP BY ALL"
  mitmguard export --db kz.db --campaign 20261125T120000-3fa2 --format jsonl --output - | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case db == "":
				return errors.New("export: --db is required (the store mitmguard probe or the workers wrote)")
			case format != "parquet" && format != "jsonl":
				return fmt.Errorf("export: --format %q: want parquet or jsonl", format)
			case output == "":
				return errors.New("export: --output is required (a folder for parquet; a file or - for jsonl)")
			case format == "parquet" && output == "-":
				return export.ErrOutput
			}
			st, err := openExistingStore(cmd.Context(), "export", db)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			cs, err := export.Campaigns(ctx, st, campaign)
			if errors.Is(err, store.ErrNoCampaign) {
				return fmt.Errorf("export: %s has no campaign %q", db, campaign)
			}
			if err != nil {
				return err
			}
			var stats export.Stats
			switch {
			case format == "parquet":
				stats, err = export.Parquet(ctx, st, cs, output, export.Options{})
			case output == "-":
				bw := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
				if stats, err = export.JSONL(ctx, st, cs, bw); err == nil {
					err = bw.Flush()
				}
			default:
				err = writeFileWith(output, func(w io.Writer) error {
					var err error
					stats, err = export.JSONL(ctx, st, cs, w)
					return err
				})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d records and %d certificates of %d campaigns (%d bytes) to %s\n",
				stats.Records, stats.Certs, len(cs), stats.Bytes, output)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&db, "db", "", "the store: an SQLite `FILE` or a postgres:// DSN")
	fl.StringVar(&campaign, "campaign", "", "export only campaign `ID` (default: every campaign)")
	fl.StringVar(&format, "format", "", "parquet (a partitioned folder) or jsonl (one record per line)")
	fl.StringVar(&output, "output", "", "`DIR` for parquet; FILE or - (standard output) for jsonl")
	return cmd
}
