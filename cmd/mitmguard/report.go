package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/report"
	"github.com/mitmguard/mitmguard/store"
)

func newReport() *cobra.Command {
	var db, campaign, html, csvDir, jsonl string
	var asJSON bool
	var pf *proposeFlags
	cmd := &cobra.Command{
		Use:   "report --db FILE [flags]",
		Short: "Summarise a measurement campaign: which domains, which hosts, which roots",
		Long: `report reads a campaign from the store mitmguard probe wrote and says which
domains were intercepted (on how many hosts, by which issuer or root), which
hosts intercept, the share of hosts intercepted per domain and per network, the
outcomes over time when campaigns ran repeatedly, and the forged certificates'
traits. --html writes one self-contained file with charts (no network needed to
view it); --csv writes tables; --jsonl exports every record.`,
		Example: `  mitmguard report --db kz.db
  mitmguard report --db kz.db --html report.html --csv tables/
  mitmguard report --db kz.db --campaign 20261125T120000-3fa2 --json
  mitmguard report --db kz.db --propose --output proposal/   # blocklist entries to review`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openExistingStore(cmd.Context(), "report", db)
			if err != nil {
				return err
			}
			defer st.Close()
			if pf.on {
				return runPropose(cmd, st, db, campaign, pf, asJSON)
			}
			rep, err := report.Build(cmd.Context(), st, campaign)
			if errors.Is(err, store.ErrNoCampaign) {
				return fmt.Errorf("report: %s has no campaign %q", db, campaign)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if html != "" {
				if err := writeFileWith(html, rep.WriteHTML); err != nil {
					return err
				}
			}
			if csvDir != "" {
				if err := rep.WriteCSV(cmd.Context(), st, csvDir); err != nil {
					return err
				}
			}
			if jsonl != "" {
				if err := exportJSONL(cmd, st, rep.Campaign, jsonl); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(out, rep)
			}
			rep.WriteText(out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&db, "db", "mitmguard.db", "the SQLite `FILE` mitmguard probe wrote, or a PostgreSQL postgres://... DSN")
	fl.StringVar(&campaign, "campaign", "", "campaign `ID` (default: the newest)")
	fl.StringVar(&html, "html", "", "write a self-contained HTML report with charts to `FILE`")
	fl.StringVar(&csvDir, "csv", "", "write CSV tables (domains, hosts, networks, timeline, traits, records) into `DIR`")
	fl.StringVar(&jsonl, "jsonl", "", "export every record, and each certificate once, as JSON Lines to `FILE`")
	fl.BoolVar(&asJSON, "json", false, "print the report as JSON")
	pf = addProposeFlags(cmd)
	return cmd
}

func writeFileWith(name string, write func(w io.Writer) error) error {
	fh, err := os.Create(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(fh)
	if err := write(bw); err != nil {
		fh.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// exportJSONL writes the campaign's records in the same JSON Lines form as
// mitmguard probe --jsonl: each certificate once, before the first record
// that refers to it.
func exportJSONL(cmd *cobra.Command, st store.Store, id, name string) error {
	c, err := st.Campaign(cmd.Context(), id)
	if err != nil {
		return err
	}
	vs, err := st.Vantages(cmd.Context(), c)
	if err != nil {
		return err
	}
	return writeFileWith(name, func(w io.Writer) error {
		j := measure.NewJSONL(w, c.ID)
		j.Declare(vs...)
		return j.Export(cmd.Context(), store.Bind(st, c), nil)
	})
}

// openExistingStore opens the store --db names for a command that reads
// it (report, export): a PostgreSQL database for a postgres:// DSN, else an
// SQLite file that must exist already, so that a mistyped path is an error
// rather than a new empty store.
func openExistingStore(ctx context.Context, cmdName, db string) (store.Store, error) {
	if !store.IsPostgresDSN(db) {
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("%s: %w (give the --db that mitmguard probe wrote)", cmdName, err)
		}
	}
	return store.OpenDSN(ctx, db)
}
