package report

import (
	"cmp"
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

	"github.com/mitmguard/mitmguard/internal/termsafe"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// WriteText prints the report for a terminal. Its text comes from forged
// certificates and from databases that may have been edited, so control
// characters other than newlines, and bidirectional overrides, are printed
// as '?' (termsafe): an escape sequence could retitle the window, clear the
// screen or hide lines. Each field from outside is also printed on one
// line (line): a line break in a name could forge a line of the report.
func (r *Report) WriteText(w io.Writer) {
	w = termsafe.NewWriter(w)
	fmt.Fprintf(w, "campaign %s (started %s): %d hosts, %d records\n\noutcomes:\n", line(r.Campaign), r.Started.Format("2006-01-02 15:04 UTC"), r.Hosts, r.Records)
	for _, o := range slices.Sorted(maps.Keys(r.Outcomes)) {
		fmt.Fprintf(w, "  %-40s %d\n", line(string(o)), r.Outcomes[o])
	}
	fmt.Fprintln(w, "\nintercepted domains (share of hosts):")
	any := false
	for _, d := range r.Domains {
		if d.Intercepted == 0 {
			continue
		}
		any = true
		fmt.Fprintf(w, "  %-28s %3d of %3d hosts (%5.1f%%)  by %s\n", line(d.Domain), d.Intercepted, d.Hosts, 100*d.Share, line(join(d.Issuers)))
	}
	if !any {
		fmt.Fprintln(w, "  none")
	}
	fmt.Fprintf(w, "\nintercepting hosts: %d\n", len(r.Intercept))
	for _, h := range r.Intercept {
		fmt.Fprintf(w, "  %-24s %d domains, by %s\n", line(h.Host), len(h.Domains), line(join(h.Issuers)))
	}
	r.writeVantages(w)
	r.writeLocations(w)
	if len(r.Traits) > 0 {
		fmt.Fprintln(w, "\nforged certificates' traits:")
		for _, t := range r.Traits {
			fmt.Fprintf(w, "  %-28s %d\n", line(t.Trait), t.Count)
		}
	}
	if len(r.Timeline) > 1 {
		fmt.Fprintln(w, "\nover time:")
		for _, p := range r.Timeline {
			fmt.Fprintf(w, "  %s  %-24s %5.1f%% intercepted of %d records\n", p.Started.Format("2006-01-02 15:04"), line(p.Campaign), 100*p.Share, p.Records)
		}
	}
}

// WriteCSV writes domains.csv, hosts.csv, networks.csv, timeline.csv,
// traits.csv, vantages.csv, vantage_divergent.csv and records.csv (every
// record of the campaign) into dir, and for a campaign with locate traces
// locations.csv and hops_before_server.csv.
func (r *Report) WriteCSV(ctx context.Context, st store.Store, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
	tables := map[string][][]string{
		"domains.csv":           {{"domain", "hosts", "intercepted", "blocked", "intercepted_share", "issuers"}},
		"hosts.csv":             {{"host", "intercepted_domains", "issuers", "known_entries"}},
		"networks.csv":          {{"network", "hosts", "intercepting", "intercepting_share"}},
		"timeline.csv":          {{"campaign", "started", "records", "intercepted", "blocked", "intercepted_share"}},
		"traits.csv":            {{"trait", "count"}},
		"vantages.csv":          {{"vantage", "asn", "country", "hosts", "intercepting_hosts", "intercepting_share", "records", "judged", "intercepted", "intercepted_share"}},
		"vantage_divergent.csv": {{"host", "sni", "intercepted_from", "clean_from"}},
	}
	for _, v := range r.Vantages {
		tables["vantages.csv"] = append(tables["vantages.csv"], []string{v.Vantage, v.asn(""), v.Country, strconv.Itoa(v.Hosts), strconv.Itoa(v.Intercepting), f(v.HostShare),
			strconv.Itoa(v.Records), strconv.Itoa(v.Judged), strconv.Itoa(v.Intercepted), f(v.Share)})
	}
	for _, d := range r.Divergent {
		tables["vantage_divergent.csv"] = append(tables["vantage_divergent.csv"], []string{d.Host, d.SNI, join(d.InterceptedFrom), join(d.CleanFrom)})
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
		if err := writeCSV(filepath.Join(dir, name), func(w *csvWriter) error { return w.WriteAll(rows) }); err != nil {
			return err
		}
	}
	if err := r.writeLocationCSV(dir); err != nil {
		return err
	}
	c, err := st.Campaign(ctx, r.Campaign)
	if err != nil {
		return err
	}
	return writeCSV(filepath.Join(dir, "records.csv"), func(w *csvWriter) error {
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

func writeCSV(path string, fill func(*csvWriter) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csvWriter{csv.NewWriter(fh)}
	if err := fill(&w); err != nil {
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

// csvWriter writes CSV rows whose cells a spreadsheet cannot take for
// formulas: the cells hold text from forged certificates and from
// databases that may come from someone else, and a spreadsheet runs a cell
// that starts with =, +, -, @, a tab or a carriage return (OWASP's CSV
// injection). Such a cell is written behind a quote, which spreadsheets
// read as "text".
type csvWriter struct{ *csv.Writer }

// Write writes one row, neutralising its formula-like cells.
func (w *csvWriter) Write(row []string) error {
	if slices.ContainsFunc(row, formulaLike) {
		row = slices.Clone(row)
		for i, c := range row {
			if formulaLike(c) {
				row[i] = "'" + c
			}
		}
	}
	return w.Writer.Write(row)
}

func formulaLike(cell string) bool { return cell != "" && strings.IndexByte("=+-@\t\r", cell[0]) >= 0 }

// WriteAll writes the rows as Write does.
func (w *csvWriter) WriteAll(rows [][]string) error {
	for _, row := range rows {
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

// maxDivergentText bounds the divergent pairs a terminal shows; JSON, CSV
// and HTML carry them all.
const maxDivergentText = 50

// writeVantages prints the per-vantage table and the pairs seen
// differently, when the campaign was measured from more than one place.
func (r *Report) writeVantages(w io.Writer) {
	if len(r.Vantages) < 2 {
		return
	}
	fmt.Fprintln(w, "\nper vantage point:")
	fmt.Fprintf(w, "  %-20s %-12s %-7s %7s %22s %26s\n", "vantage", "asn", "country", "hosts", "intercepting hosts", "intercepted records")
	for _, v := range r.Vantages {
		fmt.Fprintf(w, "  %-20s %-12s %-7s %7d %13d (%5.1f%%) %16d (%5.1f%%)\n", line(v.Vantage), v.asn("-"), line(cmp.Or(v.Country, "-")),
			v.Hosts, v.Intercepting, 100*v.HostShare, v.Intercepted, 100*v.Share)
	}
	fmt.Fprintf(w, "\nintercepted from one vantage point, clean from another: %d pairs\n", len(r.Divergent))
	for i, d := range r.Divergent {
		if i == maxDivergentText {
			fmt.Fprintf(w, "  ... and %d more (--json, --csv or --html list them all)\n", len(r.Divergent)-i)
			break
		}
		fmt.Fprintf(w, "  %-24s %-24s intercepted from %s, clean from %s\n", line(d.Host), line(d.SNI), line(join(d.InterceptedFrom)), line(join(d.CleanFrom)))
	}
}

// line is a field from outside printed inside a line: its line breaks
// too become '?'.
func line(s string) string { return termsafe.String(s) }
