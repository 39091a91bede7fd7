package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/check"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/guard/watch"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/propose"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/truststore"
	"github.com/mitmguard/mitmguard/update"
	"github.com/mitmguard/mitmguard/update/active"
	"github.com/mitmguard/mitmguard/verdict"
)

// drillStep is one timed step of lab --drill.
type drillStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	OK      bool    `json:"ok"`
	Detail  string  `json:"detail,omitempty"`
}

// drillResult is lab --drill --json.
type drillResult struct {
	Steps        []drillStep `json:"steps"`
	TotalSeconds float64     `json:"total_seconds"`
	FinalOutcome string      `json:"final_outcome"`
}

// drillTimeout bounds each wait of the drill (an update picked up, a
// handshake): a bound on failure only, never a pace.
const drillTimeout = 30 * time.Second

// drillHosts are the lab network's hosts in the drill: enough intercepting
// hosts for a proposal, and clean ones as a campaign would meet. The box of
// the third host sends the national root with its forged chains, the two
// others only the "Security Certificate" intermediate (as the 2020 box
// did): the proposal must name the root from the one, and the guard,
// check and audit must block it on all.
var (
	drillHosts     = []lab.Action{lab.Intercept, lab.Pass, lab.Intercept, lab.Intercept, lab.Pass}
	drillSendsRoot = []bool{false, false, true}
)

// drillName is the name of the lab network's first host, whose box keeps
// the root back; drillRootName the third's, whose box sends it.
const (
	drillName     = "host1.hosts.mitmguard-lab.net"
	drillRootName = "host3.hosts.mitmguard-lab.net"
)

// drill is the state the steps pass on.
type drill struct {
	dir, clientDir, repoDir string
	net                     *lab.Network
	url                     string
	served                  atomic.Pointer[string] // the folder the mirror serves
	updater                 *update.Client
	updating                sync.Mutex // one update run at a time in clientDir
	policy                  *guard.Policy
	swapped                 chan *blocklist.List
	client                  *http.Client
	entryID                 string
	final                   outcome.Outcome
}

