package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/internal/termsafe"
	"github.com/mitmguard/mitmguard/truststore"
)

type storeFlags struct {
	root   string
	stores []string
	json   bool
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.root, "root", "/", "read the system mounted or unpacked under `DIR` (every store path is taken under it)")
	cmd.Flags().StringArrayVar(&f.stores, "store", nil, "also read this PEM or DER `PATH` (file or folder; repeatable)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
}

// audit reads and judges the stores with the active list (warning, as
// check does, when the installed list is damaged).
func (f *storeFlags) audit(cmd *cobra.Command) (*truststore.Report, error) {
	start := time.Now()
	stores, err := truststore.Read(truststore.Options{Root: f.root, Extra: f.stores})
	if err != nil {
		return nil, err
	}
	rep := truststore.Audit(stores, activeList(cmd))
	rep.Root, rep.Elapsed = f.root, time.Since(start)
	return rep, nil
}

// incomplete says why an audit cannot be called clean: no store was found,
// or a file could not be read. Empty when the audit is complete.
func incomplete(rep *truststore.Report) string {
	if len(rep.Stores) == 0 {
		return fmt.Sprintf("no trust store found under %s: is it the root of a Linux system, an Android image or a Windows volume? nothing was audited", rep.Root)
	}
	n := 0
	for _, s := range rep.Stores {
		n += len(s.Problems)
	}
	if n > 0 {
		return fmt.Sprintf("PARTIAL AUDIT: %d file(s) or folder(s) could not be read (listed as problems); they may hold an interception root (run as root, or repair the stores)", n)
	}
	return ""
}

// auditJSON is the --json form of an audit.
type auditJSON struct {
	Root      string                    `json:"root"`
	ElapsedMS float64                   `json:"elapsed_ms"`
	Stores    []truststore.StoreSummary `json:"stores"`
	Findings  []truststore.Finding      `json:"findings"`
	Summary   map[string]int            `json:"summary"`
	// Complete is false when no store was found or a file could not be
	// read; Incomplete says why.
	Complete   bool   `json:"complete"`
	Incomplete string `json:"incomplete,omitempty"`
}

