package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/propose"
	"github.com/mitmguard/mitmguard/roots"
	"github.com/mitmguard/mitmguard/store"
)

// proposeFlags are report's --propose flags.
type proposeFlags struct {
	on                   bool
	minHosts, minDomains int
	output, roots        string
}

func addProposeFlags(cmd *cobra.Command) *proposeFlags {
	f := &proposeFlags{}
	fl := cmd.Flags()
	fl.BoolVar(&f.on, "propose", false, "propose blocklist entries: issuers forging many unrelated domains on many hosts, outside the public roots")
	fl.IntVar(&f.minHosts, "min-hosts", propose.DefaultMinHosts, "with --propose: the fewest hosts an issuer must forge on (at least 2)")
	fl.IntVar(&f.minDomains, "min-domains", propose.DefaultMinDomains, "with --propose: the fewest distinct domains an issuer must forge")
	fl.StringVar(&f.output, "output", "", "with --propose: write `DIR`/proposed.json (a blocklist file) and the evidence (JSON and PEM)")
	fl.StringVar(&f.roots, "roots", "", "with --propose: PEM `FILE` of roots to treat as public, in addition to the Mozilla set")
	return f
}

// runPropose is report --propose: exit 0 whether or not anything is proposed.
func runPropose(cmd *cobra.Command, st store.Store, db, campaign string, f *proposeFlags, asJSON bool) error {
	opts := propose.Options{MinHosts: f.minHosts, MinDomains: f.minDomains}
	if f.roots != "" {
		pemText, err := readRootsPEM(f.roots) // bounded, every block a certificate
		if err != nil {
			return err
		}
		var extra []*x509.Certificate
		for c, err := range chain.PEMCertificates([]byte(pemText)) {
			if err != nil || c.X509 == nil {
				return fmt.Errorf("%s: not a certificate", f.roots)
			}
			extra = append(extra, c.X509)
		}
		opts.Public = roots.Public(extra...)
	}
	res, err := propose.Find(cmd.Context(), st, campaign, opts)
	if errors.Is(err, store.ErrNoCampaign) {
		return fmt.Errorf("report: %s has no campaign %q", db, campaign)
	}
	if err != nil {
		return err
	}
	if f.output != "" {
		if err := propose.WriteBundle(f.output, res, time.Now()); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(out, res)
	}
	// Subjects, issuers, reasons naming them and the campaign come from
	// forged certificates and from a database: text() keeps their escape
	// sequences and line breaks from the terminal.
	if len(res.Proposals) == 0 {
		fmt.Fprintf(out, "campaign %s: nothing to propose (no issuer forges at least %d domains on at least %d hosts outside the public roots)\n", text(res.Campaign), max(f.minDomains, 1), max(f.minHosts, propose.DefaultMinHosts))
	}
	for _, p := range res.Proposals {
		what := fmt.Sprintf("issued by %q (root not sent)", p.Issuer)
		if p.RootSent {
			what = "a self-signed root"
		}
		fmt.Fprintf(out, "propose %s  %s\n  key spki_sha256 %s, %s, confidence %s\n  %d hosts, %d domains, %d records, seen %s to %s\n",
			propose.EntryID(p), text(p.Subject), p.SPKISHA256, what, p.Confidence, len(p.Hosts), len(p.Domains), p.Records,
			p.FirstSeen.Format(time.RFC3339), p.LastSeen.Format(time.RFC3339))
		for _, in := range p.Intermediates {
			fmt.Fprintf(out, "  under it, signed forged certificates: %s (spki_sha256 %s)\n", text(in.Subject), in.SPKISHA256)
		}
		for _, r := range p.Reasons {
			fmt.Fprintf(out, "  - %s\n", text(r))
		}
	}
	for _, r := range res.Rejected {
		fmt.Fprintf(out, "not proposed: %s (%s): %s\n", text(r.Subject), r.SPKISHA256[:16], text(r.Reason))
	}
	if res.Skipped > 0 {
		fmt.Fprintf(out, "%d suspected records left out: their host, or the campaign, sent more distinct certificates than report --propose reads\n", res.Skipped)
	}
	if f.output != "" {
		fmt.Fprintf(out, "wrote %s/proposed.json and the evidence; review, then: mitmguard blocklist merge CURRENT %s/proposed.json --output NEW\n", f.output, f.output)
	}
	return nil
}
