// Command probebench measures the measurement engine against baselines run
// in the same process, on the same lab servers, and prints ratios:
//
//	-mode throughput: handshakes per second and peak RSS of `mitmguard
//	  probe` (a real subprocess: handshake, verdict, SQLite) against a bare
//	  crypto/tls dial loop at the same concurrency, on a lab network of clean
//	  hosts, with Go's default groups and with X25519 alone;
//	-mode memory: peak memory and bytes stored per record of a
//	  1,000,000-pair campaign read from a stream, with a synthetic prober
//	  that answers at once (so the engine, the verdicts and the store are
//	  measured, not the network): 10,000 hosts x 100 domains, a tenth of the
//	  hosts intercepting.
//
// Run it with bench/probe.sh.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/probe"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/verdict"
)

func main() {
	mode := flag.String("mode", "throughput", "throughput or memory")
	bin := flag.String("mitmguard", "", "the mitmguard binary (throughput mode)")
	hosts := flag.Int("hosts", 100, "lab hosts (throughput mode)")
	total := flag.Int("handshakes", 20000, "handshakes per side (throughput mode)")
	conc := flag.Int("concurrency", 100, "concurrency of both sides")
	pairs := flag.Int("pairs", 1_000_000, "pairs (memory mode)")
	hostsFile := flag.String("hostsfile", "", "hosts, one IP:PORT per line (bare mode)")
	groups := flag.String("groups", "", "x25519 or empty for Go's default (bare mode)")
	memprofile := flag.String("memprofile", "", "heap profile of mitmguard probe, at its largest heap (throughput mode)")
	flag.Parse()
	var err error
	switch *mode {
	case "throughput":
		err = throughput(*bin, *hosts, *total, *conc, *memprofile)
	case "bare":
		err = bareLoop(*hostsFile, *total, *conc, *groups)
	case "memory":
		err = memory(*pairs, *conc)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func throughput(bin string, nHosts, total, conc int, memprofile string) error {
	actions := make([]lab.Action, nHosts)
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: actions})
	if err != nil {
		return err
	}
	defer n.Close()
	dir, err := os.MkdirTemp("", "probebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var hostLines, domainLines strings.Builder
	for _, h := range n.Hosts {
		fmt.Fprintln(&hostLines, h.Addr)
	}
	perHost := total / nHosts
	for i := range perHost {
		fmt.Fprintf(&domainLines, "d%d.example.net\n", i)
	}
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o644)
		return p
	}
	hostsFile, domainsFile := write("hosts.txt", hostLines.String()), write("domains.txt", domainLines.String())
	rootFile := write("root.pem", string(lab.PEM(n.PublicRoot)))

	// bare is the baseline: a crypto/tls dial loop at the same concurrency
	// over the same (host, SNI) pairs, offering the given groups, in a
	// process of its own as the probe is (not beside the lab's servers).
	bare := func(groups string) float64 {
		self, err := os.Executable()
		if err != nil {
			log.Fatal(err)
		}
		out, err := exec.Command(self, "-mode", "bare", "-hostsfile", hostsFile, "-handshakes", fmt.Sprint(total),
			"-concurrency", fmt.Sprint(conc), "-groups", groups).Output()
		if err != nil {
			log.Fatalf("bare loop: %v", err)
		}
		var rate float64
		fmt.Sscan(string(out), &rate)
		return rate
	}
	// campaign runs mitmguard probe with the per-host limits lifted and
	// returns its handshakes/s and peak RSS.
	campaign := func(extra ...string) (float64, int64, error) {
		db := filepath.Join(dir, fmt.Sprintf("c%d.db", time.Now().UnixNano()))
		start := time.Now()
		args := append([]string{"probe", "--hosts", hostsFile, "--domains", domainsFile, "--roots", rootFile, "--db", db,
			"--concurrency", fmt.Sprint(conc), "--per-host", fmt.Sprint(conc), "--rate", "1000000", "--no-progress"}, extra...)
		cmd := exec.Command(bin, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("mitmguard probe: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "memprofile:") {
				fmt.Println("  " + line)
			}
		}
		elapsed := time.Since(start).Seconds()
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
		// Every pair is one handshake (clean hosts answer like their control)
		// plus one control per host.
		return float64(nHosts*perHost+nHosts) / elapsed, rss, nil
	}
	x25519 := "x25519"
	fmt.Printf("lab: %d clean hosts x %d SNIs, %d handshakes per side, concurrency %d, per-host limits lifted\n", nHosts, perHost, total, conc)
	b1 := bare("")
	extra := []string{}
	if memprofile != "" {
		extra = append(extra, "--memprofile", memprofile)
	}
	c, rss, err := campaign(extra...)
	if err != nil {
		return err
	}
	b2 := bare("")
	bx1 := bare(x25519)
	cx, rssx, err := campaign("--groups", "x25519")
	if err != nil {
		return err
	}
	bx2 := bare(x25519)
	b, bx := (b1+b2)/2, (bx1+bx2)/2
	mb := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Printf("Go's default groups (X25519MLKEM768 first):\n")
	fmt.Printf("  bare crypto/tls dial loop: %.0f handshakes/s (runs before and after: %.0f, %.0f)\n", b, b1, b2)
	fmt.Printf("  mitmguard probe:           %.0f handshakes/s, peak RSS %.1f MB (verdict, SQLite and process start included)\n", c, mb(rss))
	fmt.Printf("X25519 only (probe --groups x25519):\n")
	fmt.Printf("  bare crypto/tls dial loop: %.0f handshakes/s (runs before and after: %.0f, %.0f)\n", bx, bx1, bx2)
	fmt.Printf("  mitmguard probe:           %.0f handshakes/s, peak RSS %.1f MB\n", cx, mb(rssx))
	fmt.Printf("ratio probe/bare, same groups: %.2f (goal: at least 0.85)\n", c/b)
	fmt.Printf("ratio probe/bare, X25519:      %.2f (goal: at least 0.85)\n", cx/bx)
	fmt.Printf("peak RSS of mitmguard probe:   %.1f MB default groups, %.1f MB X25519 (goal: at most 50 MB)\n", mb(rss), mb(rssx))
	return nil
}

