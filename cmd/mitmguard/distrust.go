package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/distrust"
)

// distrustJSON is the --json form of distrust.
type distrustJSON struct {
	Root    string          `json:"root"`
	Mode    string          `json:"mode"` // plan, apply, undo
	Steps   []distrust.Step `json:"steps"`
	Done    []distrust.Step `json:"done,omitempty"`
	Summary map[string]int  `json:"summary_after,omitempty"`
	// Undo: the root folder the journal was made under when it differs
	// (the image moved), and the changes made since the apply that --force
	// overwrote.
	MovedFrom string              `json:"moved_from,omitempty"`
	Forced    []distrust.Conflict `json:"forced,omitempty"`
}

func newDistrust() *cobra.Command {
	var f storeFlags
	var apply, undo, includeNotPublic, force bool
	cmd := &cobra.Command{
		Use:   "distrust",
		Short: "Remove the trust of interception roots from every store, reversibly",
		Long: `distrust removes the trust of every known-interception root that audit finds
(and of the not-public ones with --include-not-public), store by store, the
way each store expects: Debian by removing or deselecting the file and running
update-ca-certificates; p11-kit by a blocklist file; NSS with certutil -M -t
p,p,p; Java with keytool -delete.

Without --apply it prints the plan and changes nothing. With --apply every
file a step may change is backed up into a journal under
/var/lib/mitmguard/distrust first, so --undo restores each one byte for byte,
with its owner, group and mode, even after an interrupted apply. A second
--apply is refused until --undo.

--undo first compares every path with how the apply left it: when a file was
changed or added since, it lists the conflicts and changes nothing, unless
--force. Under --root, the journal's paths are relative to DIR, every path
and link is resolved inside DIR as a chroot would, every backup is checked
against its SHA-256, and a journal that names a path out of DIR is refused.`,
		Example: `  mitmguard distrust                       # the plan, nothing changed
  sudo mitmguard distrust --apply
  sudo mitmguard distrust --undo
  mitmguard distrust --root /mnt/disk-image --apply --include-not-public`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if apply && undo {
				return errors.New("distrust: --apply and --undo exclude each other")
			}
			if force && !undo {
				return errors.New("distrust: --force goes with --undo")
			}
			if undo {
				res, err := distrust.Undo(f.root, distrust.UndoOptions{Force: force})
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(out, distrustJSON{Root: f.root, Mode: "undo", Steps: res.Steps, MovedFrom: res.Moved, Forced: res.Forced})
				}
				switch {
				case res.Moved != "" && len(res.Forced) == 0:
					fmt.Fprintf(out, "the journal was made under %s; every path was as the apply left it under %s\n", res.Moved, f.root)
				case res.Moved != "":
					fmt.Fprintf(out, "the journal was made under %s; undone under %s\n", res.Moved, f.root)
				}
				for _, c := range res.Forced {
					fmt.Fprintf(out, "overwritten (--force): %s was %s\n", c.Path, c.Now)
				}
				for _, s := range res.Steps {
					fmt.Fprintf(out, "restored %s %s\n", s.Store, s.StorePath)
				}
				fmt.Fprintf(out, "undo complete: %d step(s) restored byte for byte\n", len(res.Steps))
				return nil
			}
			rep, err := f.audit(cmd)
			if err != nil {
				return err
			}
			plan, err := distrust.MakePlan(rep, f.root, includeNotPublic)
			if err != nil {
				return err
			}
			if why := incomplete(rep); why != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard distrust: warning:", why)
			}
			if !apply {
				if f.json {
					return writeJSON(out, distrustJSON{Root: plan.Root, Mode: "plan", Steps: plan.Steps})
				}
				printPlan(out, plan)
				fmt.Fprintln(out, "\ndry run: nothing was changed; run again with --apply to do it")
				return nil
			}
			done, err := distrust.Apply(cmd.Context(), plan, distrust.ApplyOptions{})
			if err != nil {
				return err
			}
			after, err := f.audit(cmd)
			if err != nil {
				return err
			}
			if f.json {
				if err := writeJSON(out, distrustJSON{Root: plan.Root, Mode: "apply", Steps: plan.Steps, Done: done, Summary: summary(after)}); err != nil {
					return err
				}
			} else {
				for _, s := range done {
					fmt.Fprintf(out, "done: %s %s: %s\n", s.Store, s.StorePath, s.Description)
				}
				for _, s := range plan.Steps {
					if s.Manual {
						fmt.Fprintf(out, "not done: %s %s: %s\n", s.Store, s.StorePath, s.Reason)
					}
				}
				n := summary(after)["known_interception_trusted"]
				fmt.Fprintf(out, "after: %d known-interception root(s) still trusted; undo with: mitmguard distrust --undo", n)
				if f.root != "/" {
					fmt.Fprintf(out, " --root %s", f.root)
				}
				fmt.Fprintln(out)
			}
			if after.TrustsKnownInterception() {
				return &exitError{exitIntercepted}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&apply, "apply", false, "carry out the plan (backing up every file first)")
	cmd.Flags().BoolVar(&undo, "undo", false, "restore every file the last --apply changed")
	cmd.Flags().BoolVar(&force, "force", false, "with --undo: restore even the paths changed since the apply (listed)")
	cmd.Flags().BoolVar(&includeNotPublic, "include-not-public", false, "also distrust trusted roots outside the public root program")
	return cmd
}

func printPlan(w io.Writer, p *distrust.Plan) {
	if len(p.Steps) == 0 {
		fmt.Fprintf(w, "nothing to distrust under %s\n", p.Root)
		return
	}
	fmt.Fprintf(w, "distrust plan for %s:\n", p.Root)
	for i, s := range p.Steps {
		fmt.Fprintf(w, "\n%d. %s %s (%s)\n   %s\n", i+1, s.Store, s.StorePath, s.Owner, s.Description)
		for _, c := range s.Certs {
			fmt.Fprintf(w, "   root: %s\n", c)
		}
		for _, c := range s.Commands {
			fmt.Fprintf(w, "   runs: %s\n", strings.Join(c, " "))
		}
		if len(s.Changes) > 0 {
			fmt.Fprintf(w, "   backs up: %s\n", strings.Join(s.Changes, ", "))
		}
		if s.Manual {
			fmt.Fprintf(w, "   CANNOT BE APPLIED HERE: %s\n", s.Reason)
		}
	}
}