// runDrill runs the closed loop on this machine: the lab forges with a root
// no list knows; a campaign finds it; --propose names it; it is merged and
// published to a TUF repository served on loopback; a guarded program with
// the update running picks it up and refuses its next connection through the
// lab as mitm.known; check and audit name it.
func runDrill(ctx context.Context, cmd io.Writer, asJSON bool) error {
	tmp, err := os.MkdirTemp("", "mitmguard-drill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &drill{dir: tmp, clientDir: filepath.Join(tmp, "client"), repoDir: filepath.Join(tmp, "tuf"), swapped: make(chan *blocklist.List, 16)}
	defer func() {
		if d.net != nil {
			d.net.Close()
		}
	}()
	steps := []struct {
		name string
		run  func(context.Context) (string, error)
	}{
		{"lab forging with a root no list knows; guarded client on the published list", d.start},
		{"campaign finds mitm.suspected", d.campaign},
		{"report --propose names the national root", d.propose},
		{"blocklist merge and repo publish", d.publish},
		{"update running installs it; guard swaps it in", d.pickUp},
		{"guarded connection through the lab refused", d.refused},
		{"check names it", d.check},
		{"audit names it", d.audit},
		{"tampered list refused; the guard keeps the previous list", d.tampered},
		{"rolled-back repository refused; the guard keeps the previous list", d.rolledBack},
	}
	res := drillResult{Steps: []drillStep{}}
	start := time.Now()
	ok := true
	for _, s := range steps {
		t := time.Now()
		detail, err := s.run(ctx)
		st := drillStep{Name: s.name, Seconds: time.Since(t).Seconds(), OK: err == nil, Detail: detail}
		if err != nil {
			st.Detail = err.Error()
		}
		res.Steps = append(res.Steps, st)
		if !asJSON {
			mark := "ok  "
			if !st.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(cmd, "%s %6.2fs  %s: %s\n", mark, st.Seconds, st.Name, st.Detail)
		}
		if err != nil {
			ok = false
			break
		}
	}
	res.TotalSeconds = time.Since(start).Seconds()
	res.FinalOutcome = string(d.final)
	if asJSON {
		if err := writeJSON(cmd, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(cmd, "total %.2fs; the guarded client saw %s\n", res.TotalSeconds, res.FinalOutcome)
	}
	if !ok {
		return &exitError{exitFailed}
	}
	return nil
}

func (d *drill) start(ctx context.Context) (string, error) {
	// The middleboxes also target the first and third hosts' own names, so
	// that the guarded client and check, which check names as any client
	// does, get a forged certificate valid for the name they asked for.
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: drillHosts, SendsRoot: drillSendsRoot, Domains: append([]string{drillName, drillRootName}, labTargeted...), ForgedKeyBits: 1024})
	if err != nil {
		return "", err
	}
	d.net = n
	if h := n.Hosts[0]; h.Name != drillName || h.Action != lab.Intercept || h.SendsRoot {
		return "", fmt.Errorf("the lab's first host is %s (%s, sends the root: %v), not an intercepting %s that keeps the root back", h.Name, h.Action, h.SendsRoot, drillName)
	}
	if h := n.Hosts[2]; h.Name != drillRootName || h.Action != lab.Intercept || !h.SendsRoot {
		return "", fmt.Errorf("the lab's third host is %s (%s, sends the root: %v), not an intercepting %s that sends the root", h.Name, h.Action, h.SendsRoot, drillRootName)
	}
	if blocklist.Embedded().MatchX509([]*x509.Certificate{n.NationalRoot}) != nil {
		return "", errors.New("the lab's national root is listed already")
	}
	// The maintainers' repository, publishing the current list, served on
	// loopback as a static mirror would serve it.
	now := time.Now()
	if err := update.InitRepo(d.repoDir, now); err != nil {
		return "", err
	}
	current, err := blocklist.Embedded().Marshal()
	if err != nil {
		return "", err
	}
	if _, err := update.Publish(d.repoDir, current, now); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	if err := copyDir(filepath.Join(d.repoDir, "repository"), filepath.Join(d.dir, "mirror-v1")); err != nil {
		return "", err
	}
	served := filepath.Join(d.repoDir, "repository")
	d.served.Store(&served)
	mirror := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.FileServer(http.Dir(*d.served.Load())).ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: mirror, ReadHeaderTimeout: drillTimeout}
	go srv.Serve(ln)
	context.AfterFunc(ctx, func() { srv.Close() })
	d.url = "http://" + ln.Addr().String()

	// The protected client: the update running on a schedule, and a Go
	// program whose HTTP client is guarded by the installed list.
	trusted, err := os.ReadFile(filepath.Join(d.repoDir, "repository", "1.root.json"))
	if err != nil {
		return "", err
	}
	d.updater = &update.Client{Mirrors: []string{d.url}, TrustedRoot: trusted, Dir: d.clientDir, MirrorTimeout: drillTimeout}
	if _, err := d.update(ctx); err != nil {
		return "", err
	}
	go func() {
		for ctx.Err() == nil {
			d.update(ctx) // a refused run keeps the installed list; the guard keeps enforcing it
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	d.policy = watch.Start(ctx, watch.Options{Dir: d.clientDir, Interval: 20 * time.Millisecond,
		OnSwap:  func(_, l *blocklist.List) { d.swapped <- l },
		OnError: func(error) {}})
	// The device trusts the national root, as users were told to install
	// it: without the list, the interception is invisible.
	roots := x509.NewCertPool()
	roots.AddCert(n.PublicRoot)
	roots.AddCert(n.NationalRoot)
	target := n.Hosts[0].Addr
	base := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, target)
		},
		DisableKeepAlives: true, TLSHandshakeTimeout: drillTimeout,
	}
	d.client = &http.Client{Transport: guard.Transport(base, guard.Options{Policy: d.policy}), Timeout: drillTimeout}
	if err := d.handshake(ctx); err != nil {
		return "", fmt.Errorf("before the update, the guarded client could not connect through the lab: %v", err)
	}
	return fmt.Sprintf("%d hosts; repository at %s (list version %d); the guarded client connects through the interceptor unwarned", len(n.Hosts), d.url, d.policy.List().Version), nil
}

