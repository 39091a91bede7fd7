package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/verdict"
)

// domainLists is the repository folder of targeted-domain lists.
const domainLists = "data/domains"

type probeFlags struct {
	hosts, domains, controls, db, jsonl, campaign, exclude string
	roots, vantage, groups, memprofile                     string
	blocklists, allowSpecial                               []string
	resume, json, noProgress                               bool
	concurrency, perHost, retries                          int
	rate                                                   float64
	timeout, minTimeout                                    time.Duration
	loc                                                    locateFlags
	declared                                               vantageFlags
}

func newProbe() *cobra.Command {
	var f probeFlags
	cmd := &cobra.Command{
		Use:   "probe --hosts FILE --domains FILE [flags]",
		Short: "Measure where, and for which domains, connections are intercepted",
		Long: `probe runs a campaign over hosts x domains, the way Censored Planet found
Kazakhstan's interception: for each host, handshakes with control SNIs show the
host's own chain; then one handshake per test domain shows whether something
on the path answers that SNI differently. Each (host, SNI) gets one record:

  ok, mitm.known:<id>, mitm.suspected, tls.mismatch, blocked.reset,
  blocked.timeout, blocked.closed, error.control_failed, ...

Records stream into an SQLite file (--db, certificates stored once) and
optionally JSON Lines (--jsonl). Ctrl-C stops cleanly with everything so far
kept; --resume continues a campaign without duplicating or losing a record.
Special-purpose networks (private, link-local, documentation, multicast ...)
are never probed; --exclude adds more.

Targeted-domain lists ship in the repository's ` + domainLists + ` folder:
kz-2019.txt (the 37 domains of the 2019 middlebox) and kz-2024-ooni.txt (OONI,
2021-2024), with their sources in its README.md.`,
		Example: `  mitmguard probe --hosts hosts.txt --domains data/domains/kz-2019.txt --db kz.db
  zcat hosts.gz | mitmguard probe --hosts - --domains domains.txt --jsonl out.jsonl
  mitmguard probe --resume --campaign 20261125T120000-3fa2 --hosts hosts.txt --db kz.db
  mitmguard lab --network 24 --dir lab   # a lab network to try it on; prints the command
  sudo mitmguard probe --hosts hosts.txt --domains data/domains/kz-2019.txt --db kz.db --locate   # and where on the path`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runProbe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.hosts, "hosts", "", "`FILE` of hosts: IP, IP:PORT or CIDR per line (port 443 by default); - for standard input")
	fl.StringVar(&f.domains, "domains", "", "`FILE` of test SNIs, one per line")
	fl.StringVar(&f.controls, "control-domains", "", "`FILE` of control SNIs (default: two random names under control.mitmguard.invalid)")
	fl.StringVar(&f.db, "db", "mitmguard.db", "SQLite `FILE` to store records in, or a PostgreSQL postgres://... DSN")
	fl.StringVar(&f.jsonl, "jsonl", "", "also append records as JSON Lines to `FILE`")
	fl.StringVar(&f.vantage, "vantage", "", "`NAME` of the vantage point measured from, stored with every record (default \"local\"; with --resume: the campaign's)")
	addVantageFlags(fl, &f.declared)
	fl.StringVar(&f.campaign, "campaign", "", "campaign `ID` (new: chosen for you; with --resume: default the newest)")
	fl.BoolVar(&f.resume, "resume", false, "continue an interrupted campaign: hosts already stored are skipped")
	fl.StringVar(&f.exclude, "exclude", "", "`FILE` of networks never to probe, in addition to the special-purpose ranges")
	fl.StringVar(&f.roots, "roots", "", "PEM `FILE` of roots to treat as public, in addition to the Mozilla set")
	fl.StringArrayVar(&f.blocklists, "blocklist", nil, "extra blocklist `FILE` (JSON or PEM; repeatable)")
	fl.IntVar(&f.concurrency, "concurrency", 100, "handshakes in flight at most")
	fl.IntVar(&f.perHost, "per-host", 2, "handshakes in flight to one host at most")
	fl.Float64Var(&f.rate, "rate", 20, "handshakes started per second to one host at most")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on one handshake (tests use less when the control answered fast)")
	fl.DurationVar(&f.minTimeout, "min-timeout", time.Second, "the least a test handshake is given, however fast the control answered (raise it on a busy machine or a jittery path)")
	fl.IntVar(&f.retries, "retries", 1, "how often a test that differs or fails is tried again")
	fl.StringVar(&f.groups, "groups", "", "key exchange `GROUPS` to offer, comma-separated (x25519, x25519mlkem768, p256, p384, p521; default: Go's, a post-quantum hybrid first); x25519 alone is the fastest")
	fl.StringVar(&f.memprofile, "memprofile", "", "write a heap profile of the largest heap to `FILE` (for bench/probe.sh)")
	fl.MarkHidden("memprofile")
	fl.BoolVar(&f.json, "json", false, "print the campaign summary as JSON")
	fl.BoolVar(&f.noProgress, "no-progress", false, "print no progress")
	fl.StringArrayVar(&f.allowSpecial, "allow-special", nil, "probe this special-purpose `CIDR` all the same (a lab's namespaces, your own network; repeatable)")
	addLocateFlags(cmd, &f.loc)
	return cmd
}

