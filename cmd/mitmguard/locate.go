package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/verdict"
)

func newLocate() *cobra.Command {
	var f checkFlags
	var maxHops int
	var noICMP bool
	cmd := &cobra.Command{
		Use:   "locate [flags] NAME[:PORT]",
		Short: "Find the hop on the path where a connection is intercepted",
		Long: `locate connects to NAME normally, then sends the TLS ClientHello alone with
a low IP TTL (IPv6 hop limit), one more per attempt on a fresh connection.
Routers short of an interceptor drop the hello and answer time-exceeded; the
first TTL that draws a forged certificate is the interceptor's hop, and the
router that answered the TTL before it is the last clean one.

Each answer is judged as check judges it. Router addresses need a raw ICMP
socket (root or CAP_NET_RAW); without one the trace still runs and says so.

Exit status: 2 when interception was located, 0 when the path is clean (the
server itself answered), 1 on blocking, no answer, or failure.`,
		Example: `  sudo mitmguard locate facebook.com
  sudo mitmguard locate --connect 203.0.113.7 --max-hops 20 --json facebook.com
  sudo mitmguard lab --hops 5 --box-at 3 --dir /tmp/hops   # a path to try it on`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxHops < 1 || maxHops > locate.MaxTTL {
				return fmt.Errorf("locate: --max-hops %d: want 1..%d", maxHops, locate.MaxTTL)
			}
			if f.timeout <= 0 {
				return errors.New("locate: --timeout must be positive")
			}
			f.base = activeList(cmd)
			opts, err := classifierOptions(f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			r, err := locate.Run(ctx, args[0], locate.Options{
				Classifier: verdict.New(opts), Connect: f.connect, MaxHops: maxHops, Timeout: f.timeout, NoICMP: noICMP,
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				if err := writeJSON(out, r); err != nil {
					return err
				}
			} else {
				printLocate(out, r)
			}
			switch r.Finding {
			case locate.Located:
				return &exitError{exitIntercepted}
			case locate.Clean:
				return nil
			}
			return &exitError{exitFailed}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.connect, "connect", "", "dial this `IP[:PORT]` instead of resolving NAME, still sending NAME as SNI")
	fl.StringVar(&f.roots, "roots", "", "PEM `FILE` of roots to treat as public, in addition to the Mozilla set")
	fl.StringArrayVar(&f.blocklists, "blocklist", nil, "extra blocklist `FILE`: mitmguard JSON, or PEM certificates whose keys to block (repeatable)")
	fl.IntVar(&maxHops, "max-hops", locate.DefaultMaxHops, "the highest TTL to try")
	fl.DurationVar(&f.timeout, "timeout", locate.DefaultTimeout, "bound on each attempt: connect, ClientHello, answer")
	fl.BoolVar(&f.json, "json", false, "print one JSON object")
	fl.BoolVar(&f.offline, "offline", false, "do not fetch missing intermediates from AIA URLs")
	fl.BoolVar(&f.noSystemRoots, "no-system-roots", false, "do not consult this device's trust store to name a locally installed root")
	fl.BoolVar(&noICMP, "no-icmp", false, "do not open a raw ICMP socket (router addresses stay unknown)")
	return cmd
}

func printLocate(w io.Writer, r *locate.Result) {
	fmt.Fprintf(w, "%s", r.Target)
	if r.SNI != "" {
		fmt.Fprintf(w, " (SNI %s)", r.SNI)
	}
	fmt.Fprintf(w, " via %s\n  %s\n\n  ttl  %-22s router\n", r.Address, r.Message, "answer")
	for _, h := range r.Hops {
		router := "-"
		if h.Router != nil {
			router = *h.Router
		}
		fmt.Fprintf(w, "  %3d  %-22s %s\n", h.TTL, h.Outcome, router)
	}
	if r.Issuer != "" {
		fmt.Fprintf(w, "\n  issuer of the answer: %s\n", r.Issuer)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintln(w)
}