// update runs the client's update once; the scheduled runs and the refusal
// steps share the folder, so they take turns.
func (d *drill) update(ctx context.Context) (*update.Result, error) {
	d.updating.Lock()
	defer d.updating.Unlock()
	return d.updater.Update(ctx)
}

// handshake makes one request to the intercepted name through the lab with
// the guarded client; any failure is returned.
func (d *drill) handshake(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "https://"+drillName+"/", nil)
	if err != nil {
		return err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func (d *drill) campaign(ctx context.Context) (string, error) {
	var hosts []string
	for _, h := range d.net.Hosts {
		hosts = append(hosts, h.Addr)
	}
	write := func(name, data string) (string, error) {
		p := filepath.Join(d.dir, name)
		return p, os.WriteFile(p, []byte(data), 0o644)
	}
	hostsFile, err := write("hosts.txt", strings.Join(hosts, "\n")+"\n")
	if err != nil {
		return "", err
	}
	domainsFile, err := write("domains.txt", strings.Join(append(append([]string{}, labTargeted...), labUntargeted...), "\n")+"\n")
	if err != nil {
		return "", err
	}
	rootsFile, err := write("public-root.pem", string(lab.PEM(d.net.PublicRoot)))
	if err != nil {
		return "", err
	}
	db := filepath.Join(d.dir, "campaign.db")
	var out strings.Builder
	args := []string{"probe", "--hosts", hostsFile, "--domains", domainsFile, "--roots", rootsFile, "--db", db,
		"--campaign", "drill", "--no-progress", "--timeout", "30s", "--min-timeout", "3s"}
	if code := run(args, &out, &out); code != 0 {
		return "", fmt.Errorf("probe exited %d: %s", code, out.String())
	}
	st, err := store.Open(db)
	if err != nil {
		return "", err
	}
	defer st.Close()
	c, err := st.Campaign(ctx, "drill")
	if err != nil {
		return "", err
	}
	counts, err := st.OutcomeCounts(ctx, c)
	if err != nil {
		return "", err
	}
	if counts[outcome.Suspected] == 0 {
		return "", fmt.Errorf("no mitm.suspected record: %v", counts)
	}
	return fmt.Sprintf("%d records mitm.suspected", counts[outcome.Suspected]), nil
}

func (d *drill) propose(ctx context.Context) (string, error) {
	st, err := store.Open(filepath.Join(d.dir, "campaign.db"))
	if err != nil {
		return "", err
	}
	defer st.Close()
	res, err := propose.Find(ctx, st, "drill", propose.Options{})
	if err != nil {
		return "", err
	}
	if len(res.Proposals) != 1 {
		return "", fmt.Errorf("%d proposals, want 1", len(res.Proposals))
	}
	p := res.Proposals[0]
	root := sha256.Sum256(d.net.NationalRoot.RawSubjectPublicKeyInfo)
	if p.SPKISHA256 != hex.EncodeToString(root[:]) || !p.RootSent {
		return "", fmt.Errorf("the proposal names %q (key %s, root sent %v), not the lab's national root", p.Subject, p.SPKISHA256, p.RootSent)
	}
	intercepting := 0
	for _, h := range d.net.Hosts {
		if h.Action == lab.Intercept {
			intercepting++
		}
	}
	if len(p.Hosts) != intercepting {
		return "", fmt.Errorf("the proposal counts %d hosts, want the %d intercepting ones, whether or not their box sent the root", len(p.Hosts), intercepting)
	}
	if err := propose.WriteBundle(filepath.Join(d.dir, "proposal"), res, time.Now()); err != nil {
		return "", err
	}
	d.entryID = propose.EntryID(p)
	return fmt.Sprintf("%s (%s, over %d intermediate): %d hosts, %d domains, confidence %s", d.entryID, p.Subject, len(p.Intermediates), len(p.Hosts), len(p.Domains), p.Confidence), nil
}

func (d *drill) publish(context.Context) (string, error) {
	proposed, err := os.ReadFile(filepath.Join(d.dir, "proposal", "proposed.json"))
	if err != nil {
		return "", err
	}
	pl, err := blocklist.Parse(proposed, "proposed.json")
	if err != nil {
		return "", err
	}
	current := d.policy.List()
	m, err := blocklist.MergeProposal(current, pl, blocklist.MergeOptions{})
	if err != nil {
		return "", err
	}
	data, err := m.List.Marshal()
	if err != nil {
		return "", err
	}
	v, err := update.Publish(d.repoDir, data, time.Now())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("added %d entry; published list version %d", len(m.Added), v), nil
}

func (d *drill) pickUp(ctx context.Context) (string, error) {
	timeout := time.After(drillTimeout)
	for {
		select {
		case l := <-d.swapped:
			if l.ByID(d.entryID) != nil {
				return fmt.Sprintf("list version %d in force", l.Version), nil
			}
		case <-timeout:
			return "", fmt.Errorf("no list naming %s within %s", d.entryID, drillTimeout)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (d *drill) refused(ctx context.Context) (string, error) {
	err := d.handshake(ctx)
	var ie *guard.InterceptionError
	if !errors.As(err, &ie) {
		return "", fmt.Errorf("the guarded connection was not refused as interception: %v", err)
	}
	d.final = outcome.Known(ie.Entry.ID)
	if ie.Entry.ID != d.entryID {
		return "", fmt.Errorf("refused as %s, want %s", d.final, outcome.Known(d.entryID))
	}
	return string(d.final), nil
}

// check runs check, with the list update installed (what the command
// reads from the active folder), against a box that keeps the root back and
// one that sends it.
func (d *drill) check(ctx context.Context) (string, error) {
	installed, _, err := active.Load(d.clientDir)
	if err != nil {
		return "", err
	}
	cl := verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{d.net.PublicRoot}, Blocklist: installed})
	want := outcome.Known(d.entryID)
	var seen []string
	for _, h := range []lab.NetHost{d.net.Hosts[0], d.net.Hosts[2]} {
		r := check.Run(ctx, h.Name, check.Options{Classifier: cl, Connect: h.Addr, Timeout: drillTimeout})
		if r.Outcome != want {
			return "", fmt.Errorf("check %s (box sends the root: %v): %s, want %s", h.Name, h.SendsRoot, r.Outcome, want)
		}
		seen = append(seen, fmt.Sprintf("%s (root sent: %v)", h.Name, h.SendsRoot))
	}
	return fmt.Sprintf("%s on %s", want, strings.Join(seen, ", ")), nil
}

// audit reads a device, under a temporary root, whose trust store holds
// only the lab's national root (as users were told to install it): the
// embedded list does not know it; the list the update installed names it.
func (d *drill) audit(context.Context) (string, error) {
	root := filepath.Join(d.dir, "device")
	bundle := filepath.Join(root, "etc", "ssl", "certs", "ca-certificates.crt")
	if err := os.MkdirAll(filepath.Dir(bundle), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(bundle, lab.PEM(d.net.NationalRoot), 0o644); err != nil {
		return "", err
	}
	stores, err := truststore.Read(truststore.Options{Root: root})
	if err != nil {
		return "", err
	}
	if rep := truststore.Audit(stores, blocklist.Embedded()); rep.TrustsKnownInterception() {
		return "", fmt.Errorf("before the update the audit already flagged %+v", rep.Flagged())
	}
	installed, _, err := active.Load(d.clientDir)
	if err != nil {
		return "", err
	}
	rep := truststore.Audit(stores, installed)
	for _, f := range rep.Findings {
		if f.Status == truststore.KnownInterception && f.EntryID == d.entryID {
			return fmt.Sprintf("%s (%s) in %s: %s; not known before the update", f.EntryID, f.Subject, f.StorePath, f.Status), nil
		}
	}
	return "", fmt.Errorf("audit did not name %s: %+v", d.entryID, rep.Findings)
}

// drillFlags are lab's --drill flags.
type drillFlags struct{ on, json bool }

func addDrillFlags(cmd *cobra.Command) *drillFlags {
	f := &drillFlags{}
	cmd.Flags().BoolVar(&f.on, "drill", false, "run the closed loop on this machine (campaign, proposal, publication, update, guarded refusal), print each step's time, and exit")
	cmd.Flags().BoolVar(&f.json, "json", false, "with --drill: print the steps as JSON")
	return f
}

// tampered publishes a next version, in a copy of the repository, whose
// list a mirror then alters (same length, another id): the update is
// refused, and the guard still refuses the interceptor with the list in
// force. The real repository is left at the version in force, so that the
// running update never installs anything meanwhile.
func (d *drill) tampered(ctx context.Context) (string, error) {
	data, err := d.policy.List().Marshal()
	if err != nil {
		return "", err
	}
	forged := filepath.Join(d.dir, "tuf-tampered")
	if err := copyDir(d.repoDir, forged); err != nil {
		return "", err
	}
	v, err := update.Publish(forged, data, time.Now())
	if err != nil {
		return "", err
	}
	bad := filepath.Join(forged, "repository")
	targets, err := filepath.Glob(filepath.Join(bad, "targets", "*.json"))
	if err != nil || len(targets) == 0 {
		return "", fmt.Errorf("no published list to tamper with in %s", bad)
	}
	for _, t := range targets {
		b, err := os.ReadFile(t)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(t, []byte(strings.ReplaceAll(string(b), `"proposed-`, `"proposex-`)), 0o644); err != nil {
			return "", err
		}
	}
	refusal, err := d.refusedUpdate(ctx, bad, "target")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("version %d altered on the mirror: %s", v, refusal), nil
}

// rolledBack serves the repository as it was before the proposal was
// published: the update is refused, and the guard keeps the newer list.
func (d *drill) rolledBack(ctx context.Context) (string, error) {
	refusal, err := d.refusedUpdate(ctx, filepath.Join(d.dir, "mirror-v1"), "metadata")
	if err != nil {
		return "", err
	}
	return "the repository of list version 1 served again: " + refusal, nil
}

// refusedUpdate serves dir, runs the update once, and checks that it was
// refused at stage (not for some other reason), that the installed list is
// still the one naming the proposal (the watcher polls, so the guard's list
// alone would not yet show a bad install) and that the guard still enforces
// it (a fresh connection through the lab is still refused); then it serves
// the real repository again.
func (d *drill) refusedUpdate(ctx context.Context, dir, stage string) (string, error) {
	before := d.policy.List()
	d.served.Store(&dir)
	defer func() {
		real := filepath.Join(d.repoDir, "repository")
		d.served.Store(&real)
	}()
	_, uerr := d.update(ctx)
	var ue *update.Error
	if !errors.As(uerr, &ue) || ue.Stage != stage {
		return "", fmt.Errorf("the update gave %v, want a refusal at the %s stage", uerr, stage)
	}
	installed, _, err := update.Active(d.clientDir)
	if err != nil {
		return "", err
	}
	if installed.Version != before.Version || installed.ByID(d.entryID) == nil {
		return "", fmt.Errorf("the refused update installed list version %d", installed.Version)
	}
	if l := d.policy.List(); l.Version != before.Version || l.ByID(d.entryID) == nil {
		return "", fmt.Errorf("the guard swapped to list version %d", l.Version)
	}
	var ie *guard.InterceptionError
	if err := d.handshake(ctx); !errors.As(err, &ie) || ie.Entry.ID != d.entryID {
		return "", fmt.Errorf("after the refused update the guarded connection gave %v", err)
	}
	return fmt.Sprintf("refused (%v); list version %d still enforced", uerr, before.Version), nil
}

// copyDir copies the regular files and folders under from to to.
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