func runProbe(cmd *cobra.Command, f probeFlags) error {
	if f.hosts == "" {
		return errors.New("probe: --hosts is required (a file of IP[:PORT] or CIDR lines, or - for standard input)")
	}
	if f.domains == "" && !f.resume {
		return errors.New("probe: --domains is required (a file of test SNIs, e.g. " + domainLists + "/kz-2019.txt in mitmguard's repository)")
	}
	if f.vantage != "" {
		if err := measure.CheckVantageName(f.vantage); err != nil {
			return fmt.Errorf("probe: --vantage: %w", err)
		}
	}
	declared, err := f.declared.declaration("probe", f.vantage)
	if err != nil {
		return err
	}
	groups, err := parseGroups(f.groups)
	if err != nil {
		return err
	}
	if f.concurrency < 1 || f.perHost < 1 || f.rate <= 0 || f.timeout <= 0 || f.minTimeout <= 0 || f.retries < 0 {
		return errors.New("probe: --concurrency, --per-host, --rate, --timeout and --min-timeout must be positive, --retries not negative")
	}
	if err := f.loc.check(cmd); err != nil {
		return err
	}
	opts, err := classifierOptions(checkFlags{roots: f.roots, blocklists: f.blocklists, offline: true, noSystemRoots: true, base: activeList(cmd)})
	if err != nil {
		return err
	}
	cfg := measure.Config{
		Concurrency: f.concurrency, PerHost: f.perHost, Rate: f.rate, Timeout: f.timeout, MinTimeout: f.minTimeout, Retries: f.retries,
		Classifier: verdict.New(opts), Vantage: f.vantage, Groups: groups,
	}
	if f.retries == 0 {
		cfg.Retries = -1 // zero means the default in Config
	}
	if f.domains != "" {
		if cfg.Domains, err = readList(f.domains, measure.ReadDomains); err != nil {
			return err
		}
	}
	if f.controls != "" {
		if cfg.ControlDomains, err = readList(f.controls, measure.ReadDomains); err != nil {
			return err
		}
	}
	exclude, err := excludedNets(f.exclude)
	if err != nil {
		return err
	}
	if exclude, err = allowSpecial(exclude, f.allowSpecial); err != nil {
		return err
	}
	f.loc.exclude = exclude

	hostCount := -1
	if f.hosts != "-" {
		// Validate the whole file before the first handshake, and count it
		// for the progress bar's ETA.
		if hostCount, err = countHosts(cmd.Context(), f.hosts, exclude); err != nil {
			return err
		}
	}
	st, err := store.OpenDSN(cmd.Context(), f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := openCampaign(cmd.Context(), st, &cfg, f)
	if err != nil {
		return err
	}
	declared.Name = cmp.Or(cfg.Vantage, measure.DefaultVantage)
	if _, err := st.DeclareVantage(cmd.Context(), c, declared); err != nil {
		var conflict *measure.VantageConflictError
		if !errors.As(err, &conflict) {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "probe: warning: %v\n", err)
	}
	total := -1
	if hostCount > 0 {
		total = hostCount * len(cfg.Domains)
	}
	var in io.Reader = os.Stdin
	if f.hosts != "-" {
		fh, err := os.Open(f.hosts)
		if err != nil {
			return err
		}
		defer fh.Close()
		in = fh
	} else if cmd.InOrStdin() != nil {
		in = cmd.InOrStdin()
	}
	if f.jsonl != "" {
		jf, j, reemitted, err := openJSONL(cmd.Context(), f.jsonl, st, c, len(cfg.Domains))
		if err != nil {
			return fmt.Errorf("probe: --jsonl %s: %w", f.jsonl, err)
		}
		defer jf.Close()
		if reemitted > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: wrote %d stored records it lacked (the last run stopped between the database and the file)\n", f.jsonl, reemitted)
		}
		cfg.JSONL = j
	}
	stderr := cmd.ErrOrStderr()
	if !f.noProgress {
		cfg.Progress = newProgressPrinter(stderr, total).print
	}
	if f.memprofile != "" {
		cfg.Progress = heapProfiler(f.memprofile, cfg.Progress)
	}

	if os.Getenv("GOGC") == "" {
		// A campaign's live data is small (about 10 MB at concurrency 100)
		// and its garbage is handshakes: letting the heap grow to twice the
		// live data between collections (Go's default) was a fifth of the
		// resident memory. Half of it costs little CPU beside the handshakes.
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hosts := make(chan string, 256)
	readErr := make(chan error, 1)
	readCtx, stopReading := context.WithCancel(ctx) // Run stops reading on a failed write
	defer stopReading()
	go func() {
		_, err := measure.ReadHosts(readCtx, in, exclude, hosts)
		close(hosts)
		readErr <- err
	}()
	fmt.Fprintf(stderr, "campaign %s: %d domains, %d control SNIs, records to %s\n", c.ID, len(cfg.Domains), len(cfg.ControlDomains), f.db)
	stats, runErr := measure.Run(ctx, cfg, store.Bind(st, c), hosts, f.resume)
	stopReading()
	if err := <-readErr; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
		return fmt.Errorf("probe: stopped reading hosts: %w (the hosts before it are recorded; fix the line and run again with --resume --campaign %s)", err, c.ID)
	}
	var located *locateStats
	if runErr == nil && f.loc.on {
		located, runErr = runLocatePhase(ctx, st, c, cfg.Vantage, cfg.Classifier, f.loc, stderr, !f.noProgress)
	}
	if cp, ok := st.(interface{ Checkpoint() error }); ok {
		if err := cp.Checkpoint(); err != nil && runErr == nil {
			runErr = err
		}
	}
	out := cmd.OutOrStdout()
	if f.json {
		if err := writeJSON(out, struct {
			Campaign string `json:"campaign"`
			*measure.Stats
			ElapsedS float64      `json:"elapsed_s"`
			Locate   *locateStats `json:"locate,omitempty"`
		}{c.ID, stats, stats.Elapsed.Seconds(), located}); err != nil {
			return err
		}
	} else {
		printStats(out, c.ID, stats)
		if located != nil {
			fmt.Fprintf(out, "  located: %d of %d intercepted pairs traced (%d over --locate-budget), %d located, %d failed\n",
				located.Traced, located.Candidates, located.OverBudget, located.Located, located.Failed)
		}
	}
	if errors.Is(runErr, context.Canceled) {
		again := ""
		if f.loc.on {
			again = " --locate"
		}
		fmt.Fprintf(stderr, "stopped: %d records kept; continue with: mitmguard probe --resume --campaign %s --db %s --hosts %s%s\n", stats.Pairs, c.ID, f.db, f.hosts, again)
		return &exitError{exitFailed}
	}
	return runErr
}

