package main

import (
	"context"
	"crypto/x509"
	"errors"
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
	var drillF *drillFlags
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
  mitmguard lab --network 24 --dir /tmp/net   # hosts for a mitmguard probe campaign
  mitmguard lab --drill        # the closed loop: campaign, proposal, publication, update, refusal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if drillF.on {
				return runDrill(cmd.Context(), cmd.OutOrStdout(), drillF.json)
			}
			if on, err := hops.requested(cmd); err != nil || on {
				if err != nil {
					return err
				}
				return runLabHops(cmd, dir, hops)
			}
			if cmd.Flags().Changed("network") {
				if network < 1 || network > lab.MaxHosts {
					return fmt.Errorf("lab: --network wants a number of hosts from 1 to %d, not %d", lab.MaxHosts, network)
				}
				if demo {
					return errors.New("lab: --demo runs the one-host lab; leave out --network")
				}
			}
			// Ctrl-C, SIGTERM and a closed terminal (SIGHUP) end the lab
			// through the context from here on, so the deferred removal of a
			// temporary folder always runs.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			temporary := dir == ""
			if temporary {
				tmp, err := os.MkdirTemp("", "mitmguard-lab-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			} else if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if network > 0 {
				return runLabNetwork(ctx, out, dir, temporary, network)
			}
			l, err := lab.Start(lab.Config{})
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.WriteFiles(dir); err != nil {
				return err
			}
			if demo {
				return runDemo(ctx, out, l)
			}
			describeLab(out, l, dir, temporary)
			<-ctx.Done()
			fmt.Fprintln(out, "lab stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write the lab's root certificates into `DIR` and keep them (default: a new temporary folder, removed when the lab stops)")
	cmd.Flags().BoolVar(&demo, "demo", false, "check some names through the middlebox, print the verdicts, and exit")
	hops = addLabHops(cmd)
	drillF = addDrillFlags(cmd)
	cmd.Flags().IntVar(&network, "network", 0, "instead, run `N` hosts on 127.0.1.x, clean or interfering, for mitmguard probe (writes hosts.txt, domains.txt, truth.tsv)")
	return cmd
}

func describeLab(w io.Writer, l *lab.Lab, dir string, temporary bool) {
	fmt.Fprintf(w, "mitmguard lab on loopback\n  origin     %s\n  middlebox  %s\n  roots in   %s%s\n\nmiddlebox targets:\n",
		l.OriginAddr, l.MiddleboxAddr, dir, removedNote(temporary))
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

// demoTimeout bounds each of the demo's checks; the stalled name takes all
// of it. waitNotice is how long a check may run before the demo says what it
// is waiting for, so that the stall is never a silent pause.
const (
	demoTimeout = 2 * time.Second
	waitNotice  = 500 * time.Millisecond
)

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
		opts := check.Options{
			Classifier: verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{l.PublicRoot}, Blocklist: p.list}),
			Connect:    l.MiddleboxAddr, Timeout: demoTimeout,
		}
		for _, n := range names {
			r := demoCheck(ctx, w, n, opts)
			printReport(w, r) // an ok report names the certificate's name that matched
			got = append(got, r.Outcome)
		}
	}
	if ctx.Err() != nil {
		return errors.New("lab demo: interrupted")
	}
	want := []outcome.Outcome{outcome.OK, outcome.Suspected, outcome.BlockedReset, outcome.BlockedTimeout,
		outcome.OK, outcome.Known(knownID), outcome.BlockedReset, outcome.BlockedTimeout}
	if !slices.Equal(got, want) {
		return fmt.Errorf("lab demo: verdicts %v, expected %v", got, want)
	}
	fmt.Fprintln(w, "demo complete: every verdict is the one the lab's truth calls for")
	return nil
}

// demoCheck checks name and, if no verdict has come after waitNotice, says
// what it is waiting for before it waits on.
func demoCheck(ctx context.Context, w io.Writer, name string, opts check.Options) *check.Report {
	done := make(chan *check.Report, 1)
	go func() { done <- check.Run(ctx, name, opts) }()
	select {
	case r := <-done:
		return r
	case <-time.After(waitNotice):
		fmt.Fprintf(w, "%s: the TLS handshake has no answer yet; waiting up to %s before calling it blocked.timeout (a stalling middlebox looks like this)\n",
			name, opts.Timeout)
		return <-done
	}
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

// removedNote tells the user that the lab's folder goes when the lab does.
func removedNote(temporary bool) string {
	if temporary {
		return " (removed when the lab stops; --dir keeps it)"
	}
	return ""
}

// runLabNetwork runs n hosts until ctx ends. When dir is the lab's own
// temporary folder, which goes with the lab, the printed commands keep the
// campaign's results in the current folder instead.
func runLabNetwork(ctx context.Context, out io.Writer, dir string, temporary bool, n int) error {
	actions := make([]lab.Action, n)
	for i := range actions {
		actions[i] = networkActions[i%len(networkActions)]
	}
	net, err := lab.StartNetwork(lab.NetworkConfig{Hosts: actions, Domains: labTargeted})
	if err != nil {
		return err
	}
	defer net.Close()
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
	results := dir
	if temporary {
		results = "."
	}
	fmt.Fprintf(out, "mitmguard lab network: %d hosts on 127.0.1.x, files in %s%s (truth.tsv says what each host does)\n\ntry:\n", n, dir, removedNote(temporary))
	fmt.Fprintf(out, "  mitmguard probe --hosts %[1]s/hosts.txt --domains %[1]s/domains.txt --roots %[1]s/public-root.pem --db %[2]s --timeout 3s\n", dir, filepath.Join(results, "lab.db"))
	fmt.Fprintf(out, "  mitmguard report --db %s --html %s\nCtrl-C stops the lab.\n", filepath.Join(results, "lab.db"), filepath.Join(results, "report.html"))
	<-ctx.Done()
	fmt.Fprintln(out, "lab stopped")
	return nil
}
