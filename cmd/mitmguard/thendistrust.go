package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/distrust"
)

// thenDistrust does, after an update run, what 'mitmguard distrust --apply
// --root root' does with the list now in force: a root listed by the update
// loses the trust of the device's stores too, not only of mitmguard's own
// checks. It runs the distrust command itself, so that it does exactly what
// that command does.
//
// A plan with nothing to apply is skipped: applying it would leave a journal
// that refuses every later apply until --undo, so the next newly listed root
// could not be distrusted.
func thenDistrust(cmd *cobra.Command, root string, asJSON bool) error {
	rep, err := (&storeFlags{root: root}).audit(cmd)
	if err != nil {
		return fmt.Errorf("then-distrust: %w", err)
	}
	plan, err := distrust.MakePlan(rep, root, false)
	if err != nil {
		return fmt.Errorf("then-distrust: %w", err)
	}
	if !slices.ContainsFunc(plan.Steps, func(s distrust.Step) bool { return !s.Manual }) {
		if !asJSON {
			fmt.Fprintf(cmd.OutOrStdout(), "then-distrust: no store under %s trusts a listed root\n", root)
		}
		return nil
	}
	d := newDistrust()
	args := []string{"--apply", "--root", root}
	if asJSON {
		args = append(args, "--json")
	}
	d.SetArgs(args)
	d.SetOut(cmd.OutOrStdout())
	d.SetErr(cmd.ErrOrStderr())
	d.SilenceUsage, d.SilenceErrors = true, true
	err = d.ExecuteContext(cmd.Context())
	if errors.As(err, new(*distrust.JournalExistsError)) {
		return fmt.Errorf("then-distrust: %w; the roots listed since then stay trusted by the stores until it is undone (the next --then-distrust run then applies the whole list)", err)
	}
	return err
}
