package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/distrust"
	"github.com/mitmguard/mitmguard/truststore"
	"github.com/mitmguard/mitmguard/winstore"
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
	// Windows is the plan (or, applied, what was done) for the Windows
	// certificate stores of a mounted volume or of this Windows.
	Windows []windowsStepJSON `json:"windows_steps,omitempty"`
	// Kept: the certificates a Windows undo left distrusted, and why.
	Kept []distrust.Kept `json:"kept_distrusted,omitempty"`
}

// windowsStepJSON is one step on a Windows certificate store.
type windowsStepJSON struct {
	Action     winstore.Action `json:"action"` // add, remove; none for a managed root
	Store      string          `json:"store"`  // on the Cert: drive (a managed root: its registry key)
	User       string          `json:"user,omitempty"`
	Hive       string          `json:"hive,omitempty"`
	Key        string          `json:"key,omitempty"`
	Subject    string          `json:"subject"`
	Thumbprint string          `json:"thumbprint"`
	SHA256     string          `json:"sha256"`
	// Managed: pushed by Group Policy or enrolment; not changed here.
	Managed bool `json:"managed,omitempty"`
}

func windowsSteps(p *winstore.Plan, steps []winstore.Step) []windowsStepJSON {
	out := []windowsStepJSON{}
	for _, s := range steps {
		out = append(out, windowsStepJSON{Action: s.Action, Store: winstore.CertDrive(s.Location, s.Store), User: s.User, Hive: s.Hive, Key: s.Key,
			Subject: s.Cert.Subject(), Thumbprint: s.Thumbprint(), SHA256: s.Cert.SHA256.String()})
	}
	if p != nil {
		for _, m := range p.Managed {
			out = append(out, windowsStepJSON{Action: "none", Store: truststore.WindowsStorePath(m.Store), User: m.Store.User, Hive: m.Store.Hive, Key: m.Store.Key,
				Subject: m.Entry.Cert.Subject(), Thumbprint: m.Entry.Thumbprint, SHA256: m.Entry.Cert.SHA256.String(), Managed: true})
		}
	}
	return out
}