func newAudit() *cobra.Command {
	var f storeFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Find interception roots trusted by this device's trust stores",
		Long: `audit reads every trust store it finds (the Debian bundle and hashed folder,
the administrator's and the packaged certificates, p11-kit anchors and
blocklists, the NSS databases of Chrome and of every Firefox profile, Java
keystores; in an Android image or pulled folder, the system roots and each
user's added and removed ones; on a mounted Windows volume, the registry
stores of the SOFTWARE hive (ROOT, AuthRoot, CA, Disallowed, the Group Policy
and enterprise Root) and of each Users/*/NTUSER.DAT, a certificate in a
Disallowed store counting as distrusted; on Windows itself, the machine's and
the current user's stores through CryptoAPI) and flags each trusted root:

  known-interception   its key is on the blocklist (exit 2)
  not-public           trusted as a root but not in the Mozilla set: a company
                       proxy, an antivirus, a private CA, or an interception root
                       not yet listed (reported, not failed)
  public               a root of the Mozilla program (shown with --all)

Each finding says where it is and what to do; mitmguard distrust does it.
An audit that found no store, or could not read a file, is never reported as
clean: it exits 1 and says what it could not read (exit 2 still wins).
Under --root every path, and every link, is resolved inside DIR as a chroot
would: nothing outside DIR is read. On a Windows volume a link out of DIR is
refused (a problem of the audit), and hives are bounded and checked.`,
		Example: `  mitmguard audit
  mitmguard audit --all --json
  mitmguard audit --root /mnt/disk-image
  mitmguard audit --store ~/Downloads/certificate.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := f.audit(cmd)
			if err != nil {
				return err
			}
			why := incomplete(rep)
			out := cmd.OutOrStdout()
			if f.json {
				findings := rep.Findings
				if !all {
					findings = rep.Flagged()
				}
				if findings == nil {
					findings = []truststore.Finding{}
				}
				if err := writeJSON(out, auditJSON{Root: rep.Root, ElapsedMS: ms(rep.Elapsed), Stores: rep.Stores, Findings: findings, Summary: summary(rep),
					Complete: why == "", Incomplete: why}); err != nil {
					return err
				}
			} else {
				printAudit(out, rep, all, why)
			}
			switch {
			case rep.TrustsKnownInterception():
				return &exitError{exitIntercepted}
			case why != "":
				fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard audit:", why)
				return &exitError{exitFailed}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "show every root, public ones too")
	return cmd
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// summary counts distinct trusted certificates per status (one root is
// usually found in several stores).
func summary(rep *truststore.Report) map[string]int {
	s := map[string]int{"known_interception_trusted": 0, "not_public_trusted": 0, "public_trusted": 0, "stores": len(rep.Stores)}
	key := map[truststore.Status]string{truststore.KnownInterception: "known_interception_trusted", truststore.NotPublic: "not_public_trusted", truststore.Public: "public_trusted"}
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Trust != truststore.Trusted || seen[string(f.Status)+f.SHA256] {
			continue
		}
		seen[string(f.Status)+f.SHA256] = true
		s[key[f.Status]]++
	}
	return s
}

func printAudit(w io.Writer, rep *truststore.Report, all bool, incomplete string) {
	fmt.Fprintf(w, "mitmguard audit of %s (%d stores, %.0f ms)\n\nstores:\n", rep.Root, len(rep.Stores), ms(rep.Elapsed))
	for _, s := range rep.Stores {
		fmt.Fprintf(w, "  %-18s %s  (%s): %d certificates, %d trusted\n", s.Kind, text(s.Path), text(s.Owner), s.Certificates, s.Trusted)
		for _, p := range s.Problems {
			fmt.Fprintf(w, "      problem: %s\n", text(p))
		}
	}
	findings := rep.Flagged()
	if all {
		findings = rep.Findings
	}
	switch {
	case len(findings) == 0 && incomplete != "":
		fmt.Fprintln(w, "\nno flagged root in what could be read; the audit is not complete")
	case len(findings) == 0:
		fmt.Fprintln(w, "\nno trusted root is known to intercept or outside the public root program")
	}
	// One certificate is usually in several stores (the source file, the
	// bundle, the hashed folder, Java): print it once, with every place.
	var order []string
	byCert := map[string][]truststore.Finding{}
	for _, f := range findings {
		if _, ok := byCert[f.SHA256]; !ok {
			order = append(order, f.SHA256)
		}
		byCert[f.SHA256] = append(byCert[f.SHA256], f)
	}
	tags := map[truststore.Status]string{truststore.KnownInterception: "KNOWN INTERCEPTION", truststore.NotPublic: "NOT PUBLIC", truststore.Public: "public"}
	for _, sum := range order {
		fs := byCert[sum]
		fmt.Fprintf(w, "\n%s  %s", tags[fs[0].Status], text(fs[0].Subject))
		if fs[0].EntryID != "" {
			fmt.Fprintf(w, "  [%s]", fs[0].EntryID)
		}
		fmt.Fprintln(w)
		if fs[0].Advice != "" && fs[0].Trust == truststore.Trusted {
			fmt.Fprintf(w, "    %s\n", fs[0].Advice)
		}
		for _, f := range fs {
			switch {
			case truststore.IsWindows(f.Store):
				// A registry store: its key, whose it is, the hive.
				fmt.Fprintf(w, "    - %s %s (%s), thumbprint %s", f.Store, text(f.StorePath), text(f.Owner), f.Label)
				if f.File != "" {
					fmt.Fprintf(w, ", in %s", text(f.File))
				}
			default:
				fmt.Fprintf(w, "    - %s %s", f.Store, text(f.File))
				if f.Label != "" {
					fmt.Fprintf(w, " as %q", f.Label)
				}
			}
			if f.Trust != truststore.Trusted {
				fmt.Fprintf(w, " (%s)", f.Trust)
			}
			fmt.Fprintln(w)
			if f.Action != "" {
				fmt.Fprintf(w, "      %s\n", text(f.Action))
			}
		}
	}
	s := summary(rep)
	fmt.Fprintf(w, "\ntrusted: %d known-interception, %d not-public, %d public\n", s["known_interception_trusted"], s["not_public_trusted"], s["public_trusted"])
	if incomplete != "" {
		fmt.Fprintln(w, incomplete)
	}
}

// text makes a name read from the audited system (a profile folder, a
// path, a certificate's subject) safe to print: control characters (a
// terminal escape, a line break that would forge a line of the report)
// and bidirectional overrides become '?'.
func text(s string) string { return termsafe.String(s) }
