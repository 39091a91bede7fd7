package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/update"
	"github.com/mitmguard/mitmguard/update/active"
)

// cacheDir is the one folder of the active list, which update installs
// and every command reads (see update/active): $MITMGUARD_DIR, else
// /var/lib/mitmguard.
func cacheDir() string { return active.Dir() }

// activeList is the blocklist every command uses: the installed one over
// the embedded floor. A damaged installed list is reported and skipped.
func activeList(cmd *cobra.Command) *blocklist.List {
	l, _, err := active.Load(cacheDir())
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard:", err)
	}
	return l
}

// updateFlags are the update command's flags.
type updateFlags struct {
	urls       []string
	rootFile   string
	resetTrust bool
	fromFile   string
	timeout    time.Duration
	every      time.Duration
	json       bool
	noWait     bool
	// thenDistrust runs distrust --apply under distrustRoot after each
	// successful run (thendistrust.go).
	thenDistrust bool
	distrustRoot string
}

// client makes the update client the flags describe.
func (f *updateFlags) client() (*update.Client, error) {
	c := &update.Client{Mirrors: f.urls, Dir: cacheDir(), MirrorTimeout: f.timeout, ResetTrust: f.resetTrust}
	if f.rootFile != "" {
		b, err := os.ReadFile(f.rootFile)
		if err != nil {
			return nil, err
		}
		c.TrustedRoot = b
	}
	if f.fromFile != "" {
		if len(f.urls) > 0 {
			return nil, errors.New("give --from-file or --url, not both")
		}
		b, err := update.ReadBundleFile(f.fromFile)
		if err != nil {
			return nil, err
		}
		c.Bundle = b
	} else if len(f.urls) == 0 {
		// The configured mirrors, when the administrator keeps a list
		// beside the active list; else the build's default channel.
		if b, err := os.ReadFile(filepath.Join(c.Dir, "mirrors.txt")); err == nil {
			c.Mirrors = update.ParseMirrors(b)
		}
	}
	return c, nil
}

// explain adds to an update error what the user can do about it.
func (f *updateFlags) explain(err error) error {
	var te *update.TrustError
	switch {
	case errors.Is(err, update.ErrNoSource):
		return fmt.Errorf(`%w.
Give the repository's mirrors and, the first time, its root metadata (obtained out of band):
  mitmguard update --url URL [--url URL2 ...] --trust-root 1.root.json
or install a bundle someone passed you (no network needed):
  mitmguard update --from-file list.bundle --trust-root 1.root.json
(maintainers: docs/release-channel.md says how a release sets the default channel)`, err)
	case errors.Is(err, update.ErrNoRoot):
		return fmt.Errorf("%w: give --trust-root FILE (the repository's 1.root.json, obtained out of band)", err)
	case errors.As(err, &te):
		return fmt.Errorf("%w.\nIf %s is the right root, forget the trusted metadata and start again from it with:\n  %s",
			err, f.rootFile, f.resetCommand())
	case errors.As(err, new(*update.Error)) && !errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w (the previous list stays in force)", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w\n(the active list lives in %s: run as root, or set %s to a folder of yours for every command)", err, cacheDir(), active.EnvDir)
	}
	return err
}