// openCampaign creates the campaign, or loads it for --resume and takes its
// stored domains and control SNIs so the resumed part measures the same.
func openCampaign(ctx context.Context, st store.Store, cfg *measure.Config, f probeFlags) (*store.Campaign, error) {
	if f.resume {
		c, err := st.Campaign(ctx, f.campaign)
		if err != nil {
			return nil, fmt.Errorf("probe --resume: %w in %s", err, f.db)
		}
		var stored measure.Config
		if err := json.Unmarshal([]byte(c.Params), &stored); err != nil {
			return nil, fmt.Errorf("probe --resume: campaign %s has unreadable parameters: %w", c.ID, err)
		}
		if cfg.Domains != nil && !slices.Equal(cfg.Domains, stored.Domains) {
			return nil, fmt.Errorf("probe --resume: --domains differs from campaign %s's; leave it out to use the campaign's", c.ID)
		}
		cfg.Domains, cfg.ControlDomains = stored.Domains, stored.ControlDomains
		if cfg.Vantage == "" {
			cfg.Vantage = stored.Vantage
		}
		if f.groups == "" {
			cfg.Groups = stored.Groups
		}
		return c, nil
	}
	id := f.campaign
	if id == "" {
		b := make([]byte, 2)
		rand.Read(b)
		id = time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
	}
	if len(cfg.ControlDomains) == 0 {
		cfg.ControlDomains = measure.RandomControls(2)
	}
	if cfg.Vantage == "" {
		cfg.Vantage = measure.DefaultVantage
	}
	c := &store.Campaign{ID: id, Started: time.Now().UTC(), Params: cfg.Params()}
	return c, st.CreateCampaign(ctx, c)
}

