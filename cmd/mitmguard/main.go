// Command mitmguard defends against HTTPS interception: it checks whether a
// connection is intercepted and by whom, runs the interception lab, and shows
// the blocklist. Each command is a thin shell over a library package.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

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
	root := &cobra.Command{
		Use:   "mitmguard",
		Short: "Detect and refuse HTTPS interception by governments and middleboxes",
		Long: `mitmguard detects HTTPS interception: it tells whether a connection is
intercepted and by which root, using a curated list of interception roots
(Kazakhstan's, Superfish, eDellRoot, ...) and the public root program.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newCheck(), newProbe(), newReport(), newAudit(), newDistrust(), newDetect(), newServe(), newUpdate(), newRepo(), newLab(), newBlocklist(), newLocate(), newNats(), newCampaign(), newWorker())
	return root
}
