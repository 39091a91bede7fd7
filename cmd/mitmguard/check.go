package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/check"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/verdict"
)

type checkFlags struct {
	connect, chainFile, name, roots string
	blocklists                      []string
	at                              string
	timeout                         time.Duration
	json, offline, noSystemRoots    bool
	base                            *blocklist.List // the active list (installed over embedded)
}

func newCheck() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check [flags] NAME[:PORT]|https://URL...",
		Short: "Tell whether connections to sites are intercepted, and by whom",
		Long: `check connects to each NAME (port 443 unless given), records the whole
certificate chain the server presents, and classifies it:

  ok                     verifies to a public root (the Mozilla set)
  mitm.known:<id>        runs through a key on the blocklist (exit 2)
  mitm.suspected         valid for the name but not chaining to a public root (exit 2)
  tls.*                  broken, with no sign of interception (exit 1)
  blocked.*              reset, stalled or closed after the ClientHello (exit 1)
  error.*                the check itself failed (exit 1)

Exit status: 2 when any target is intercepted, else 1 when any target failed
or the input was bad, else 0.`,
		Example: `  mitmguard check facebook.com www.google.com:443
  mitmguard check --connect 203.0.113.7 facebook.com       # send SNI facebook.com to that host
  mitmguard check --chain chain.pem --name facebook.com    # offline, a PEM chain, leaf first
  mitmguard check --json --blocklist extra.pem vk.com
  mitmguard lab                                            # a middlebox on loopback to try it on`,
		RunE: func(cmd *cobra.Command, args []string) error { return runCheck(cmd, f, args) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.connect, "connect", "", "dial this `IP[:PORT]` instead of resolving NAME, still sending NAME as SNI")
	fl.StringVar(&f.chainFile, "chain", "", "classify the PEM chain in `FILE` (leaf first) offline instead of connecting; needs --name")
	fl.StringVar(&f.name, "name", "", "the server `NAME` the --chain was presented for")
	fl.StringVar(&f.roots, "roots", "", "PEM `FILE` of roots to treat as public, in addition to the Mozilla set")
	fl.StringArrayVar(&f.blocklists, "blocklist", nil, "extra blocklist `FILE`: mitmguard JSON, or PEM certificates whose keys to block (repeatable)")
	fl.StringVar(&f.at, "at", "", "verify as of this `RFC3339` time instead of now")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on the whole check of one target: resolving, connecting, the TLS handshake and any AIA download")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per target")
	fl.BoolVar(&f.offline, "offline", false, "do not fetch missing intermediates from AIA URLs (online, only http(s) on port 80/443 of a public address is followed)")
	fl.BoolVar(&f.noSystemRoots, "no-system-roots", false, "do not consult this device's trust store to name a locally installed root")
	return cmd
}

func runCheck(cmd *cobra.Command, f checkFlags, args []string) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	if f.chainFile != "" && len(args) > 0 {
		return errors.New("check: give either --chain FILE or targets, not both")
	}
	if f.chainFile == "" && len(args) == 0 {
		return errors.New("check: no target given (try: mitmguard check facebook.com)")
	}
	if f.chainFile != "" && f.name == "" {
		return errors.New("check: --chain needs --name, the server name the chain was presented for")
	}
	if f.timeout <= 0 {
		return errors.New("check: --timeout must be positive")
	}
	if cmd.Flags().Changed("connect") {
		if _, err := check.ParseConnect(f.connect, "443"); err != nil {
			return err
		}
	}
	f.base = activeList(cmd)
	opts, err := classifierOptions(f)
	if err != nil {
		return err
	}
	cl := verdict.New(opts)

	var reports []*check.Report
	if f.chainFile != "" {
		c, err := readChainFile(f.chainFile)
		if err != nil {
			return err
		}
		if err := c.CheckOrder(); err != nil {
			return fmt.Errorf("%s: %w", f.chainFile, err)
		}
		reports = append(reports, check.FromChain(ctx, c, f.name, cl))
	} else {
		for _, t := range args {
			reports = append(reports, check.Run(ctx, t, check.Options{Classifier: cl, Connect: f.connect, Timeout: f.timeout, FetchIssuers: !f.offline}))
		}
	}
	out := cmd.OutOrStdout()
	code := exitOK
	for _, r := range reports {
		if f.json {
			if err := writeJSON(out, r); err != nil {
				return err
			}
		} else {
			printReport(out, r)
		}
		switch {
		case r.Outcome.Intercepted():
			code = exitIntercepted
		case r.Outcome != outcome.OK && code == exitOK:
			code = exitFailed
		}
	}
	if code != exitOK {
		return &exitError{code}
	}
	return nil
}

