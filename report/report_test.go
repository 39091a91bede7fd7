package report

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/verdict"
)

var (
	targeted   = []string{"facebook.com", "vk.com", "mail.ru"}
	untargeted = []string{"en.wikipedia.org", "github.com"}
)

// campaign runs a real campaign over a lab network into st.
func campaign(t *testing.T, st store.Store, n *lab.Network, id string) {
	t.Helper()
	c := &store.Campaign{ID: id, Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, len(n.Hosts))
	for _, h := range n.Hosts {
		ch <- h.Addr
	}
	close(ch)
	cfg := measure.Config{Domains: append(append([]string{}, targeted...), untargeted...), Concurrency: 16, PerHost: 3, Rate: 500,
		// Timeouts bound only the lab's stalls; a busy machine makes honest
		// handshakes take seconds (see measure's TestCampaignMatchesLabTruth).
		Timeout: 30 * time.Second, MinTimeout: 3 * time.Second,
		Classifier: verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{n.PublicRoot}})}
	if _, err := measure.Run(context.Background(), cfg, store.Bind(st, c), ch, false); err != nil {
		t.Fatal(err)
	}
}

func TestReportOverLab(t *testing.T) {
	hosts := []lab.Action{lab.Pass, lab.Intercept, lab.Reset, lab.Pass, lab.Intercept, lab.Stall, lab.Pass, lab.Intercept, lab.Close, lab.Pass}
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: hosts, Domains: targeted, ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	campaign(t, st, n, "first")
	campaign(t, st, n, "second")

	rep, err := Build(context.Background(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Campaign != "second" || rep.Hosts != len(hosts) || rep.Records != len(hosts)*5 {
		t.Fatalf("report of %s: %d hosts, %d records", rep.Campaign, rep.Hosts, rep.Records)
	}
	// Exactly the targeted domains, and exactly the intercepting hosts.
	want := slices.Clone(targeted)
	sort.Strings(want)
	if got := rep.InterceptedDomains(); !slices.Equal(got, want) {
		t.Errorf("intercepted domains %v, want %v", got, want)
	}
	var wantHosts, gotHosts []string
	for _, h := range n.Hosts {
		if h.Action == lab.Intercept {
			wantHosts = append(wantHosts, h.Addr)
		}
	}
	for _, h := range rep.Intercept {
		gotHosts = append(gotHosts, h.Host)
		if !slices.Equal(sortedCopy(h.Domains), want) || len(h.Issuers) != 1 || !strings.Contains(h.Issuers[0], "national root") {
			t.Errorf("host %s: %v by %v", h.Host, h.Domains, h.Issuers)
		}
	}
	sort.Strings(wantHosts)
	sort.Strings(gotHosts)
	if !slices.Equal(gotHosts, wantHosts) {
		t.Errorf("intercepting hosts %v, want %v", gotHosts, wantHosts)
	}
	for _, d := range rep.Domains {
		wantShare := 0.0
		if slices.Contains(targeted, d.Domain) {
			wantShare = 3.0 / 10
		}
		if d.Share != wantShare {
			t.Errorf("%s: share %v, want %v", d.Domain, d.Share, wantShare)
		}
	}
	if len(rep.Timeline) != 2 || rep.Timeline[0].Campaign != "first" || rep.Timeline[1].Intercepted != 9 {
		t.Errorf("timeline %+v", rep.Timeline)
	}
	traits := map[string]int{}
	for _, tr := range rep.Traits {
		traits[tr.Trait] = tr.Count
	}
	for _, tr := range []string{measure.TraitCopiedNames, measure.TraitOtherKey, measure.TraitRSAExponent3, "validity-shifted:6h0m0s"} {
		if traits[tr] != 9 {
			t.Errorf("trait %s: %d records, want 9", tr, traits[tr])
		}
	}

	var text bytes.Buffer
	rep.WriteText(&text)
	for _, w := range []string{"facebook.com", "3 of  10 hosts", "intercepting hosts: 3", "over time:"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text report lacks %q:\n%s", w, text.String())
		}
	}
	if err := rep.WriteCSV(context.Background(), st, filepath.Join(dir, "csv")); err != nil {
		t.Fatal(err)
	}
	fh, _ := os.Open(filepath.Join(dir, "csv", "records.csv"))
	rows, err := csv.NewReader(fh).ReadAll()
	fh.Close()
	if err != nil || len(rows) != 1+rep.Records {
		t.Errorf("records.csv: %d rows, %v", len(rows), err)
	}

	html := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(html, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`<link|(src|href)="https?://`).MatchString(buf.String()) {
		t.Error("the HTML report loads something from the network")
	}
	checkRendered(t, html, len(rep.Domains), len(rep.Networks), len(rep.Timeline))
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

// checkRendered opens the report in headless Chromium, with the network
// features off, and checks that its script drew every chart.
func checkRendered(t *testing.T, html string, domains, networks, timeline int) {
	t.Helper()
	dom := renderDOM(t, html)
	checkCharts(t, dom, map[string]int{"domains": domains, "networks": networks, "timeline": timeline})
	if !strings.Contains(dom, `data-value="0.3000"`) {
		t.Error("the domain chart does not show the 30% share")
	}
}

// renderDOM returns the page's DOM after its script ran in headless
// Chromium, with the network features off.
func renderDOM(t *testing.T, html string) string {
	t.Helper()
	bin := testtool.Need(t, "chromium", "chromium")
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--no-first-run", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--dump-dom", "file://"+html)
	var out bytes.Buffer
	cmd.Stdout = &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatal("chromium did not finish")
	}
	return out.String()
}

// checkCharts checks that the script ran and drew each chart with its bars.
func checkCharts(t *testing.T, dom string, charts map[string]int) {
	t.Helper()
	if !strings.Contains(dom, `data-rendered="yes"`) {
		t.Fatalf("the report's script did not run:\n%.2000s", dom)
	}
	for chart, rows := range charts {
		re := regexp.MustCompile(`<svg class="chart" data-chart="` + chart + `"[^>]*>(.*?)</svg>`)
		m := re.FindStringSubmatch(dom)
		if m == nil {
			t.Errorf("chart %s not drawn", chart)
			continue
		}
		if bars := strings.Count(m[1], `class="bar"`); bars != rows {
			t.Errorf("chart %s: %d bars, want %d", chart, bars, rows)
		}
	}
}