// bareLoop dials total handshakes over the hosts at conc and prints the
// handshakes per second.
func bareLoop(hostsFile string, total, conc int, groups string) error {
	data, err := os.ReadFile(hostsFile)
	if err != nil {
		return err
	}
	hosts := strings.Fields(string(data))
	var curves []tls.CurveID
	if groups == "x25519" {
		curves = []tls.CurveID{tls.X25519}
	}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				c, err := tls.Dial("tcp", hosts[int(i)%len(hosts)], &tls.Config{InsecureSkipVerify: true,
					ServerName: fmt.Sprintf("d%d.example.net", i), CurvePreferences: curves})
				if err != nil {
					log.Fatal(err)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Println(float64(total) / time.Since(start).Seconds())
	return nil
}

func memory(pairs, conc int) error {
	const domainsN = 100
	nHosts := pairs / domainsN
	// Real chains from a lab: a host's own chain, and a forged one.
	l, err := lab.Start(lab.Config{})
	if err != nil {
		return err
	}
	real := probe.Handshake(context.Background(), probe.Target{Address: l.OriginAddr, SNI: "github.com"}, probe.Options{})
	forged := probe.Handshake(context.Background(), probe.Target{Address: l.MiddleboxAddr, SNI: "facebook.com"}, probe.Options{})
	pub := l.PublicRoot
	l.Close()
	if real.Failure != "" || forged.Failure != "" {
		return fmt.Errorf("lab handshakes failed: %v %v", real.Err, forged.Err)
	}
	domains := make([]string, domainsN)
	for i := range domains {
		domains[i] = fmt.Sprintf("d%d.example.net", i)
	}
	prober := func(_ context.Context, t probe.Target, _ probe.Options) *probe.Result {
		r := &probe.Result{Target: t, Start: time.Now(), Handshake: 300 * time.Microsecond, TLSVersion: "TLS 1.3"}
		c := real.Chain
		// Hosts whose last address byte is a multiple of ten intercept the
		// first ten test domains.
		if strings.HasSuffix(strings.Split(t.Address, ":")[0], "0") && len(t.SNI) == len("d0.example.net") {
			c = forged.Chain
		}
		r.Chain = append(chain.Chain{}, c...)
		return r
	}
	dir, err := os.MkdirTemp("", "probebench-mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "m.db")
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := measure.Config{Domains: domains, Concurrency: conc, PerHost: 4, Rate: 1e9, Prober: prober,
		Classifier: verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{pub}})}
	c := &store.Campaign{ID: "memory", Started: time.Now(), Params: cfg.Params()}
	if err := st.CreateCampaign(context.Background(), c); err != nil {
		return err
	}
	hosts := make(chan string, 256)
	go func() {
		for i := range nHosts {
			hosts <- fmt.Sprintf("127.%d.%d.%d:443", 1+i/65536, (i/256)%256, i%256)
		}
		close(hosts)
	}()
	start := time.Now()
	stats, err := measure.Run(context.Background(), cfg, store.Bind(st, c), hosts, false)
	if err != nil {
		return err
	}
	if err := st.Checkpoint(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fi, err := os.Stat(db)
	if err != nil {
		return err
	}
	peak := peakRSS()
	fmt.Printf("campaign: %d hosts x %d domains = %d records in %.1fs (%.0f records/s), outcomes %v\n",
		stats.Hosts, domainsN, stats.Pairs, elapsed.Seconds(), float64(stats.Pairs)/elapsed.Seconds(), stats.Outcomes)
	fmt.Printf("peak memory (VmHWM): %.1f MB (goal: under 200 MB)\n", float64(peak)/(1<<20))
	fmt.Printf("database: %d bytes, %.0f bytes per record (goal: under 400; zgrab2 writes about 3,900 bytes of JSON per handshake)\n",
		fi.Size(), float64(fi.Size())/float64(stats.Pairs))
	return nil
}

// peakRSS reads the process's peak resident set size from /proc.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb << 10
		}
	}
	return -1
}
