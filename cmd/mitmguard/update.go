package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/update"
)

// cacheDir is where the installed blocklist and the trusted TUF metadata
// live: $MITMGUARD_CACHE, else the user's cache folder.
func cacheDir() string {
	if d := os.Getenv("MITMGUARD_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "mitmguard")
}

// activeList is the blocklist every command uses: the installed one over
// the embedded floor. A damaged installed list is reported and skipped.
func activeList(cmd *cobra.Command) *blocklist.List {
	l, _, err := update.Active(cacheDir())
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard:", err)
	}
	return l
}

func newUpdate() *cobra.Command {
	var url, rootFile, cache string
	var every time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "update [--url URL] [--trust-root FILE] [--cache DIR] [--every DURATION]",
		Short: "Fetch the newest signed blocklist (TUF) and install it",
		Long: `update refreshes the blocklist repository's TUF metadata, downloads the list,
verifies it, and installs it atomically as the active list. An attacker on the
network cannot alter, roll back or freeze the update: it is refused and the
previous list stays in force. The embedded list stays the floor.

No default repository is published yet: give --url, and --trust-root the
first time (the repository's 1.root.json, obtained out of band).
--every runs it on a schedule (or see docs/systemd for a timer).`,
		Example: `  mitmguard update --url https://example.org/mitmguard-tuf --trust-root 1.root.json
  mitmguard update --url https://example.org/mitmguard-tuf --every 6h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cache == "" {
				cache = cacheDir()
			}
			c := &update.Client{URL: url, CacheDir: cache}
			if rootFile != "" {
				b, err := os.ReadFile(rootFile)
				if err != nil {
					return err
				}
				c.TrustedRoot = b
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for {
				st, err := c.Update(ctx)
				switch {
				case errors.Is(err, update.ErrUpToDate):
					fmt.Fprintf(cmd.OutOrStdout(), "blocklist version %d is current (%d entries)\n", st.Version, st.Entries)
				case err != nil && every == 0:
					return err
				case err != nil:
					fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard:", err, "(the previous list stays in force)")
				case asJSON:
					writeJSON(cmd.OutOrStdout(), st)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "installed blocklist version %d (%d entries) from %s\n", st.Version, st.Entries, st.Source)
				}
				if every == 0 {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&url, "url", update.DefaultURL, "`URL` of the TUF repository")
	fl.StringVar(&rootFile, "trust-root", "", "root metadata `FILE` to trust at first use")
	fl.StringVar(&cache, "cache", "", "`DIR` for the trusted metadata and the installed list (default: $MITMGUARD_CACHE or the user cache folder)")
	fl.DurationVar(&every, "every", 0, "keep running and update every `DURATION` (e.g. 6h)")
	fl.BoolVar(&asJSON, "json", false, "print the installed state as JSON")
	return cmd
}

func newRepo() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Maintain the signed blocklist repository (TUF)",
		Long: `repo keeps a TUF repository for the blocklist: ed25519 keys under DIR/keys
(keep the root key offline), metadata and targets under DIR/repository, which
any static web server can serve.`,
	}
	init := &cobra.Command{
		Use: "init DIR", Short: "Create a repository with new keys", Args: cobra.ExactArgs(1),
		Example: "  mitmguard repo init ./tuf",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := update.InitRepo(args[0], time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repository created in %s: serve %s; clients trust %s\n", args[0],
				filepath.Join(args[0], "repository"), filepath.Join(args[0], "repository", "1.root.json"))
			return nil
		},
	}
	var list string
	publish := &cobra.Command{
		Use: "publish DIR --list FILE", Short: "Validate a blocklist file and publish it as the next version", Args: cobra.ExactArgs(1),
		Example: "  mitmguard repo publish ./tuf --list blocklist.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(list)
			if err != nil {
				return err
			}
			v, err := update.Publish(args[0], data, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published blocklist version %d\n", v)
			return nil
		},
	}
	publish.Flags().StringVar(&list, "list", "", "the blocklist `FILE` (mitmguard JSON format)")
	publish.MarkFlagRequired("list")
	var role string
	rotate := &cobra.Command{
		Use: "rotate DIR --role ROLE", Short: "Replace a role's key (root, targets, snapshot, timestamp)", Args: cobra.ExactArgs(1),
		Example: "  mitmguard repo rotate ./tuf --role timestamp",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := update.RotateKey(args[0], role, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated the %s key; the old one is kept as keys/%s.*.retired.pem\n", role, role)
			return nil
		},
	}
	rotate.Flags().StringVar(&role, "role", "", "`ROLE` whose key to replace")
	rotate.MarkFlagRequired("role")
	refresh := &cobra.Command{
		Use: "refresh DIR", Short: "Re-sign the timestamp and snapshot (run daily, so clients can tell a frozen network)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return update.Refresh(args[0], time.Now()) },
	}
	cmd.AddCommand(init, publish, rotate, refresh)
	return cmd
}
