package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/campaign"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/store"
)

func newWorker() *cobra.Command {
	var natsURL, db, vantage, labRoute string
	var jobs, concurrency int
	var ackWait, minTimeout time.Duration
	var declFlags vantageFlags
	cmd := &cobra.Command{
		Use:   "worker --nats URL --db DSN --vantage NAME [--vantage-asn N] [--vantage-country CC] [--concurrency N]",
		Short: "Measure the campaign jobs of one vantage point from the NATS queue",
		Long: `worker pulls the jobs of its vantage point from the NATS JetStream work
queue, measures each job's hosts against its campaign's domains (the engine of
mitmguard probe), writes the records to the store, and acknowledges a job only
once its records are committed. A worker that dies loses nothing: its job is
handed out again, and the store keeps one record per (campaign, vantage point,
host, SNI). When NATS or PostgreSQL is unreachable it retries with backoff and
says so on standard error. Ctrl-C or SIGTERM stops it: the jobs it is on are
returned to the queue at once (or finished when their records are being
committed). Runs until stopped. --vantage-asn and --vantage-country declare the
network and country the vantage point measures from; they are stored with each
campaign the worker measures for (the first worker's declaration is kept, and
a differing one is logged), and shown by report and export.`,
		Example: `  mitmguard worker --nats nats://10.0.0.5:4222 --db postgres://mitmguard@10.0.0.6/mitmguard --vantage almaty`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case natsURL == "":
				return errors.New("worker: --nats is required (the NATS server the campaign was submitted to)")
			case db == "":
				return errors.New("worker: --db is required (the store records go to: postgres://... shared by all workers)")
			case vantage == "":
				return errors.New("worker: --vantage is required (the vantage point this worker measures from)")
			case concurrency < 1 || jobs < 1:
				return errors.New("worker: --concurrency and --jobs must be positive")
			}
			if err := campaign.CheckName("vantage", vantage); err != nil {
				return fmt.Errorf("worker: --vantage: %w", err)
			}
			declared, err := declFlags.declaration("worker", vantage)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			base := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)) // campaign.Worker adds the vantage point itself
			log := base.With("vantage", vantage)
			st, err := openStoreRetrying(ctx, db, log)
			if err != nil {
				return err
			}
			if st == nil {
				return nil // stopped while waiting
			}
			defer st.Close()
			opts, err := classifierOptions(checkFlags{offline: true, noSystemRoots: true, base: activeList(cmd)})
			if err != nil {
				return err
			}
			runner := &campaign.MeasureRunner{Store: st, Verdict: opts, Concurrency: concurrency, MinTimeout: minTimeout, Declared: declared, Logger: log}
			if labRoute != "" {
				if runner.Prober, err = routedProber(labRoute); err != nil {
					return err
				}
			}
			w := &campaign.Worker{
				URL: natsURL, Vantage: vantage, Concurrency: jobs, Logger: base, Runner: runner,
				Options: campaign.Options{AckWait: ackWait},
			}
			if err := w.Run(ctx); err != nil {
				return err
			}
			log.Info("worker stopped")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&natsURL, "nats", "", "`URL` of the NATS server (JetStream enabled)")
	fl.StringVar(&db, "db", "", "store `DSN`: postgres://... (or an SQLite file, for workers on one machine)")
	fl.StringVar(&vantage, "vantage", "", "`NAME` of the vantage point this worker measures from")
	addVantageFlags(fl, &declFlags)
	fl.IntVar(&concurrency, "concurrency", 100, "handshakes in flight at most, over all the jobs measured at once (as probe's --concurrency)")
	fl.IntVar(&jobs, "jobs", campaign.DefaultJobs, "most jobs held at once, sharing the --concurrency handshakes: another is taken whenever a handshake slot would sit idle (a job lasts as long as its slowest host), up to this many")
	fl.DurationVar(&minTimeout, "min-timeout", time.Second, "the least a test handshake is given, however fast the control answered (raise it on a busy machine or a jittery path)")
	fl.DurationVar(&ackWait, "ack-wait", campaign.DefaultAckWait, "how long a job of a dead worker waits before another worker gets it (when this worker creates its vantage point's consumer)")
	fl.StringVar(&labRoute, "lab-route", "", "lab only: `FILE` of \"FROM TO\" address lines; a handshake to FROM goes to TO (a vantage point whose path to the lab's hosts differs)")
	fl.MarkHidden("lab-route")
	return cmd
}

// routedProber reads a --lab-route file and returns the real handshake
// sent to the routed addresses. The records keep the campaign's address.
func routedProber(name string) (measure.Prober, error) {
	data, err := readBounded(name, 1<<20)
	if err != nil {
		return nil, err
	}
	routes := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want FROM TO", name, i+1)
		}
		for _, a := range f {
			if _, err := netip.ParseAddrPort(a); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, i+1, err)
			}
		}
		routes[f[0]] = f[1]
	}
	return func(ctx context.Context, t probe.Target, opts probe.Options) *probe.Result {
		from := t.Address
		if to, ok := routes[from]; ok {
			t.Address = to
		}
		res := probe.Handshake(ctx, t, opts)
		if res != nil {
			res.Address = from
		}
		return res
	}, nil
}

// openStoreRetrying opens the store, retrying with backoff while the
// server cannot be reached; an answer that retrying cannot change (a
// refused password, no such database, a malformed DSN) is returned at
// once. It returns nil, nil when ctx ends first.
func openStoreRetrying(ctx context.Context, dsn string, log *slog.Logger) (store.Store, error) {
	wait := 500 * time.Millisecond
	for {
		st, err := store.OpenDSN(ctx, dsn)
		if err == nil {
			return st, nil
		}
		var pe *store.PostgresError
		var pg *pgconn.PgError
		if !errors.As(err, &pe) || pe.Err == nil || (errors.As(err, &pg) && pg.Code != "57P03") {
			return nil, err
		}
		log.Warn("PostgreSQL unreachable; retrying", "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, nil
		}
		wait = min(2*wait, 30*time.Second)
	}
}
