package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/campaign"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

func newCampaign() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "campaign",
		Short: "Run a campaign from many vantage points through NATS JetStream",
		Long: `campaign puts a campaign (hosts x domains) on a NATS JetStream work queue:
one job per batch of hosts for each vantage point, so every named vantage
point measures every host. Workers at each vantage point pull their jobs.
See docs/campaigns.md for setting up NATS and PostgreSQL.`,
	}
	cmd.AddCommand(newCampaignSubmit(), newCampaignStatus(), newCampaignCancel())
	return cmd
}

type submitFlags struct {
	nats, db, hosts, domains, controls, exclude, id, roots string
	vantages                                               []string
	batch, perHost, retries                                int
	rate                                                   float64
	timeout                                                time.Duration
	json                                                   bool
}

func newCampaignSubmit() *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit --nats URL --db DSN --hosts FILE --domains FILE --vantage NAME [--vantage NAME ...]",
		Short: "Put a campaign's jobs on the queue, one per batch of hosts and vantage point",
		Long: `submit validates the hosts and domains, stores the campaign's parameters on
the NATS server, and publishes one job per batch of hosts for each vantage
point. It prints the campaign ID. Submitting again with the same --id adds
nothing; a submit that failed midway is finished by running it again.`,
		Example: `  mitmguard campaign submit --nats nats://127.0.0.1:4222 --db postgres://mitmguard@db/mitmguard \
      --hosts hosts.txt --domains domains.txt --vantage almaty --vantage frankfurt --id kz-2026-11`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSubmit(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nats, "nats", "", "`URL` of the NATS server (JetStream enabled)")
	fl.StringVar(&f.db, "db", "", "PostgreSQL `DSN` (postgres://...) the workers store records in")
	fl.StringVar(&f.hosts, "hosts", "", "`FILE` of hosts: IP, IP:PORT or CIDR per line (port 443 by default)")
	fl.StringVar(&f.domains, "domains", "", "`FILE` of test SNIs, one per line")
	fl.StringArrayVar(&f.vantages, "vantage", nil, "vantage point `NAME` that measures every host (repeatable)")
	fl.StringVar(&f.id, "id", "", "campaign `ID` (default: the time and a random suffix)")
	fl.StringVar(&f.roots, "roots", "", "PEM `FILE` of roots to treat as public, in addition to the Mozilla set")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on one handshake")
	fl.BoolVar(&f.json, "json", false, `print {"campaign": ID}`)
	fl.StringVar(&f.controls, "control-domains", "", "`FILE` of control SNIs (default: two random names under control.mitmguard.invalid)")
	fl.StringVar(&f.exclude, "exclude", "", "`FILE` of networks never to probe, in addition to the special-purpose ranges")
	fl.IntVar(&f.batch, "batch", campaign.DefaultBatch, "hosts per job")
	fl.IntVar(&f.perHost, "per-host", 2, "handshakes in flight to one host at most")
	fl.Float64Var(&f.rate, "rate", 20, "handshakes started per second to one host at most")
	fl.IntVar(&f.retries, "retries", 1, "how often a test that differs or fails is tried again")
	return cmd
}

