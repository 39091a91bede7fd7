package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/natsd"
)

func newNats() *cobra.Command {
	var listen, store string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "nats --store DIR [--listen ADDR]",
		Short: "Run a NATS server with JetStream in this process, for campaigns on one machine",
		Long: `nats runs the real NATS server (nats-server, embedded) with JetStream
keeping its streams in DIR, so campaign submit and workers can be tried on one
machine without installing anything. A restart on the same DIR loses no job.
It has no authentication: it listens on loopback unless --listen says
otherwise. Production points --nats at a real NATS cluster (docs/campaigns.md).
Runs until Ctrl-C or SIGTERM.`,
		Example: `  mitmguard nats --store /var/lib/mitmguard/nats
  mitmguard campaign submit --nats nats://127.0.0.1:4222 --db postgres://... --hosts hosts.txt --domains domains.txt --vantage here`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if store == "" {
				return errors.New("nats: --store is required (the folder JetStream keeps jobs in)")
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			s, err := natsd.Start(natsd.Config{Listen: listen, StoreDir: store, Logger: logger})
			if err != nil {
				return err
			}
			defer s.Close()
			if a := s.Addr().Addr(); !a.IsLoopback() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: listening on %v without authentication: anyone who can reach it can submit and read jobs\n", netip.AddrPortFrom(a, s.Addr().Port()))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "nats: JetStream at %s, store %s (Ctrl-C stops)\n", s.URL(), store)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "nats: stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", natsd.DefaultListen, "`HOST:PORT` for clients (port 0: any free port)")
	cmd.Flags().StringVar(&store, "store", "", "`DIR` where JetStream keeps streams and consumers")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log the server's notices, not only warnings and errors")
	return cmd
}
