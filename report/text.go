package report

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// WriteText prints the report for a terminal.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "campaign %s (started %s): %d hosts, %d records\n\noutcomes:\n", r.Campaign, r.Started.Format("2006-01-02 15:04 UTC"), r.Hosts, r.Records)
	for _, o := range slices.Sorted(maps.Keys(r.Outcomes)) {
		fmt.Fprintf(w, "  %-40s %d\n", o, r.Outcomes[o])
	}
	fmt.Fprintln(w, "\nintercepted domains (share of hosts):")
	any := false
	for _, d := range r.Domains {
		if d.Intercepted == 0 {
			continue
		}
		any = true
		fmt.Fprintf(w, "  %-28s %3d of %3d hosts (%5.1f%%)  by %s\n", d.Domain, d.Intercepted, d.Hosts, 100*d.Share, join(d.Issuers))
	}
	if !any {
		fmt.Fprintln(w, "  none")
	}
	fmt.Fprintf(w, "\nintercepting hosts: %d\n", len(r.Intercept))
	for _, h := range r.Intercept {
		fmt.Fprintf(w, "  %-24s %d domains, by %s\n", h.Host, len(h.Domains), join(h.Issuers))
	}
	if len(r.Traits) > 0 {
		fmt.Fprintln(w, "\nforged certificates' traits:")
		for _, t := range r.Traits {
			fmt.Fprintf(w, "  %-28s %d\n", t.Trait, t.Count)
		}
	}
	if len(r.Timeline) > 1 {
		fmt.Fprintln(w, "\nover time:")
		for _, p := range r.Timeline {
			fmt.Fprintf(w, "  %s  %-24s %5.1f%% intercepted of %d records\n", p.Started.Format("2006-01-02 15:04"), p.Campaign, 100*p.Share, p.Records)
		}
	}
}

// WriteCSV writes domains.csv, hosts.csv, networks.csv, timeline.csv,
// traits.csv and records.csv (every record of the campaign) into dir.
func (r *Report) WriteCSV(ctx context.Context, st store.Store, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
	tables := map[string][][]string{
		"domains.csv":  {{"domain", "hosts", "intercepted", "blocked", "intercepted_share", "issuers"}},
		"hosts.csv":    {{"host", "intercepted_domains", "issuers", "known_entries"}},
		"networks.csv": {{"network", "hosts", "intercepting", "intercepting_share"}},
		"timeline.csv": {{"campaign", "started", "records", "intercepted", "blocked", "intercepted_share"}},
		"traits.csv":   {{"trait", "count"}},
	}
	for _, d := range r.Domains {
		tables["domains.csv"] = append(tables["domains.csv"], []string{d.Domain, strconv.Itoa(d.Hosts), strconv.Itoa(d.Intercepted), strconv.Itoa(d.Blocked), f(d.Share), join(d.Issuers)})
	}
	for _, h := range r.Intercept {
		tables["hosts.csv"] = append(tables["hosts.csv"], []string{h.Host, join(h.Domains), join(h.Issuers), join(h.Known)})
	}
	for _, n := range r.Networks {
		tables["networks.csv"] = append(tables["networks.csv"], []string{n.Network, strconv.Itoa(n.Hosts), strconv.Itoa(n.Intercepting), f(n.Share)})
	}
	for _, p := range r.Timeline {
		tables["timeline.csv"] = append(tables["timeline.csv"], []string{p.Campaign, p.Started.Format("2006-01-02T15:04:05Z"), strconv.Itoa(p.Records), strconv.Itoa(p.Intercepted), strconv.Itoa(p.Blocked), f(p.Share)})
	}
	for _, t := range r.Traits {
		tables["traits.csv"] = append(tables["traits.csv"], []string{t.Trait, strconv.Itoa(t.Count)})
	}
	for name, rows := range tables {
		if err := writeCSV(filepath.Join(dir, name), func(w *csv.Writer) error { return w.WriteAll(rows) }); err != nil {
			return err
		}
	}
	c, err := st.Campaign(ctx, r.Campaign)
	if err != nil {
		return err
	}
	return writeCSV(filepath.Join(dir, "records.csv"), func(w *csv.Writer) error {
		w.Write([]string{"host", "sni", "outcome", "time", "attempts", "issuer", "traits", "chain_sha256", "control_sni", "control_outcome", "control_chain_sha256", "error", "vantage"})
		return st.Records(ctx, c, func(rec measure.Record, ctl measure.Control) error {
			return w.Write([]string{rec.Host, rec.SNI, string(rec.Outcome), rec.Time.Format("2006-01-02T15:04:05.000Z"), strconv.Itoa(rec.Attempts),
				rec.Issuer, strings.Join(rec.Traits, " "), hashes(rec.Chain), ctl.SNI, string(ctl.Outcome), hashes(ctl.Chain), rec.Error, rec.Vantage})
		})
	})
}

func hashes[T fmt.Stringer](hs []T) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.String()
	}
	return strings.Join(s, " ")
}

func writeCSV(path string, fill func(*csv.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(fh)
	if err := fill(w); err != nil {
		fh.Close()
		return err
	}
	w.Flush()
	if err := w.Error(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