// classifierOptions turns the flags into verdict options, reading every file
// before any network work so bad input fails fast.
func classifierOptions(f checkFlags) (verdict.Options, error) {
	var opts verdict.Options
	if f.roots != "" {
		// A file of roots, not a chain: any number of certificates.
		data, err := readBounded(f.roots, maxRootsFile)
		if err != nil {
			return opts, err
		}
		if len(data) > maxRootsFile {
			return opts, fmt.Errorf("%s: larger than %d bytes", f.roots, maxRootsFile)
		}
		for cert, err := range chain.PEMCertificates(data) {
			if err != nil {
				return opts, fmt.Errorf("%s: %w", f.roots, err)
			}
			if cert.X509 == nil {
				return opts, fmt.Errorf("%s: %s: %v", f.roots, cert.Subject(), cert.ParseErr)
			}
			opts.ExtraRoots = append(opts.ExtraRoots, cert.X509)
		}
		if len(opts.ExtraRoots) == 0 {
			return opts, fmt.Errorf("%s: %w", f.roots, chain.ErrNoCertificates)
		}
	}
	lists := []*blocklist.List{f.base}
	for _, name := range f.blocklists {
		data, err := os.ReadFile(name)
		if err != nil {
			return opts, err
		}
		l, err := blocklist.Load(data, name)
		if err != nil {
			return opts, err
		}
		lists = append(lists, l)
	}
	opts.Blocklist = blocklist.Merge(lists...)
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return opts, fmt.Errorf("--at: want an RFC3339 time such as 2019-07-20T12:00:00Z: %v", err)
		}
		opts.Time = t
	}
	if !f.noSystemRoots {
		if pool, err := x509.SystemCertPool(); err == nil {
			opts.LocalRoots = pool
		}
	}
	return opts, nil
}

// maxRootsFile bounds a --roots file (a system bundle is about 250 KB).
const maxRootsFile = 16 << 20

func readChainFile(name string) (chain.Chain, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	c, err := chain.ReadPEM(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// label is the one word a person reads first.
func label(o outcome.Outcome) string {
	switch {
	case o == outcome.OK:
		return "OK"
	case o.Base() == "mitm.known":
		return "INTERCEPTED"
	case o == outcome.Suspected:
		return "INTERCEPTION SUSPECTED"
	case o.Blocked():
		return "BLOCKED"
	case o.Stage() == "tls":
		return "BROKEN"
	}
	return "ERROR"
}

func printReport(w io.Writer, r *check.Report) {
	fmt.Fprintf(w, "%s", r.Target)
	if r.Address != "" {
		fmt.Fprintf(w, " (SNI %s via %s)", r.SNI, r.Address)
	}
	fmt.Fprintf(w, "\n  %s  %s\n  %s\n", label(r.Outcome), r.Outcome, r.Message)
	if r.MatchedName != "" {
		fmt.Fprintf(w, "  matched name: %s (in the certificate's subject alternative names)\n", r.MatchedName)
	}
	if r.Entry != nil {
		fmt.Fprintf(w, "  blocklist entry: %s, %s", r.Entry.ID, r.Entry.Name)
		if r.Entry.Country != "" {
			fmt.Fprintf(w, " (%s, %s, first seen %s)", r.Entry.Country, r.Entry.Kind, r.Entry.FirstSeen)
		}
		fmt.Fprintln(w)
	}
	if len(r.Chain) > 0 {
		fmt.Fprintln(w, "  chain as presented:")
		for i, c := range r.Chain {
			fmt.Fprintf(w, "    %d  %s\n       issuer %s, key %s…", i, c.Subject, c.Issuer, c.SPKISHA256[:16])
			if !c.NotAfter.IsZero() {
				fmt.Fprintf(w, ", valid %s..%s", c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly))
			}
			fmt.Fprintln(w)
		}
	}
	if r.Outcome.Intercepted() {
		fmt.Fprintln(w, "  what you can do:")
		for _, a := range blocklist.Advice() {
			fmt.Fprintf(w, "    - %s\n", a)
		}
	}
	fmt.Fprintln(w)
}
