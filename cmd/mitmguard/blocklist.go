package main

import (
	"bytes"
	"encoding/json"
	"errors"
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
	"github.com/mitmguard/mitmguard/internal/atomicfile"
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
	cmd.AddCommand(show, validate, export, compare, newBlocklistMerge())
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

func newBlocklistMerge() *cobra.Command {
	var output, date, evidence string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "merge CURRENT PROPOSED --output NEW",
		Short: "Add reviewed proposed entries to a published list, showing what is added",
		Long: `merge writes NEW: the entries of CURRENT, then every entry of PROPOSED that
CURRENT lacks, each stamped with the day it is added and carrying its evidence
reference; NEW's list_version is CURRENT's plus one. It prints what is added.

It refuses, naming every problem and writing nothing, when a proposed key is
already listed under another id, a proposed id is listed with another key or
was withdrawn, the proposal withdraws entries, or a new entry has no evidence
reference (give one with --evidence). Nothing to add writes nothing.

Publish NEW with: mitmguard repo publish DIR --list NEW`,
		Example: `  mitmguard blocklist merge published.json proposals/proposed.json --output next.json
  mitmguard repo publish ./tuf --list next.json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var lists [2]*blocklist.List
			for i, name := range args {
				data, err := readBounded(name, blocklist.MaxFileSize)
				if err != nil {
					return err
				}
				if lists[i], err = blocklist.Load(data, name); err != nil {
					return err
				}
			}
			opts := blocklist.MergeOptions{Evidence: evidence}
			if date != "" {
				d, err := time.Parse(time.DateOnly, date)
				if err != nil {
					return fmt.Errorf("--date %q: want YYYY-MM-DD", date)
				}
				opts.Date = d
			}
			res, err := blocklist.MergeProposal(lists[0], lists[1], opts)
			var me *blocklist.MergeError
			if errors.As(err, &me) && asJSON {
				v := mergeJSON{Current: lists[0].Version, Added: []*blocklist.Entry{}, Listed: []string{}, Problems: me.Problems}
				if err := writeJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
				return &exitError{exitFailed}
			}
			if err != nil {
				return err
			}
			written := ""
			if len(res.Added) > 0 {
				data, err := res.List.Marshal()
				if err != nil {
					return err
				}
				if err := atomicfile.Write(output, data, 0o644, nil); err != nil {
					return err
				}
				written = output
			}
			out := cmd.OutOrStdout()
			if asJSON {
				v := mergeJSON{Current: lists[0].Version, Output: written, Added: append([]*blocklist.Entry{}, res.Added...), Listed: []string{}, Problems: []blocklist.MergeProblem{}}
				if written != "" {
					v.Version = res.List.Version
				}
				for _, e := range res.Listed {
					v.Listed = append(v.Listed, e.ID)
				}
				return writeJSON(out, v)
			}
			for _, e := range res.Added {
				fmt.Fprintf(out, "+ %s  %s  %s  (%s; added %s; evidence %s)\n", e.ID, e.SPKISHA256, e.Name, e.Kind, e.Added, e.Evidence)
			}
			for _, e := range res.Listed {
				fmt.Fprintf(out, "= %s  %s  already listed\n", e.ID, e.SPKISHA256)
			}
			if written == "" {
				fmt.Fprintf(out, "nothing to add: %s already lists every proposed entry; %s not written\n", args[0], output)
				return nil
			}
			fmt.Fprintf(out, "%d added, %d already listed: wrote %s (list_version %d -> %d); publish it with: mitmguard repo publish DIR --list %s\n",
				len(res.Added), len(res.Listed), output, lists[0].Version, res.List.Version, output)
			return nil
		},
	}
	cmd.Flags().StringVar(&output, "output", "", "write the merged list to `NEW`")
	cmd.Flags().StringVar(&date, "date", "", "the day the entries are added, `YYYY-MM-DD` (default today, UTC)")
	cmd.Flags().StringVar(&evidence, "evidence", "", "evidence `REF` (URL or path) for proposed entries that carry none")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what is added, already listed, or refused as JSON")
	cmd.MarkFlagRequired("output")
	return cmd
}

// mergeJSON is the output of blocklist merge --json.
type mergeJSON struct {
	Current  int                      `json:"current_version"`
	Version  int                      `json:"version,omitempty"` // of the written list
	Output   string                   `json:"output,omitempty"`
	Added    []*blocklist.Entry       `json:"added"`
	Listed   []string                 `json:"listed"`
	Problems []blocklist.MergeProblem `json:"problems"`
}
