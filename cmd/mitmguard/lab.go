package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/check"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/verdict"
)

func newLab() *cobra.Command {
	var dir string
	var demo bool
	var network int
	var hops *hopFlags
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run an interception middlebox on loopback to try mitmguard on",
		Long: `lab starts, on 127.0.0.1 only, an HTTPS origin and in front of it a
middlebox that behaves as Kazakhstan's did in 2019: for targeted SNIs it forges
a certificate chained to a "national" root (or resets, or stalls); other SNIs
pass through untouched. It writes the lab's roots to DIR and prints the
commands to try. With --demo it checks a few names itself and exits.`,
		Example: `  mitmguard lab --demo
  mitmguard lab --dir /tmp/lab     # then, in another terminal, the printed commands
  mitmguard lab --network 24 --dir /tmp/net   # hosts for a mitmguard probe campaign`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hops.hops > 0 {
				return runLabHops(cmd, dir, hops)
			}
			if network > 0 {
				return runLabNetwork(cmd, dir, network)
			}
			l, err := lab.Start(lab.Config{})
			if err != nil {
				return err
			}
			defer l.Close()
			if dir == "" {
				if dir, err = os.MkdirTemp("", "mitmguard-lab-"); err != nil {
					return err
				}
				if demo {
					defer os.RemoveAll(dir)
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := l.WriteFiles(dir); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if demo {
				return runDemo(cmd.Context(), out, l)
			}
			describeLab(out, l, dir)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			fmt.Fprintln(out, "lab stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write the lab's root certificates into `DIR` (default: a new temporary folder)")
	cmd.Flags().BoolVar(&demo, "demo", false, "check some names through the middlebox, print the verdicts, and exit")
	hops = addLabHops(cmd)
	cmd.Flags().IntVar(&network, "network", 0, "instead, run `N` hosts on 127.0.1.x, clean or interfering, for mitmguard probe (writes hosts.txt, domains.txt, truth.tsv)")
	return cmd
}

func describeLab(w io.Writer, l *lab.Lab, dir string) {
	fmt.Fprintf(w, "mitmguard lab on loopback\n  origin     %s\n  middlebox  %s\n  roots in   %s\n\nmiddlebox targets:\n", l.OriginAddr, l.MiddleboxAddr, dir)
	for _, name := range slices.Sorted(maps.Keys(l.Targets)) {
		fmt.Fprintf(w, "  %-18s %s\n", name, l.Targets[name])
	}
	pub, nat := filepath.Join(dir, "public-root.pem"), filepath.Join(dir, "national-root.pem")
	fmt.Fprintf(w, `
try:
  mitmguard check --roots %[1]s --connect %[3]s en.wikipedia.org     # passes through: ok
  mitmguard check --roots %[1]s --connect %[3]s facebook.com         # forged: mitm.suspected
  mitmguard check --roots %[1]s --blocklist %[2]s --connect %[3]s facebook.com   # mitm.known
  mitmguard check --roots %[1]s --connect %[3]s twitter.com          # blocked.reset
Ctrl-C stops the lab.
`, pub, nat, l.MiddleboxAddr)
}

// runDemo checks names through the middlebox, first with the embedded list
// only and then with the lab's national root added to it, as a user would
// after `mitmguard update` learned of a new root.
func runDemo(ctx context.Context, w io.Writer, l *lab.Lab) error {
	withNational, knownID := lab.Blocklist(l.NationalRoot)
	passes := []struct {
		title string
		list  *blocklist.List
	}{
		{"with the embedded blocklist (the lab's national root is not on it)", blocklist.Embedded()},
		{"with the lab's national root added to the blocklist", withNational},
	}
	names := []string{"en.wikipedia.org", "www.facebook.com", "twitter.com", "ok.ru"}
	fmt.Fprintf(w, "mitmguard lab demo: a middlebox on %s in front of an origin on %s\n", l.MiddleboxAddr, l.OriginAddr)
	var got []outcome.Outcome
	for _, p := range passes {
		fmt.Fprintf(w, "\n== %s\n\n", p.title)
		cl := verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{l.PublicRoot}, Blocklist: p.list})
		for _, n := range names {
			r := check.Run(ctx, n, check.Options{Classifier: cl, Connect: l.MiddleboxAddr, Timeout: 2 * time.Second})
			printReport(w, r)
			got = append(got, r.Outcome)
		}
	}
	want := []outcome.Outcome{outcome.OK, outcome.Suspected, outcome.BlockedReset, outcome.BlockedTimeout,
		outcome.OK, outcome.Known(knownID), outcome.BlockedReset, outcome.BlockedTimeout}
	if !slices.Equal(got, want) {
		return fmt.Errorf("lab demo: verdicts %v, expected %v", got, want)
	}
	fmt.Fprintln(w, "demo complete: every verdict is the one the lab's truth calls for")
	return nil
}

// networkActions is the mix of behaviours of a lab network's hosts, repeated:
// half clean, the rest intercepting, resetting, stalling or closing.
var networkActions = []lab.Action{lab.Pass, lab.Intercept, lab.Pass, lab.Reset, lab.Intercept, lab.Stall, lab.Pass, lab.Close}

// labDomains are targeted by the network's middleboxes; the untargeted ones
// are tested too, as a scan would.
var (
	labTargeted   = []string{"facebook.com", "www.google.com", "vk.com", "mail.ru", "youtube.com", "ok.ru"}
	labUntargeted = []string{"en.wikipedia.org", "github.com", "www.bbc.co.uk"}
)

func runLabNetwork(cmd *cobra.Command, dir string, n int) error {
	if n > lab.MaxHosts {
		return fmt.Errorf("lab: --network at most %d", lab.MaxHosts)
	}
	actions := make([]lab.Action, n)
	for i := range actions {
		actions[i] = networkActions[i%len(networkActions)]
	}
	net, err := lab.StartNetwork(lab.NetworkConfig{Hosts: actions, Domains: labTargeted})
	if err != nil {
		return err
	}
	defer net.Close()
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mitmguard-net-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var hosts, truth strings.Builder
	truth.WriteString("host\taction_for_targeted_domains\n")
	for _, h := range net.Hosts {
		fmt.Fprintln(&hosts, h.Addr)
		fmt.Fprintf(&truth, "%s\t%s\n", h.Addr, h.Action)
	}
	files := map[string]string{
		"hosts.txt":         hosts.String(),
		"domains.txt":       strings.Join(append(append([]string{}, labTargeted...), labUntargeted...), "\n") + "\n",
		"truth.tsv":         truth.String(),
		"public-root.pem":   string(lab.PEM(net.PublicRoot)),
		"national-root.pem": string(lab.PEM(net.NationalRoot)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "mitmguard lab network: %d hosts on 127.0.1.x, files in %s (truth.tsv says what each host does)\n\ntry:\n", n, dir)
	fmt.Fprintf(out, "  mitmguard probe --hosts %[1]s/hosts.txt --domains %[1]s/domains.txt --roots %[1]s/public-root.pem --db %[1]s/lab.db --timeout 3s\n", dir)
	fmt.Fprintf(out, "  mitmguard report --db %[1]s/lab.db --html %[1]s/report.html\nCtrl-C stops the lab.\n", dir)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