// openJSONL opens the JSON Lines output for appending after its last
// complete line (a line cut by a kill is dropped), and first writes the
// campaign's stored records that the file lacks: a run killed between the
// database commit and the file write left them out.
func openJSONL(ctx context.Context, name string, st store.Store, c *store.Campaign, domains int) (*os.File, *measure.JSONL, int, error) {
	fh, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, 0, err
	}
	x, err := measure.IndexJSONL(fh, c.ID, domains)
	if err == nil {
		err = fh.Truncate(x.Tail)
	}
	if err == nil {
		_, err = fh.Seek(x.Tail, io.SeekStart)
	}
	if err != nil {
		fh.Close()
		return nil, nil, 0, err
	}
	j := measure.NewJSONL(fh, c.ID)
	vs, err := st.Vantages(ctx, c)
	if err != nil {
		fh.Close()
		return nil, nil, 0, err
	}
	j.Declare(vs...)
	x.Seed(j)
	n := 0
	err = j.Export(ctx, store.Bind(st, c), func(r measure.Record) bool {
		if x.Has(r) {
			return true
		}
		n++
		return false
	})
	if err != nil {
		fh.Close()
		return nil, nil, 0, err
	}
	return fh, j, n, nil
}

// groupNames are the key exchange groups --groups accepts.
var groupNames = map[string]tls.CurveID{
	"x25519": tls.X25519, "x25519mlkem768": tls.X25519MLKEM768,
	"p256": tls.CurveP256, "p384": tls.CurveP384, "p521": tls.CurveP521,
}

