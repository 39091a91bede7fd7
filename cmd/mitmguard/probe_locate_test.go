package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/report"
	"github.com/mitmguard/mitmguard/store"
)

// storedTraces reads a campaign's traces from the database file.
func storedTraces(t *testing.T, db, campaign string) []store.Trace {
	t.Helper()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Campaign(context.Background(), campaign)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Trace
	if err := st.Traces(context.Background(), c, func(tr store.Trace) error { out = append(out, tr); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// reportJSON runs report --json on db and decodes it.
func reportJSON(t *testing.T, db string) report.Report {
	t.Helper()
	var out, errs strings.Builder
	if code := run([]string{"report", "--db", db, "--json"}, &out, &errs); code != 0 {
		t.Fatalf("report exited %d: %s", code, errs.String())
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// probe --locate over the loopback lab network: every host is one hop away,
// so each trace is forged at TTL 1, with the server 1 hop away; the budget
// takes one pair per host first; report shows it. Then, with the lab gone,
// probe --resume --locate traces the pairs left: each fails with its reason
// stored, and the probe still succeeds.
func TestProbeLocateLoopback(t *testing.T) {
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: []lab.Action{lab.Intercept, lab.Pass, lab.Intercept, lab.Reset}, Domains: labTargeted[:3], ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var hosts []string
	for _, h := range n.Hosts {
		hosts = append(hosts, h.Addr)
	}
	hostsFile := write("hosts.txt", strings.Join(hosts, "\n"))
	domainsFile := write("domains.txt", strings.Join(append(slices.Clone(labTargeted[:3]), labUntargeted[0]), "\n"))
	rootFile := write("root.pem", string(lab.PEM(n.PublicRoot)))
	db := filepath.Join(dir, "m.db")
	common := []string{"--hosts", hostsFile, "--roots", rootFile, "--db", db, "--campaign", "c1", "--no-progress", "--json",
		"--timeout", "30s", "--min-timeout", "3s", "--locate", "--locate-timeout", "10s", "--max-hops", "4"}

	var out, errs strings.Builder
	if code := run(append([]string{"probe", "--domains", domainsFile, "--locate-budget", "3"}, common...), &out, &errs); code != 0 {
		t.Fatalf("probe --locate exited %d:\n%s\n%s", code, out.String(), errs.String())
	}
	var sum struct{ Locate locateStats }
	if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
		t.Fatal(err)
	}
	// 2 intercepting hosts x 3 targeted names; the budget traces 3.
	if want := (locateStats{Candidates: 6, Traced: 3, Located: 3, OverBudget: 3}); sum.Locate != want {
		t.Fatalf("locate summary %+v, want %+v\n%s", sum.Locate, want, errs.String())
	}
	if !strings.Contains(errs.String(), "locate: tracing 3 of 6 intercepted pairs") {
		t.Errorf("no word of the locate phase:\n%s", errs.String())
	}
	traces := storedTraces(t, db, "c1")
	perHost := map[string]int{}
	for _, tr := range traces {
		r := tr.Result
		perHost[tr.Host]++
		if tr.Error != "" || r.Finding != locate.Located || !ptr(r.FirstForgedHop, 1) || r.LastCleanRouter != nil || !ptr(r.ServerHops, 1) ||
			len(r.Hops) != 1 || r.Hops[0].Outcome != "mitm.suspected" || n.Truth(tr.Host, tr.SNI) != lab.Intercept {
			t.Errorf("trace %s %s: %q %+v", tr.Host, tr.SNI, tr.Error, r)
		}
	}
	if len(traces) != 3 || perHost[n.Hosts[0].Addr] != 2 || perHost[n.Hosts[2].Addr] != 1 {
		t.Errorf("traces per host %v, want one per intercepting host first", perHost)
	}
	rep := reportJSON(t, db)
	if len(rep.Locations) != 2 || len(rep.HopsBeforeServer) != 1 || rep.HopsBeforeServer[0] != (report.HopCount{Hops: 0, Hosts: 2}) {
		t.Errorf("report: locations %+v, histogram %+v", rep.Locations, rep.HopsBeforeServer)
	}

	// The lab is gone: the three pairs left fail, each with its reason.
	n.Close()
	out.Reset()
	errs.Reset()
	if code := run(append([]string{"probe", "--resume"}, common...), &out, &errs); code != 0 {
		t.Fatalf("probe --resume --locate exited %d:\n%s\n%s", code, out.String(), errs.String())
	}
	if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
		t.Fatal(err)
	}
	if want := (locateStats{Candidates: 3, Traced: 3, Failed: 3}); sum.Locate != want {
		t.Fatalf("locate summary after the lab closed %+v, want %+v\n%s", sum.Locate, want, errs.String())
	}
	failed := 0
	for _, tr := range storedTraces(t, db, "c1") {
		if tr.Error != "" {
			failed++
			if tr.Result.Finding != store.FailedFinding || !strings.Contains(tr.Error, "cannot connect") {
				t.Errorf("failed trace %s %s: %q, %s", tr.Host, tr.SNI, tr.Error, tr.Result.Finding)
			}
		}
	}
	if failed != 3 {
		t.Errorf("%d failed traces stored, want 3", failed)
	}
	// The report keeps each host's located trace over a failed one.
	if rep := reportJSON(t, db); len(rep.Locations) != 2 || rep.Locations[0].Error != "" || rep.Locations[1].Error != "" {
		t.Errorf("report after failures: %+v", rep.Locations)
	}
}

// probe --locate over the hop lab, in its client namespace: the box on
// router 3 of 5 is stored as first forged at hop 3 past router 2, with the
// server 6 hops away, and report --json's histogram says 3 hops before the
// server. Run as nobody, the same hops are found without the routers'
// addresses, and the server's distance still (it needs no privilege).
func TestProbeLocateHopLab(t *testing.T) {
	h, dir := hopLab(t, "mgt-pl", lab.HopsConfig{Routers: 5, BoxAt: 3})
	probeIn := func(dir string, prefix ...string) (string, string) {
		t.Helper()
		write := func(name, data string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		db := filepath.Join(dir, "m.db")
		args := append(append([]string{"netns", "exec", h.ClientNetns}, prefix...), os.Args[0], "probe", "--hosts", write("hosts.txt", h.Server+"\n"),
			"--domains", write("domains.txt", "facebook.com\ngithub.com\n"), "--roots", filepath.Join(dir, "public-root.pem"), "--db", db,
			"--campaign", "hops", "--allow-special", "10.77.0.0/16", "--no-progress", "--timeout", "30s", "--min-timeout", "3s",
			"--locate", "--locate-timeout", "5s")
		cmd := exec.Command("ip", args...)
		cmd.Env = append(os.Environ(), mainEnv+"=1", "HOME="+dir, "XDG_CACHE_HOME="+dir, "MITMGUARD_DIR="+filepath.Join(dir, "state"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe --locate in %s: %v\n%s", h.ClientNetns, err, out)
		}
		return db, string(out)
	}
	db, out := probeIn(dir)
	traces := storedTraces(t, db, "hops")
	if len(traces) != 1 {
		t.Fatalf("%d traces, want 1 (facebook.com):\n%s", len(traces), out)
	}
	tr := traces[0]
	r := tr.Result
	if tr.Host != h.Server || tr.SNI != "facebook.com" || tr.Error != "" || r.Finding != locate.Located || !ptr(r.FirstForgedHop, 3) ||
		!ptr(r.LastCleanRouter, h.Routers[1]) || !ptr(r.ServerHops, 6) || !r.RoutersVisible || len(r.Hops) != 3 || !ptr(r.Hops[0].Router, h.Routers[0]) {
		t.Fatalf("trace %+v\n%s", tr, out)
	}
	rep := reportJSON(t, db)
	if len(rep.HopsBeforeServer) != 1 || rep.HopsBeforeServer[0] != (report.HopCount{Hops: 3, Hosts: 1}) || len(rep.Locations) != 1 ||
		!ptr(rep.Locations[0].LastCleanRouter, h.Routers[1]) {
		t.Fatalf("report: histogram %+v, locations %+v", rep.HopsBeforeServer, rep.Locations)
	}

	bin, nobody := asNobody(t, dir)
	saved := os.Args[0]
	os.Args[0] = filepath.Join(bin, "mitmguard.test")
	defer func() { os.Args[0] = saved }()
	db, out = probeIn(bin, nobody...)
	traces = storedTraces(t, db, "hops")
	if len(traces) != 1 {
		t.Fatalf("as nobody: %d traces, want 1:\n%s", len(traces), out)
	}
	r = traces[0].Result
	if r.Finding != locate.Located || !ptr(r.FirstForgedHop, 3) || r.LastCleanRouter != nil || !ptr(r.ServerHops, 6) || r.RoutersVisible ||
		len(r.Notes) < 2 || !strings.Contains(r.Notes[0], "needs root or CAP_NET_RAW") {
		t.Fatalf("as nobody: %+v\n%s", r, out)
	}
}

// --allow-special opens a hole of exactly its network in the excluded
// ranges.
func TestAllowSpecial(t *testing.T) {
	exclude, err := allowSpecial(slices.Clone(measure.DefaultExcluded), []string{"10.77.0.0/16", "2001:db8:77::1", "::ffff:192.168.7.7"})
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(s string) bool {
		a := netip.MustParseAddr(s)
		return slices.ContainsFunc(exclude, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	for a, want := range map[string]bool{
		"10.77.5.2": false, "10.77.0.0": false, "10.77.255.255": false, "10.76.255.255": true, "10.78.0.0": true, "10.0.0.1": true,
		"10.255.255.255": true, "192.168.1.1": true, "2001:db8:77::1": false, "2001:db8:77::2": true, "8.8.8.8": false,
		"192.168.7.7": false, "192.168.7.8": true,
	} {
		if excluded(a) != want {
			t.Errorf("%s excluded: %v, want %v", a, !want, want)
		}
	}
}

// --allow-special ::/0 (or ::ffff:0:0/96) opens the IPv6 special ranges,
// not IPv4's through their IPv4-mapped form: a hosts CIDR of mapped
// addresses dials the IPv4 address it maps.
func TestAllowSpecialKeepsMappedIPv4Excluded(t *testing.T) {
	for _, allow := range []string{"::/0", "::ffff:0:0/96", "::ffff:10.0.0.0/104"} {
		exclude, err := allowSpecial(slices.Clone(measure.DefaultExcluded), []string{allow})
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan string, 64)
		hosts := "::ffff:10.0.0.0/126\n::ffff:169.254.169.254\n::ffff:192.168.1.0/127\n::ffff:8.8.8.8\n2001:db8::1\n"
		if _, err := measure.ReadHosts(context.Background(), strings.NewReader(hosts), exclude, out); err != nil {
			t.Fatal(err)
		}
		close(out)
		var got []string
		for h := range out {
			got = append(got, h)
		}
		want := []string{"8.8.8.8:443", "[2001:db8::1]:443"}
		if allow != "::/0" {
			want = want[:1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("--allow-special %s: probed %q, want %q", allow, got, want)
		}
	}
}

// probe --locate traces only pairs whose host this run may probe: a
// campaign's records (an earlier run with --allow-special, or a database
// from someone else) do not lead it to a range the run excludes.
func TestLocatePairsKeepExclusions(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "old", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	var in []*measure.HostResult
	for _, h := range []string{"127.0.0.1:443", "10.1.2.3:443", "[::ffff:192.168.1.1]:443", "[fe80::1]:443", "169.254.169.254:443"} {
		in = append(in, &measure.HostResult{Control: measure.Control{Vantage: "kz", Host: h, SNI: "ctl.control.mitmguard.invalid", Outcome: outcome.OK},
			Records: []measure.Record{{Vantage: "kz", Host: h, SNI: "facebook.com", Outcome: outcome.Suspected, Time: time.Now(), Attempts: 1}}})
	}
	if _, err := st.Write(ctx, c, in); err != nil {
		t.Fatal(err)
	}
	jobs, n, err := locatePairs(ctx, st, c, "kz", 10, slices.Clone(measure.DefaultExcluded))
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].host != "127.0.0.1:443" || n != 1 {
		t.Errorf("pairs to trace: %+v of %d, want only 127.0.0.1:443's", jobs, n)
	}
}

// --allow-special 0.0.0.0/0 and ::/0 open every special range but not the
// addresses no handshake can be made with: probe --locate never traces a
// multicast, broadcast or unspecified host a database names.
func TestAllowSpecialKeepsMulticastClosed(t *testing.T) {
	exclude, err := allowSpecial(slices.Clone(measure.DefaultExcluded), []string{"0.0.0.0/0", "::/0"})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"10.0.0.1:443": true, "[fe80::1]:443": true, "192.168.1.1:443": true,
		"224.0.0.1:443": false, "239.255.255.250:1900": false, "[ff02::1]:443": false, "[::ffff:224.0.0.251]:5353": false,
		"255.255.255.255:443": false, "0.0.0.0:443": false, "[::]:443": false,
	} {
		if mayProbe(host, exclude) != want {
			t.Errorf("may probe %s: %v, want %v", host, !want, want)
		}
	}
}
