package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
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
			l := blocklist.Embedded()
			if asJSON {
				b, err := l.Marshal()
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "blocklist version %d (%s), %d entries\n\n", l.Version, l.Source, l.Len())
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tCOUNTRY\tFIRST SEEN\tSPKI SHA-256\tNAME")
			for _, e := range l.Entries() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s…\t%s\n", e.ID, e.Kind, or(e.Country, "-"), or(e.FirstSeen, "-"), e.SPKISHA256[:16], e.Name)
			}
			return tw.Flush()
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print the list in the mitmguard JSON format")
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
	cmd.AddCommand(show, validate)
	return cmd
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
