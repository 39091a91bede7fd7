// Command mitmguard defends against HTTPS interception: it checks whether a
// connection is intercepted and by whom, runs the interception lab, and shows
// the blocklist. Each command is a thin shell over a library package.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses, a contract for scripts.
const (
	exitOK          = 0
	exitFailed      = 1 // a target failed, or the input was bad
	exitIntercepted = 2 // a target is intercepted (mitm.*)
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit status out of a command without printing more.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "mitmguard:", err)
		return exitFailed
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "mitmguard",
		Short: "Detect and refuse HTTPS interception by governments and middleboxes",
		Long: `mitmguard detects HTTPS interception: it tells whether a connection is
intercepted and by which root, using a curated list of interception roots
(Kazakhstan's, Superfish, eDellRoot, ...) and the public root program.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				return printVersion(cmd, false)
			}
			return cmd.Help()
		},
	}
	root.Flags().BoolVar(&showVersion, "version", false, "print mitmguard's version and the active blocklist's, as mitmguard version does")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newCheck(), newProbe(), newReport(), newAudit(), newDistrust(), newDetect(), newServe(), newUpdate(), newRepo(), newLab(), newBlocklist(), newLocate(), newNats(), newCampaign(), newWorker(), newExport())
	root.AddCommand(newVersion())
	root.SetHelpCommand(newHelp())
	// Cobra adds its completion command only inside Execute; add it now so
	// that it too refuses an unknown subcommand.
	root.InitDefaultCompletionCmd()
	refuseUnknownSubcommands(root)
	return root
}

// UnknownCommandError is a word given where a subcommand was expected.
type UnknownCommandError struct {
	Command     string   // the command path it was given to, as "mitmguard blocklist"
	Word        string   // what was given
	Suggestions []string // subcommands it is close to
}

func (e *UnknownCommandError) Error() string {
	msg := fmt.Sprintf("unknown command %q for %q", e.Word, e.Command)
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestions, " or ") + "?"
	}
	return msg + fmt.Sprintf(" (see %s --help)", e.Command)
}

// unknownCommand is the error for word given to cmd, with the subcommands
// close to it by cobra's measure (a prefix, or at most 2 edits: the default
// cobra applies only in its own check of the root's arguments).
func unknownCommand(cmd *cobra.Command, word string) error {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	return &UnknownCommandError{Command: cmd.CommandPath(), Word: word, Suggestions: cmd.SuggestionsFor(word)}
}

// refuseUnknownSubcommands makes every command that groups subcommands fail
// on a word that names none of them. Left alone, cobra prints such a
// command's help and exits 0 (so "mitmguard blocklist shw" looked like
// success to a script); only the root's check suggests a name.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return unknownCommand(cmd, args[0])
	}
	if !c.Runnable() {
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
}

// newHelp replaces cobra's help command, which shows the nearest command's
// help and exits 0 for a topic that does not exist ("mitmguard help shw").
func newHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return unknownCommand(cmd, rest[0])
			}
			return cmd.Help()
		},
	}
}