// resetCommand is the exact command that resets the trust to --trust-root.
func (f *updateFlags) resetCommand() string {
	args := []string{"mitmguard", "update", "--reset-trust", "--trust-root", shellQuote(f.rootFile)}
	for _, u := range f.urls {
		args = append(args, "--url", shellQuote(u))
	}
	if f.fromFile != "" {
		args = append(args, "--from-file", shellQuote(f.fromFile))
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@+,%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// updateJSON is update --json's one object per run, whatever happened.
type updateJSON struct {
	*update.Result
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Stage  string `json:"stage,omitempty"`
}

// report prints one run's outcome; it returns the error to fail with.
func (f *updateFlags) report(cmd *cobra.Command, res *update.Result, err error) error {
	out := cmd.OutOrStdout()
	if err != nil {
		err = f.explain(err)
	}
	if f.json {
		v := updateJSON{Result: res}
		if res != nil {
			v.Status = res.Status
		}
		if err != nil {
			v.Status, v.Error = "refused", err.Error()
			var ue *update.Error
			if errors.As(err, &ue) {
				v.Stage = ue.Stage
			}
		}
		writeJSON(out, v)
		return err
	}
	switch {
	case err != nil:
	case res.Status == "current":
		fmt.Fprintf(out, "blocklist version %d is current (%d entries)\n", res.Version, res.Entries)
	default:
		fmt.Fprintf(out, "installed blocklist version %d (%d entries) from %s\n", res.Version, res.Entries, res.Source)
	}
	if res != nil && (len(res.Mirrors) > 1 || err != nil) {
		for _, m := range res.Mirrors {
			line := fmt.Sprintf("  %s: %s", m.URL, m.Status)
			if len(m.Served) > 0 {
				line += " (served " + strings.Join(m.Served, ", ") + ")"
			}
			if m.Error != "" {
				line += ": " + m.Error
			}
			fmt.Fprintln(cmd.ErrOrStderr(), line)
		}
	}
	return err
}

func newUpdate() *cobra.Command {
	var f updateFlags
	cmd := &cobra.Command{
		Use:   "update [--url URL]... [--trust-root FILE] [--from-file BUNDLE] [--every DURATION]",
		Short: "Fetch the newest signed blocklist (TUF) and install it",
		Long: `update refreshes the blocklist repository's TUF metadata, downloads the list,
verifies it, and installs it atomically as the active list, which every
command then uses. An attacker on the network cannot alter, roll back or
freeze the update: it is refused and the previous list stays in force. The
embedded list stays the floor.

Mirrors: each --url is a mirror of the repository, tried in order for each
file; a mirror that is down, stalls past --timeout, or serves stale,
tampered or endless data is skipped for the rest of the run. Without --url,
the mirrors listed in mirrors.txt beside the active list (one URL a line),
else this build's default channel, are used.

Offline: --from-file installs a bundle made by 'mitmguard repo bundle' (a
file passed by USB stick or messenger), verified exactly as an online update.

Trust: the first update trusts --trust-root FILE (the repository's
1.root.json, obtained out of band) or the default channel's root; later runs
follow the root the folder trusts. A --trust-root that differs from it is
refused; --reset-trust forgets the trusted metadata and starts again from
the given root (the installed list stays, and an older list is still refused).

The active list lives in $MITMGUARD_DIR, else /var/lib/mitmguard. One run
at a time updates it: a second run (the timer and a user, say) waits for
the first, saying so, or with --no-wait fails naming the holder's PID.
--every runs it on a schedule (or see docs/systemd for a timer).

--then-distrust (opt-in) runs 'mitmguard distrust --apply' after each
successful run, so that the device's trust stores also stop trusting a root
the list now names (undo with 'mitmguard distrust --undo'). With --json,
distrust's JSON object follows the update's when it changes something.`,
		Example: `  mitmguard update --url https://a.example/tuf --url https://b.example/tuf --trust-root 1.root.json
  mitmguard update --from-file list.bundle
  mitmguard update --reset-trust --trust-root 1.root.json --url https://a.example/tuf
  mitmguard update --every 6h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.every > 0 && f.fromFile != "" {
				return f.report(cmd, nil, errors.New("--every does not go with --from-file: a bundle does not change"))
			}
			c, err := f.client()
			if err != nil {
				return f.report(cmd, nil, err)
			}
			c.NoWait = f.noWait
			c.Waiting = func(pid int) {
				holder := "another run"
				if pid > 0 {
					holder = fmt.Sprintf("the run with PID %d", pid)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "mitmguard: waiting for %s to finish updating %s (--no-wait fails instead)\n", holder, c.Dir)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for {
				res, err := c.Update(ctx)
				err = f.report(cmd, res, err)
				if err == nil && f.thenDistrust {
					err = thenDistrust(cmd, f.distrustRoot, f.json)
				}
				if err != nil && f.every == 0 {
					if f.json {
						fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard:", err)
						return &exitError{exitFailed}
					}
					return err
				}
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard:", err)
				}
				if f.every == 0 {
					return nil
				}
				c.ResetTrust = false // once is enough
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(f.every):
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.urls, "url", nil, "`URL` of a mirror of the TUF repository (repeatable; tried in order)")
	fl.StringVar(&f.rootFile, "trust-root", "", "root metadata `FILE` to trust at first use (or with --reset-trust)")
	fl.BoolVar(&f.resetTrust, "reset-trust", false, "forget the trusted metadata and trust --trust-root (or the default channel's root) again")
	fl.StringVar(&f.fromFile, "from-file", "", "install from a `BUNDLE` made by 'mitmguard repo bundle' (no network)")
	fl.DurationVar(&f.timeout, "timeout", update.DefaultMirrorTimeout, "give up on a mirror after `DURATION` for one file")
	fl.DurationVar(&f.every, "every", 0, "keep running and update every `DURATION` (e.g. 6h)")
	fl.BoolVar(&f.json, "json", false, "print the outcome as JSON (always one object, also when refused or current)")
	fl.BoolVar(&f.noWait, "no-wait", false, "fail at once, naming its PID, when another update holds the folder (default: wait for it)")
	fl.BoolVar(&f.thenDistrust, "then-distrust", false, "after each successful run, remove the trust of every listed root from the trust stores (distrust --apply)")
	fl.StringVar(&f.distrustRoot, "distrust-root", "/", "with --then-distrust, the system mounted or unpacked under `DIR` whose stores to change")
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
			var fe *blocklist.FormatError
			if errors.As(err, &fe) {
				what := "is not a valid mitmguard blocklist JSON"
				if bytes.Contains(data, []byte("-----BEGIN")) {
					what = "holds PEM certificates, not a mitmguard blocklist JSON"
				}
				return fmt.Errorf("%s %s: repo publish wants the JSON list format (blocklist/FORMAT.md); start from 'mitmguard blocklist export --format json' and add an entry per root, with its provenance (%w)", list, what, err)
			}
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
	var output string
	bundle := &cobra.Command{
		Use:   "bundle DIR --output FILE",
		Short: "Pack the repository's current state into one file, for users whose network blocks every mirror",
		Long: `bundle packs the current signed metadata (every root version, timestamp,
snapshot, targets) and the list into one file (DIR is a repository made by
repo init, or a mirror's copy of its repository folder). Pass it on by USB
stick or messenger; 'mitmguard update --from-file FILE' verifies it exactly
as an online update and installs it. Clients refuse it once its timestamp
expires, as they would a frozen mirror: make bundles from a fresh state.`,
		Example: "  mitmguard repo bundle ./tuf --output list.bundle",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var buf bytes.Buffer
			expires, err := update.WriteBundle(&buf, args[0])
			if err != nil {
				return err
			}
			if err := checkBundle(cmd, buf.Bytes()); err != nil {
				return err
			}
			if err := os.WriteFile(output, buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes); clients accept it until %s (the timestamp's expiry)\n",
				output, buf.Len(), expires.UTC().Format(time.RFC3339))
			return nil
		},
	}
	bundle.Flags().StringVarP(&output, "output", "o", "", "the bundle `FILE` to write")
	bundle.MarkFlagRequired("output")
	cmd.AddCommand(init, publish, rotate, refresh, bundle)
	return cmd
}

// checkBundle installs a bundle into a scratch folder, trusting the bundle's
// own first root: not a proof of origin, which only the client's trusted
// root gives, but it catches a bundle that no client could install.
func checkBundle(cmd *cobra.Command, data []byte) error {
	b, err := update.ReadBundle(bytes.NewReader(data), "new bundle")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mitmguard-bundle-check-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	c := &update.Client{Bundle: b, TrustedRoot: b.FirstRoot(), Dir: tmp}
	if _, err := c.Update(cmd.Context()); err != nil {
		return fmt.Errorf("the bundle does not verify (an expired timestamp needs 'mitmguard repo refresh DIR' first): %w", err)
	}
	return nil
}