func parseGroups(s string) ([]tls.CurveID, error) {
	if s == "" {
		return nil, nil
	}
	var out []tls.CurveID
	for _, name := range strings.Split(s, ",") {
		g, ok := groupNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return nil, fmt.Errorf("probe: --groups: unknown group %q (known: %s)", name, strings.Join(slices.Sorted(maps.Keys(groupNames)), ", "))
		}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// heapProfiler wraps a progress callback (called about once a second) to
// keep a heap profile of the moment the heap in use was largest, and to say
// at the end what the profile does not show: stacks, and the heap the
// collector keeps beyond the live data.
func heapProfiler(name string, next func(measure.Progress)) func(measure.Progress) {
	var peak uint64
	var at runtime.MemStats
	return func(p measure.Progress) {
		if next != nil {
			next(p)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse > peak {
			peak, at = m.HeapInuse, m
			if err := writeFileWith(name, func(w io.Writer) error { return pprof.Lookup("heap").WriteTo(w, 0) }); err != nil {
				fmt.Fprintln(os.Stderr, "memprofile:", err)
			}
		}
		if p.Final {
			fmt.Fprintf(os.Stderr, "memprofile: at the peak, heap in use %.1f MB, heap from the OS %.1f MB, stacks %.1f MB, runtime total %.1f MB\n",
				mib(at.HeapInuse), mib(at.HeapSys-at.HeapReleased), mib(at.StackSys), mib(at.Sys-at.HeapReleased))
		}
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func readList[T any](name string, parse func(io.Reader) ([]T, error)) ([]T, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	out, err := parse(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func countHosts(ctx context.Context, name string, exclude []netip.Prefix) (int, error) {
	fh, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	ch := make(chan string, 1024)
	n := 0
	done := make(chan struct{})
	go func() {
		for range ch {
			n++
		}
		close(done)
	}()
	_, err = measure.ReadHosts(ctx, fh, exclude, ch)
	close(ch)
	<-done
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no host to probe (all lines empty, comments or excluded)", name)
	}
	return n, nil
}

func printStats(w io.Writer, id string, s *measure.Stats) {
	fmt.Fprintf(w, "campaign %s: %d hosts, %d records in %.1fs", id, s.Hosts, s.Pairs, s.Elapsed.Seconds())
	if s.Resumed > 0 {
		fmt.Fprintf(w, " (%d hosts were already stored)", s.Resumed)
	}
	fmt.Fprintln(w)
	for _, o := range slices.Sorted(maps.Keys(s.Outcomes)) {
		fmt.Fprintf(w, "  %-40s %d\n", o, s.Outcomes[o])
	}
}

// allowSpecial takes the networks of --allow-special out of the excluded
// ones: an excluded range that holds one is split around it. An IPv4
// address in its IPv4-mapped IPv6 form (::ffff:a.b.c.d, which a hosts CIDR
// may give) is dialled as the IPv4 address, so the excluded IPv4 ranges
// are kept excluded in that form too: allowing ::/0 or ::ffff:0:0/96 does
// not open 10.0.0.0/8.
func allowSpecial(exclude []netip.Prefix, allow []string) ([]netip.Prefix, error) {
	if len(allow) == 0 {
		return exclude, nil
	}
	for _, a := range allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, err2 := netip.ParseAddr(a)
			if err2 != nil {
				return nil, fmt.Errorf("probe: --allow-special %q: not a CIDR or address", a)
			}
			ip = ip.Unmap() // as a hosts line's address is read
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		exclude = subtractPrefix(exclude, p.Masked())
	}
	for _, q := range exclude {
		if q.Addr().Is4() {
			exclude = append(exclude, netip.PrefixFrom(netip.AddrFrom16(q.Addr().As16()), 96+q.Bits()))
		}
	}
	return exclude, nil
}

// subtractPrefix returns the addresses of ps outside p, as prefixes.
func subtractPrefix(ps []netip.Prefix, p netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, q := range ps {
		switch {
		case !q.Overlaps(p):
			out = append(out, q)
		case p.Bits() <= q.Bits(): // q lies inside p: all of it is allowed
		default: // p lies inside q: keep q's halves, less p
			bits := q.Bits() + 1
			lo := netip.PrefixFrom(q.Addr(), bits)
			hi := netip.PrefixFrom(lastAddr(lo).Next(), bits)
			out = append(out, subtractPrefix([]netip.Prefix{lo, hi}, p)...)
		}
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// excludedNets are the networks never probed: the special-purpose ranges
// and those of the --exclude file, if one is given.
func excludedNets(file string) ([]netip.Prefix, error) {
	exclude := slices.Clone(measure.DefaultExcluded)
	if file == "" {
		return exclude, nil
	}
	more, err := readList(file, measure.ReadExclusions)
	if err != nil {
		return nil, err
	}
	return append(exclude, more...), nil
}