func newDistrust() *cobra.Command {
	var f storeFlags
	var apply, undo, includeNotPublic, force bool
	var script string
	cmd := &cobra.Command{
		Use:   "distrust",
		Short: "Remove the trust of interception roots from every store, reversibly",
		Long: `distrust removes the trust of every known-interception root that audit finds
(and of the not-public ones with --include-not-public), store by store, the
way each store expects: Debian by removing or deselecting the file and running
update-ca-certificates; p11-kit by a blocklist file; NSS with certutil -M -t
p,p,p; Java with keytool -delete; Windows as Microsoft's tooling does, by
adding the root to the machine's Disallowed store and removing it from the
Root stores that hold it.

On a mounted Windows volume (--root) the plan says which roots move, per hive
and user; the hives are not edited offline (--apply is refused):
--script powershell prints the PowerShell an administrator runs on that
Windows. On Windows itself --apply changes the stores through CryptoAPI,
journaled in %ProgramData%\mitmguard\distrust (Administrators and SYSTEM
only) so that --undo puts every removed root back. That undo refuses a
journal not owned by Administrators or SYSTEM, and never trusts again a root
on the blocklist in force, nor takes out of Disallowed a root a Root store
still holds unless it puts it back where the apply removed it: it prints
each one as "kept distrusted" with the reason.

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
  mitmguard distrust --root /mnt/disk-image --apply --include-not-public
  mitmguard distrust --root /mnt/windows --script powershell > distrust.ps1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if apply && undo {
				return errors.New("distrust: --apply and --undo exclude each other")
			}
			if force && !undo {
				return errors.New("distrust: --force goes with --undo")
			}
			if script != "" && script != "powershell" {
				return fmt.Errorf("distrust: --script %q: the only script is powershell", script)
			}
			if script != "" && (apply || undo) {
				return errors.New("distrust: --script prints a script and changes nothing: it excludes --apply and --undo")
			}
			if undo {
				res, err := distrust.Undo(f.root, distrust.UndoOptions{Force: force, List: activeList(cmd)})
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(out, distrustJSON{Root: f.root, Mode: "undo", Steps: res.Steps, MovedFrom: res.Moved, Forced: res.Forced, Kept: res.Kept})
				}
				printUndo(out, f.root, res)
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
			win := rep.WindowsStores()
			live := distrust.IsLiveWindows(f.root)
			var wplan *winstore.Plan
			if win != nil {
				wplan = distrust.PlanWindows(win, rep, includeNotPublic)
			}
			if why := incomplete(rep); why != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard distrust: warning:", why)
			}
			if script != "" {
				if wplan == nil {
					return fmt.Errorf("distrust: --script powershell: no Windows certificate stores under %s (a mounted Windows volume, or Windows itself)", f.root)
				}
				fmt.Fprint(out, winstore.PowerShell(wplan))
				return nil
			}
			if apply && wplan != nil && !live {
				return distrust.ErrVolumeApply
			}
			if !apply {
				if f.json {
					j := distrustJSON{Root: plan.Root, Mode: "plan", Steps: plan.Steps}
					if wplan != nil {
						j.Windows = windowsSteps(wplan, wplan.Steps)
					}
					return writeJSON(out, j)
				}
				if wplan == nil || len(plan.Steps) > 0 {
					printPlan(out, plan)
				}
				if wplan != nil {
					printWindowsPlan(out, f.root, wplan, live)
				}
				if wplan != nil && !live {
					fmt.Fprintln(out, "\ndry run: nothing was changed; --script powershell prints the script that does it on that Windows")
					return nil
				}
				fmt.Fprintln(out, "\ndry run: nothing was changed; run again with --apply to do it")
				return nil
			}
			var done []distrust.Step
			var wdone []winstore.Step
			if live {
				wdone, err = distrust.ApplyWindows(cmd.Context(), wplan)
			} else {
				done, err = distrust.Apply(cmd.Context(), plan, distrust.ApplyOptions{})
			}
			if err != nil {
				return err
			}
			after, err := f.audit(cmd)
			if err != nil {
				return err
			}
			if f.json {
				j := distrustJSON{Root: plan.Root, Mode: "apply", Steps: plan.Steps, Done: done, Summary: summary(after)}
				if live {
					j.Windows = windowsSteps(nil, wdone)
				}
				if err := writeJSON(out, j); err != nil {
					return err
				}
			} else {
				for _, s := range done {
					fmt.Fprintf(out, "done: %s %s: %s\n", s.Store, s.StorePath, s.Description)
				}
				for _, s := range wdone {
					fmt.Fprintf(out, "done: %s %s: %s (thumbprint %s)\n", s.Action, winstore.CertDrive(s.Location, s.Store), text(s.Cert.Subject()), s.Thumbprint())
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
	cmd.Flags().StringVar(&script, "script", "", "print the distrust of the Windows stores as a script for an administrator to run (`powershell`); changes nothing")
	return cmd
}

// printUndo says what an undo did, in the words true of its journal: files
// restored byte for byte, or the Windows certificate stores changed back
// through CryptoAPI, some roots perhaps kept distrusted.
func printUndo(out io.Writer, root string, res *distrust.UndoResult) {
	switch {
	case res.Moved != "" && len(res.Forced) == 0:
		fmt.Fprintf(out, "the journal was made under %s; every path was as the apply left it under %s\n", res.Moved, root)
	case res.Moved != "":
		fmt.Fprintf(out, "the journal was made under %s; undone under %s\n", res.Moved, root)
	}
	for _, c := range res.Forced {
		fmt.Fprintf(out, "overwritten (--force): %s was %s\n", c.Path, c.Now)
	}
	for _, s := range res.Steps {
		if res.Windows {
			fmt.Fprintf(out, "undone: %s (%s)\n", s.Description, s.StorePath)
		} else {
			fmt.Fprintf(out, "restored %s %s\n", s.Store, s.StorePath)
		}
	}
	for _, k := range res.Kept {
		verb := "put back into"
		if k.Action == winstore.Remove {
			verb = "taken out of"
		}
		fmt.Fprintf(out, "kept distrusted: %s (%s) not %s %s: %s\n", text(k.Subject), k.Thumbprint, verb, winstore.CertDrive(k.Location, k.Store), k.Reason)
	}
	switch {
	case !res.Windows:
		fmt.Fprintf(out, "undo complete: %d step(s) restored byte for byte\n", len(res.Steps))
	case len(res.Kept) > 0:
		fmt.Fprintf(out, "undo complete: every root the apply moved is back where it was, but the %d kept distrusted above\n", len(res.Kept))
	default:
		fmt.Fprintln(out, "undo complete: every root the apply moved is back where it was")
	}
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

// printWindowsPlan prints the Windows steps: which roots move from Root to
// Disallowed, and from whose store and hive.
func printWindowsPlan(w io.Writer, root string, p *winstore.Plan, live bool) {
	where := "the Windows volume " + root
	if live {
		where = "this Windows"
	}
	if len(p.Steps) == 0 && len(p.Managed) == 0 {
		fmt.Fprintf(w, "nothing to distrust in the certificate stores of %s\n", where)
		return
	}
	fmt.Fprintf(w, "distrust plan for the certificate stores of %s:\n\n", where)
	for i, s := range p.Steps {
		verb := "add to"
		if s.Action == winstore.Remove {
			verb = "remove from"
		}
		fmt.Fprintf(w, "%d. %s %s", i+1, verb, winstore.CertDrive(s.Location, s.Store))
		if s.User != "" {
			fmt.Fprintf(w, " of user %s", text(s.User))
		}
		fmt.Fprintf(w, ": %s (thumbprint %s)\n", text(s.Cert.Subject()), s.Thumbprint())
		if s.Hive != "" {
			fmt.Fprintf(w, "   found in %s of /%s\n", text(truststore.WindowsStorePath(&winstore.Store{User: s.User, Hive: s.Hive, Key: s.Key})), text(s.Hive))
		}
	}
	for _, m := range p.Managed {
		fmt.Fprintf(w, "not changed: %s (thumbprint %s) is pushed by the domain into %s (%s); remove it from the Group Policy object or enrolment that deploys it (Disallowed blocks it meanwhile)\n",
			text(m.Entry.Cert.Subject()), m.Entry.Thumbprint, text(truststore.WindowsStorePath(m.Store)), m.Store.Location)
	}
	if !live {
		fmt.Fprintf(w, "\nCANNOT BE APPLIED HERE: the hives of a mounted volume are not edited; run mitmguard distrust --root %s --script powershell and run the script on that Windows as administrator (and once as each user named above)\n", root)
	}
}
