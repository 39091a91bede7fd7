package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/crlset"
	"github.com/mitmguard/mitmguard/update"
)

func newBlocklist() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "blocklist",
		Short: "Show and validate blocklists of interception roots",
	}
	var asJSON bool
	show := &cobra.Command{
		Use:     "show",
		Short:   "Show the active blocklist",
		Example: "  mitmguard blocklist show\n  mitmguard blocklist show --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, st, err := update.Active(cacheDir())
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard:", err)
			}
			if asJSON {
				raw, err := l.Marshal()
				if err != nil {
					return err
				}
				v := struct {
					Version         int             `json:"version"`
					Entries         int             `json:"entries"`
					Source          string          `json:"source"`
					Installed       *time.Time      `json:"installed,omitempty"`
					EmbeddedVersion int             `json:"embedded_version"`
					List            json.RawMessage `json:"list"`
				}{Version: l.Version, Entries: l.Len(), Source: "embedded", EmbeddedVersion: blocklist.Embedded().Version, List: raw}
				if st != nil {
					v.Source, v.Installed = st.Source, &st.Installed
				}
				return writeJSON(cmd.OutOrStdout(), v)
			}
			out := cmd.OutOrStdout()
			if st != nil {
				fmt.Fprintf(out, "blocklist version %d, %d entries: installed %s from %s, over the embedded list (version %d)\n\n",
					l.Version, l.Len(), st.Installed.Format(time.RFC3339), st.Source, blocklist.Embedded().Version)
			} else {
				fmt.Fprintf(out, "blocklist version %d (embedded), %d entries; run mitmguard update to fetch a newer one\n\n", l.Version, l.Len())
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tCOUNTRY\tFIRST SEEN\tSPKI SHA-256\tNAME")
			for _, e := range l.Entries() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s…\t%s\n", e.ID, e.Kind, or(e.Country, "-"), or(e.FirstSeen, "-"), e.SPKISHA256[:16], e.Name)
			}
			return tw.Flush()
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print the version, source, install time and the list (mitmguard JSON format) as JSON")
	validate := &cobra.Command{
		Use:     "validate FILE...",
		Short:   "Check blocklist files (mitmguard JSON or PEM) and say what they hold",
		Example: "  mitmguard blocklist validate extra.json roots.pem",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range args {
				data, err := os.ReadFile(name)
				if err != nil {
					return err
				}
				l, err := blocklist.Load(data, name)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries, valid\n", name, l.Len())
			}
			return nil
		},
	}
	var format, output, exportList, compareList string
	export := &cobra.Command{
		Use:   "export --format FORMAT [--list FILE] [--output FILE]",
		Short: "Write the blocklist for software that does not link Go",
		Long: `export writes the active blocklist as:

  p11kit       a p11-kit blocklist file (each certificate marked x-distrusted)
  pem          the certificates as PEM
  spki-sha256  one hex SPKI SHA-256 per line, with the entry id
  crlset       Chrome's CRLSet format (BlockedSPKIs, KnownInterceptionSPKIs,
               BlockedInterceptionSPKIs)
  onecrl-json  Mozilla OneCRL-style subject + pubKeyHash records
  json         mitmguard's own format (blocklist/FORMAT.md), to edit and publish

With --list it writes the given list file (mitmguard JSON or PEM) instead.
A CRLSet's header holds at most about 1,390 keys (its length is 16 bits): a
longer list is refused with an error, never written corrupt.`,
		Example: `  mitmguard blocklist export --format p11kit --output /etc/pki/ca-trust/source/blocklist/mitmguard.p11-kit
  mitmguard blocklist export --format spki-sha256
  mitmguard blocklist export --list extra.json --format crlset --output extra.crlset`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := listFlag(cmd, exportList)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			switch format {
			case "json":
				raw, err := l.Marshal()
				if err != nil {
					return err
				}
				b.Write(raw)
			case "crlset":
				raw, err := crlset.FromList(l).Marshal()
				if err != nil {
					return fmt.Errorf("%d entries as a CRLSet: %w", l.Len(), err)
				}
				b.Write(raw)
			default:
				if !slices.Contains(blocklist.ExportFormats, format) {
					return fmt.Errorf("unknown export format %q (want one of json, crlset, %s)", format, strings.Join(blocklist.ExportFormats, ", "))
				}
				if err := l.Export(&b, format); err != nil {
					return err
				}
			}
			if output == "" {
				_, err := cmd.OutOrStdout().Write(b.Bytes())
				return err
			}
			return os.WriteFile(output, b.Bytes(), 0o644)
		},
	}
	export.Flags().StringVar(&format, "format", "", "`FORMAT`: json (mitmguard's own), crlset, "+strings.Join(blocklist.ExportFormats, ", "))
	export.Flags().StringVar(&output, "output", "", "write to `FILE` instead of standard output")
	export.Flags().StringVar(&exportList, "list", "", "export the blocklist `FILE` (mitmguard JSON or PEM) instead of the active list")
	export.MarkFlagRequired("format")
	compare := &cobra.Command{
		Use:     "compare-crlset [--list FILE] CRLSET",
		Short:   "Compare a Chrome CRLSet's interception keys with the blocklist",
		Example: "  mitmguard blocklist compare-crlset crl-set\n  mitmguard blocklist compare-crlset --list extra.json extra.crlset",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readBounded(args[0], crlset.MaxSize)
			if err != nil {
				return err
			}
			c, err := crlset.Parse(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			l, err := listFlag(cmd, compareList)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			keys := c.InterceptionSPKIs()
			fmt.Fprintf(out, "CRLSet sequence %d: %d interception keys, %d blocked keys, %d issuers with revoked serials\n",
				c.Header.Sequence, len(keys), len(c.Header.BlockedSPKIs), len(c.Parents))
			missing := 0
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				h, _ := chain.ParseHash(k)
				if e := l.Lookup(h); e != nil {
					fmt.Fprintf(out, "  on both    %s  %s\n", k, e.ID)
				} else {
					missing++
					fmt.Fprintf(out, "  NOT LISTED %s  (blocked by Chrome: %v)\n", k, keys[k])
				}
			}
			fmt.Fprintf(out, "%d interception keys of the CRLSet are not on the blocklist\n", missing)
			return nil
		},
	}
	compare.Flags().StringVar(&compareList, "list", "", "compare with the blocklist `FILE` (mitmguard JSON or PEM) instead of the active list")
	cmd.AddCommand(show, validate, export, compare)
	return cmd
}

// listFlag reads the list a --list flag names, or returns the active list
// when it names none.
func listFlag(cmd *cobra.Command, name string) (*blocklist.List, error) {
	if name == "" {
		return activeList(cmd), nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return blocklist.Load(data, name)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readBounded reads a file of at most max bytes (one byte more is read, so
// that the parser reports the file as too large).
func readBounded(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max+1))
}
