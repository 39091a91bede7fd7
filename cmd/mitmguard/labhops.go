package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/internal/lab"
)

// hopFlags are lab's flags for a lab with hops.
type hopFlags struct {
	hops, boxAt, resetAt int
	prefix               string
	inject               bool
}

// addLabHops gives the lab command its --hops flags and the hidden
// hop-serve command the lab runs inside its namespaces.
func addLabHops(cmd *cobra.Command) *hopFlags {
	var f hopFlags
	fl := cmd.Flags()
	fl.IntVar(&f.hops, "hops", 0, "instead, build a path of `N` routers in network namespaces (root, Linux; writes hops.json) for mitmguard locate")
	fl.IntVar(&f.boxAt, "box-at", 0, "with --hops: put the middlebox on router `K` (0: no box)")
	fl.IntVar(&f.resetAt, "reset-at", 0, "with --hops: router `K` resets every ClientHello to port 443, as an SNI filter (0: none)")
	fl.StringVar(&f.prefix, "netns-prefix", "", "with --hops: start the namespaces' names with `PREFIX` (default mglab<pid>)")
	fl.BoolVar(&f.inject, "inject", false, "with --box-at: the box does not terminate TCP; it injects its forged answer into the client's connection with the origin (IPv4)")
	cmd.AddCommand(&cobra.Command{
		Use:    "hop-serve ROLE DIR [ORIGIN]",
		Short:  "Serve a hop lab's origin or box (run by lab --hops inside a namespace)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return lab.ServeHopRole(cmd.Context(), args, os.Stdin, cmd.OutOrStdout())
		},
	})
	return &f
}

// requested says whether the hop lab was asked for (--hops given, any
// value: a bad one is refused by the lab). A hop flag without --hops is an
// error, not the one-host lab silently.
func (f *hopFlags) requested(cmd *cobra.Command) (bool, error) {
	fl := cmd.Flags()
	if fl.Changed("hops") {
		return true, nil
	}
	for _, name := range []string{"box-at", "reset-at", "netns-prefix", "inject"} {
		if fl.Changed(name) {
			return false, fmt.Errorf("lab: --%s is for a lab with hops: add --hops N", name)
		}
	}
	return false, nil
}

func runLabHops(cmd *cobra.Command, dir string, f *hopFlags) error {
	if err := lab.CanRunHops(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if f.prefix == "" {
		f.prefix = "mglab" + strconv.Itoa(os.Getpid())
	}
	temporary := dir == ""
	if temporary {
		// As the one-host lab's: a folder of its own, removed when it stops.
		if dir, err = os.MkdirTemp("", "mitmguard-hops-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := lab.StartHops(ctx, lab.HopsConfig{
		Prefix: f.prefix, Routers: f.hops, BoxAt: f.boxAt, ResetAt: f.resetAt, Inject: f.inject, Dir: dir,
		Command: []string{self, "lab", "hop-serve"}, Stderr: cmd.ErrOrStderr(),
	})
	if h != nil {
		defer h.Close()
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "mitmguard lab: %d routers between %s and the origin %s, files in %s%s\n", f.hops, h.ClientNetns, h.Server, dir, removedNote(temporary))
	for i, r := range h.Routers {
		mark := ""
		switch i + 1 {
		case h.BoxAt:
			mark = "  <- middlebox (intercepts port 443)"
			if h.Inject {
				mark = "  <- middlebox (injects into port 443 streams, IPv4)"
			}
		case h.ResetAt:
			mark = "  <- resets ClientHellos"
		}
		fmt.Fprintf(out, "  router %d  %s%s\n", i+1, r, mark)
	}
	fmt.Fprintf(out, "\ntry:\n  ip netns exec %s mitmguard locate --roots %s --connect %s facebook.com\nCtrl-C stops the lab and removes its namespaces.\n",
		h.ClientNetns, filepath.Join(dir, "public-root.pem"), h.Server)
	<-ctx.Done()
	fmt.Fprintln(out, "lab stopped")
	return nil
}
