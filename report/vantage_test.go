package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// writeHosts stores, through the store API, what each vantage point saw:
// seen[vantage][host] lists the outcomes of a.com and b.com.
func writeHosts(t *testing.T, st store.Store, c *store.Campaign, seen map[string]map[string][2]outcome.Outcome) {
	t.Helper()
	when := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for v, hosts := range seen {
		var batch []*measure.HostResult
		for h, outs := range hosts {
			hr := &measure.HostResult{Control: measure.Control{Vantage: v, Host: h, SNI: "control.invalid", Outcome: outcome.InvalidHostname}}
			for i, sni := range []string{"a.com", "b.com"} {
				r := measure.Record{Vantage: v, Host: h, SNI: sni, Outcome: outs[i], Time: when, Attempts: 1}
				if outs[i].Intercepted() {
					r.Issuer = "Security Certificate"
				}
				hr.Records = append(hr.Records, r)
			}
			batch = append(batch, hr)
		}
		if _, err := st.Write(context.Background(), c, batch); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVantageComparison(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "two-sides", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	mitm, ok, dial, reset := outcome.Known("kz-2019"), outcome.OK, outcome.ErrorDial, outcome.BlockedReset
	writeHosts(t, st, c, map[string]map[string][2]outcome.Outcome{
		"kz-almaty": {
			"10.0.0.1:443": {mitm, ok},   // a.com: intercepted here, clean from us-east
			"10.0.0.2:443": {mitm, mitm}, // a.com intercepted from both; b.com only here
			"10.0.0.3:443": {ok, ok},
			"10.0.0.4:443": {dial, dial}, // no answer here: not "clean"
			"10.0.0.5:443": {ok, ok},     // measured from here only
		},
		"us-east": {
			"10.0.0.1:443": {ok, ok},
			"10.0.0.2:443": {mitm, ok},
			"10.0.0.3:443": {ok, reset},
			"10.0.0.4:443": {mitm, ok},
		},
	})
	// kz-almaty's operator declared its network and country; us-east's
	// declared nothing.
	for _, v := range []measure.Vantage{{Name: "kz-almaty", ASN: 9198, Country: "KZ"}, {Name: "us-east"}} {
		if _, err := st.DeclareVantage(ctx, c, v); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Build(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	wantTable := []Vantage{
		{Vantage: "kz-almaty", ASN: 9198, Country: "KZ", Hosts: 5, Intercepting: 2, HostShare: 0.4, Records: 10, Judged: 8, Intercepted: 3, Share: 3.0 / 8},
		{Vantage: "us-east", Hosts: 4, Intercepting: 2, HostShare: 0.5, Records: 8, Judged: 8, Intercepted: 2, Share: 2.0 / 8},
	}
	if !reflect.DeepEqual(rep.Vantages, wantTable) {
		t.Errorf("vantages\n%+v\nwant\n%+v", rep.Vantages, wantTable)
	}
	wantDiv := []Divergence{
		{Host: "10.0.0.1:443", SNI: "a.com", InterceptedFrom: []string{"kz-almaty"}, CleanFrom: []string{"us-east"}},
		{Host: "10.0.0.2:443", SNI: "b.com", InterceptedFrom: []string{"kz-almaty"}, CleanFrom: []string{"us-east"}},
	}
	if !reflect.DeepEqual(rep.Divergent, wantDiv) {
		t.Errorf("divergent\n%+v\nwant\n%+v", rep.Divergent, wantDiv)
	}
	// The rest of the report is unchanged by vantage points.
	if rep.Records != 18 || rep.Hosts != 5 || rep.Outcomes[mitm] != 5 {
		t.Errorf("records %d, hosts %d, outcomes %v", rep.Records, rep.Hosts, rep.Outcomes)
	}

	js, _ := json.Marshal(rep)
	for _, w := range []string{`"vantages":[{"vantage":"kz-almaty","asn":9198,"country":"KZ","hosts":5,"intercepting_hosts":2,"intercepting_share":0.4,"records":10,"judged":8,"intercepted":3,"intercepted_share":0.375}`,
		`{"vantage":"us-east","hosts":4,`, `"vantage_divergent":[{"host":"10.0.0.1:443","sni":"a.com","intercepted_from":["kz-almaty"],"clean_from":["us-east"]}`} {
		if !strings.Contains(string(js), w) {
			t.Errorf("JSON lacks %s:\n%s", w, js)
		}
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, w := range []string{"per vantage point:", "kz-almaty            AS9198       KZ            5             2 ( 40.0%)                3 ( 37.5%)",
		"us-east              -            -             4             2 ( 50.0%)                2 ( 25.0%)",
		"clean from another: 2 pairs", "10.0.0.2:443             b.com                    intercepted from kz-almaty, clean from us-east"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
	if err := rep.WriteCSV(ctx, st, filepath.Join(dir, "csv")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][][]string{
		"vantages.csv": {{"vantage", "asn", "country", "hosts", "intercepting_hosts", "intercepting_share", "records", "judged", "intercepted", "intercepted_share"},
			{"kz-almaty", "AS9198", "KZ", "5", "2", "0.4000", "10", "8", "3", "0.3750"}, {"us-east", "", "", "4", "2", "0.5000", "8", "8", "2", "0.2500"}},
		"vantage_divergent.csv": {{"host", "sni", "intercepted_from", "clean_from"},
			{"10.0.0.1:443", "a.com", "kz-almaty", "us-east"}, {"10.0.0.2:443", "b.com", "kz-almaty", "us-east"}},
	} {
		fh, err := os.Open(filepath.Join(dir, "csv", name))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil || !reflect.DeepEqual(rows, want) {
			t.Errorf("%s: %v %v, want %v", name, rows, err, want)
		}
	}
	html := filepath.Join(dir, "report.html")
	if err := writeHTMLFile(rep, html); err != nil {
		t.Fatal(err)
	}
	dom := renderDOM(t, html)
	checkCharts(t, dom, map[string]int{"vantages": 2})
	for _, w := range []string{`data-value="0.4000"`, `data-value="0.5000"`, "<td>kz-almaty</td><td>AS9198</td><td>KZ</td>", "<td>us-east</td><td>-</td><td>-</td>", ">kz-almaty AS9198 KZ<", "<td>10.0.0.2:443</td><td>b.com</td><td>kz-almaty </td><td>us-east </td>"} {
		if !strings.Contains(dom, w) {
			t.Errorf("HTML lacks %s", w)
		}
	}
}

// A campaign from one vantage point: a one-row table, no comparison shown.
func TestVantageSingle(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "one", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	writeHosts(t, st, c, map[string]map[string][2]outcome.Outcome{"local": {"10.0.0.1:443": {outcome.Suspected, outcome.OK}}})
	rep, err := Build(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Vantages) != 1 || rep.Vantages[0].Share != 0.5 || rep.Divergent == nil || len(rep.Divergent) != 0 {
		t.Errorf("vantages %+v, divergent %#v", rep.Vantages, rep.Divergent)
	}
	var text, html bytes.Buffer
	rep.WriteText(&text)
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "per vantage point") || strings.Contains(html.String(), "Per vantage point") {
		t.Error("a single vantage point shows a comparison")
	}
}

func writeHTMLFile(rep *Report, name string) error {
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		return err
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}
