package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/store/storetest"
)

// hostsWithRecords stores one intercepted record per (host, SNI).
func hostsWithRecords(t *testing.T, st store.Store, c *store.Campaign, snis []string, hosts ...string) {
	t.Helper()
	var in []*measure.HostResult
	for _, h := range hosts {
		hr := &measure.HostResult{Control: measure.Control{Vantage: "local", Host: h, SNI: "ctl.control.mitmguard.invalid", Outcome: outcome.OK}}
		for _, sni := range snis {
			hr.Records = append(hr.Records, measure.Record{Vantage: "local", Host: h, SNI: sni, Outcome: outcome.Suspected, Time: time.Now(), Attempts: 1})
		}
		in = append(in, hr)
	}
	if _, err := st.Write(context.Background(), c, in); err != nil {
		t.Fatal(err)
	}
}

// The report places interception per host from the stored traces (the
// closest box of a host's traces, a failure when none finished) and draws
// the histogram of hops before the server in text, JSON, CSV and HTML; a
// campaign without traces shows none of it.
func TestReportLocations(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bare := &store.Campaign{ID: "bare", Started: time.Now().Add(-time.Hour), Params: "{}"}
	c := &store.Campaign{ID: "traced", Started: time.Now(), Params: "{}"}
	for _, camp := range []*store.Campaign{bare, c} {
		if err := st.CreateCampaign(ctx, camp); err != nil {
			t.Fatal(err)
		}
		hostsWithRecords(t, st, camp, []string{"facebook.com", "vk.com"}, "10.77.5.2:443", "10.77.6.2:443", "10.77.7.2:443", "10.77.8.2:443")
	}

	// Without traces: no section, no JSON fields, no CSV files.
	rep, err := Build(ctx, st, "bare")
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	js, _ := json.Marshal(rep)
	if strings.Contains(text.String(), "where interception starts") || bytes.Contains(js, []byte("hops_before_server")) || bytes.Contains(js, []byte(`"locations"`)) {
		t.Errorf("a campaign without traces shows hop results:\n%s\n%s", text.String(), js)
	}
	if err := rep.WriteCSV(ctx, st, filepath.Join(dir, "bare")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bare", "locations.csv")); err == nil {
		t.Error("locations.csv written for a campaign without traces")
	}

	// Host 5.2: box 3 hops before a server 6 away, seen on two names, the
	// second placing it one hop later. Host 6.2: 2 before 6. Host 7.2: box
	// at 5 of 6, server distance unknown. Host 8.2: the trace failed.
	write := func(tr *store.Trace) {
		t.Helper()
		if err := st.WriteTrace(ctx, c, tr); err != nil {
			t.Fatal(err)
		}
	}
	write(storetest.LocatedTrace("local", "10.77.5.2:443", "facebook.com"))
	later := storetest.LocatedTrace("local", "10.77.5.2:443", "vk.com")
	four := 4
	later.Result.FirstForgedHop = &four
	write(later)
	h6 := storetest.LocatedTrace("local", "10.77.6.2:443", "vk.com")
	h6.Result.FirstForgedHop = &four
	write(h6)
	h7 := storetest.LocatedTrace("local", "10.77.7.2:443", "vk.com")
	five := 5
	h7.Result.FirstForgedHop, h7.Result.ServerHops = &five, nil
	write(h7)
	write(&store.Trace{Vantage: "local", Host: "10.77.8.2:443", SNI: "facebook.com", Time: time.Now(), Error: "locate: cannot connect to 10.77.8.2:443"})
	// A row that says located with no hop (an edited database) is taken
	// for what it holds, not followed.
	odd := storetest.LocatedTrace("local", "10.77.7.2:443", "facebook.com")
	odd.Result.FirstForgedHop = nil
	write(odd)

	rep, err = Build(ctx, st, "traced")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Locations) != 4 {
		t.Fatalf("%d locations: %+v", len(rep.Locations), rep.Locations)
	}
	l := rep.Locations[0]
	if l.Host != "10.77.5.2:443" || *l.FirstForgedHop != 3 || *l.LastCleanRouter != "10.77.1.2" || *l.ServerHops != 6 || *l.HopsBeforeServer != 3 ||
		strings.Join(l.Traced, " ") != "facebook.com vk.com" || l.Finding != locate.Located || !l.RoutersVisible {
		t.Errorf("host 5.2: %+v", l)
	}
	if l := rep.Locations[2]; l.HopsBeforeServer != nil || *l.FirstForgedHop != 5 || len(l.Traced) != 2 {
		t.Errorf("host 7.2 (server distance unknown): %+v", l)
	}
	if l := rep.Locations[3]; l.Finding != store.FailedFinding || !strings.Contains(l.Error, "cannot connect") || l.FirstForgedHop != nil {
		t.Errorf("host 8.2 (failed): %+v", l)
	}
	if want := []HopCount{{2, 1}, {3, 1}}; len(rep.HopsBeforeServer) != 2 || rep.HopsBeforeServer[0] != want[0] || rep.HopsBeforeServer[1] != want[1] {
		t.Errorf("histogram %+v, want %+v", rep.HopsBeforeServer, want)
	}

	text.Reset()
	rep.WriteText(&text)
	for _, w := range []string{"where interception starts (probe --locate, 4 hosts traced):", "hops before the server", "10.77.1.2", "cannot connect"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
	js, _ = json.Marshal(rep)
	if !bytes.Contains(js, []byte(`"hops_before_server":[{"hops":2,"hosts":1},{"hops":3,"hosts":1}]`)) {
		t.Errorf("JSON histogram: %s", js)
	}
	if err := rep.WriteCSV(ctx, st, filepath.Join(dir, "csv")); err != nil {
		t.Fatal(err)
	}
	for name, rows := range map[string]int{"locations.csv": 5, "hops_before_server.csv": 3} {
		fh, err := os.Open(filepath.Join(dir, "csv", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil || len(got) != rows {
			t.Errorf("%s: %d rows, %v", name, len(got), err)
		}
	}

	html := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "<td>10.77.1.2</td>") || !strings.Contains(buf.String(), "Where interception starts") {
		t.Error("the HTML report lacks the locations table")
	}
	if err := os.WriteFile(html, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := renderDOM(t, html)
	checkCharts(t, dom, map[string]int{"hops-before-server": 2})
	if !strings.Contains(dom, `data-value="0.5000"`) {
		t.Error("the hop chart does not show each bar's half of the hosts")
	}
}

// better ranks a host's traces: a located one with a hop beats any other
// (the closer box first), a finished one beats a failed one, and a row
// that says located without a hop counts as not located.
func TestBetterTrace(t *testing.T) {
	hop := func(n int) *int { return &n }
	located := func(n int) store.Trace {
		return store.Trace{Result: locate.Result{Finding: locate.Located, FirstForgedHop: hop(n)}}
	}
	finished := store.Trace{Result: locate.Result{Finding: locate.Clean}}
	failed := store.Trace{Error: "locate: cannot connect", Result: locate.Result{Finding: store.FailedFinding}}
	noHop := store.Trace{Result: locate.Result{Finding: locate.Located}}
	for _, tc := range []struct {
		name string
		a, b store.Trace
		want bool
	}{
		{"closer box", located(3), located(4), true},
		{"farther box", located(4), located(3), false},
		{"same box", located(3), located(3), false},
		{"located over finished", located(9), finished, true},
		{"finished under located", finished, located(9), false},
		{"located over no hop", located(9), noHop, true},
		{"no hop under located", noHop, located(9), false},
		{"finished over failed", finished, failed, true},
		{"failed under finished", failed, finished, false},
		{"failed over failed", failed, failed, false},
	} {
		if got := better(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: better %v, want %v", tc.name, got, tc.want)
		}
	}
}