func runSubmit(cmd *cobra.Command, f submitFlags) error {
	switch {
	case f.nats == "":
		return errors.New("campaign submit: --nats is required (a NATS server with JetStream; try: mitmguard nats --store DIR)")
	case f.db == "":
		return errors.New("campaign submit: --db is required (the PostgreSQL DSN workers store records in, postgres://...)")
	case f.hosts == "":
		return errors.New("campaign submit: --hosts is required (a file of IP[:PORT] or CIDR lines)")
	case f.hosts == "-":
		return errors.New("campaign submit: --hosts must be a file (it is read twice: to count and digest, then to publish)")
	case f.domains == "":
		return errors.New("campaign submit: --domains is required (a file of test SNIs)")
	case len(f.vantages) == 0:
		return errors.New("campaign submit: at least one --vantage is required (the vantage points that measure every host)")
	case f.batch < 1 || f.batch > campaign.MaxBatch:
		return fmt.Errorf("campaign submit: --batch must be 1 to %d", campaign.MaxBatch)
	case f.perHost < 1 || f.rate <= 0 || f.timeout <= 0 || f.retries < 0:
		return errors.New("campaign submit: --per-host, --rate and --timeout must be positive, --retries not negative")
	}
	for _, v := range f.vantages {
		if err := campaign.CheckName("vantage", v); err != nil {
			return fmt.Errorf("campaign submit: --vantage: %w", err)
		}
	}
	if f.id != "" {
		if err := campaign.CheckName("campaign", f.id); err != nil {
			return fmt.Errorf("campaign submit: --id: %w", err)
		}
	}
	req := campaign.Request{
		ID: f.id, Vantages: f.vantages, Batch: f.batch,
		Limits: campaign.Limits{TimeoutMS: f.timeout.Milliseconds(), PerHost: f.perHost, Rate: f.rate, Retries: f.retries},
	}
	if f.retries == 0 {
		req.Limits.Retries = -1 // as probe: zero means the default in measure.Config
	}
	var err error
	if req.Domains, err = readList(f.domains, measure.ReadDomains); err != nil {
		return err
	}
	if f.controls != "" {
		if req.ControlDomains, err = readList(f.controls, measure.ReadDomains); err != nil {
			return err
		}
	}
	exclude, err := excludedNets(f.exclude)
	if err != nil {
		return err
	}
	if f.roots != "" {
		if req.Roots, err = readRootsPEM(f.roots); err != nil {
			return err
		}
	}
	req.Hosts = fileHosts(f.hosts, exclude)

	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	db, err := openCampaignStore(ctx, f.db)
	if err != nil {
		return err
	}
	db.Close()
	q, closeQ, err := openCampaignQueue(ctx, f.nats, "mitmguard campaign submit")
	if err != nil {
		return err
	}
	defer closeQ()
	res, err := q.Submit(ctx, req)
	if err != nil {
		return err
	}
	if res.AlreadySubmitted {
		fmt.Fprintf(stderr, "campaign %s was already submitted: nothing added\n", res.ID)
	} else {
		fmt.Fprintf(stderr, "campaign %s: %d hosts in %d jobs for each of %d vantage points (%d jobs new on the queue)\n",
			res.ID, res.Hosts, res.Jobs, len(f.vantages), res.Published)
	}
	if f.json {
		return writeJSON(cmd.OutOrStdout(), map[string]string{"campaign": res.ID})
	}
	fmt.Fprintln(cmd.OutOrStdout(), res.ID)
	return nil
}

// fileHosts reads a hosts file as probe does, each time it is asked.
func fileHosts(name string, exclude []netip.Prefix) campaign.HostSource {
	return func(ctx context.Context, emit func(string) error) error {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		defer fh.Close()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := make(chan string, 256)
		readErr := make(chan error, 1)
		go func() {
			_, err := measure.ReadHosts(ctx, fh, exclude, ch)
			close(ch)
			readErr <- err
		}()
		var emitErr error
		for h := range ch {
			if emitErr == nil {
				emitErr = emit(h)
				if emitErr != nil {
					cancel() // stop the reader; drain what it sent
				}
			}
		}
		if err := <-readErr; emitErr == nil && err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return emitErr
	}
}

// readRootsPEM reads a PEM file of root certificates for the workers,
// checking that each block is a certificate.
func readRootsPEM(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	if len(b) > campaign.MaxRootsPEM {
		return "", fmt.Errorf("%s: %d bytes, more than the %d a campaign carries", name, len(b), campaign.MaxRootsPEM)
	}
	n := 0
	for rest := b; ; n++ {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if _, err := x509.ParseCertificate(blk.Bytes); blk.Type != "CERTIFICATE" || err != nil {
			return "", fmt.Errorf("%s: PEM block %d is not a certificate", name, n+1)
		}
	}
	if n == 0 {
		return "", fmt.Errorf("%s: no PEM certificate found", name)
	}
	return string(b), nil
}

// openCampaignStore opens the PostgreSQL database the workers share, so
// that a bad --db stops submit or status before anything else is done:
// store.OpenPostgres connects within a few seconds, refuses a schema it
// does not own, migrates, and says why a DSN is unusable without showing
// its password.
func openCampaignStore(ctx context.Context, dsn string) (*store.Postgres, error) {
	if !store.IsPostgresDSN(dsn) {
		return nil, &store.PostgresError{Where: "--db", Reason: "want a postgres:// DSN for a campaign (workers share the store); a file is for a single-machine probe"}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return store.OpenPostgres(ctx, dsn)
}

func newCampaignStatus() *cobra.Command {
	var natsURL, dsn string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status ID --nats URL [--db DSN] [--json]",
		Short: "Show a campaign's progress per vantage point",
		Long: `status shows, per vantage point, the jobs done (acknowledged by a worker
after its records were committed) and pending, from the NATS stream; with
--db, also the records stored per vantage point and their rate.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if natsURL == "" {
				return errors.New("campaign status: --nats is required")
			}
			var db store.Store
			if dsn != "" {
				pg, err := openCampaignStore(cmd.Context(), dsn)
				if err != nil {
					return err
				}
				defer pg.Close()
				db = pg
			}
			q, closeQ, err := openCampaignQueue(cmd.Context(), natsURL, "mitmguard campaign status")
			if err != nil {
				return err
			}
			defer closeQ()
			st, err := q.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if db != nil {
				return printStatusWithRecords(cmd.Context(), cmd.OutOrStdout(), st, db, asJSON)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printCampaignStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVar(&natsURL, "nats", "", "`URL` of the NATS server")
	cmd.Flags().StringVar(&dsn, "db", "", "PostgreSQL `DSN` of the store")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func printCampaignStatus(w io.Writer, st *campaign.Status) {
	state := st.State
	if st.Done {
		state = "done"
	}
	fmt.Fprintf(w, "campaign %s: %s, %d hosts, %d jobs per vantage point, %d pending\n", st.Campaign, state, st.Hosts, st.JobsPerVantage, st.PendingJobs)
	fmt.Fprintf(w, "  %-24s %9s %9s %5s   %s\n", "vantage", "jobs done", "pending", "done", "queue: waiting/in flight/redelivered")
	for _, v := range st.Vantages {
		fmt.Fprintf(w, "  %-24s %9d %9d %5t   %d/%d/%d\n", v.Vantage, v.JobsDone, v.PendingJobs, v.Done, v.QueueWaiting, v.QueueInFlight, v.QueueRedelivered)
	}
}

func newCampaignCancel() *cobra.Command {
	var natsURL string
	cmd := &cobra.Command{
		Use:   "cancel ID --nats URL",
		Short: "Cancel a campaign: its remaining jobs are removed from the queue",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if natsURL == "" {
				return errors.New("campaign cancel: --nats is required")
			}
			q, closeQ, err := openCampaignQueue(cmd.Context(), natsURL, "mitmguard campaign cancel")
			if err != nil {
				return err
			}
			defer closeQ()
			n, err := q.Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "campaign %s cancelled: %d jobs removed from the queue\n", args[0], n)
			return nil
		},
	}
	cmd.Flags().StringVar(&natsURL, "nats", "", "`URL` of the NATS server")
	return cmd
}

func openCampaignQueue(ctx context.Context, natsURL, name string) (*campaign.Queue, func(), error) {
	nc, err := campaign.Connect(natsURL, name)
	if err != nil {
		return nil, nil, err
	}
	q, err := campaign.OpenQueue(ctx, nc, campaign.Options{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return q, nc.Close, nil
}
