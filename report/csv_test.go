package report

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/store"
)

// A cell that a spreadsheet would take for a formula (=, +, -, @, tab,
// carriage return first: text from a forged certificate or an edited
// database) is written as text, behind a quote, in every CSV file.
func TestCSVCellsAreNotFormulas(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "formulas", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	snis := []string{`=HYPERLINK("http://evil.example/","x")`, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"}
	hostsWithRecords(t, st, c, snis, "10.77.5.2:443")
	for _, sni := range snis {
		if err := st.WriteTrace(ctx, c, &store.Trace{Vantage: "local", Host: "10.77.5.2:443", SNI: sni, Time: time.Now(), Error: sni}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Build(ctx, st, "formulas")
	if err != nil {
		t.Fatal(err)
	}
	// A CSV cell keeps a line break (csv quotes it): it is not a terminal.
	rep.Divergent = append(rep.Divergent, Divergence{Host: "10.77.5.2:443", SNI: "=1\nx", InterceptedFrom: []string{"a"}, CleanFrom: []string{"b"}})
	out := filepath.Join(dir, "csv")
	if err := rep.WriteCSV(ctx, st, out); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range []string{"domains.csv", "records.csv", "locations.csv", "vantage_divergent.csv"} {
		fh, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			for _, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("%s: cell %q starts a formula", name, cell)
				}
				seen[cell] = true
			}
		}
	}
	if !seen[`'=HYPERLINK("http://evil.example/","x")`] || !seen["'@SUM(A1)"] || !seen["'=1\nx"] {
		t.Error("the quoted cells are not there as text")
	}
}

// The text report sends a terminal no control character from the data (a
// forged issuer, an edited database): an escape sequence would retitle
// the window, clear the screen or hide lines.
func TestTextHasNoControlCharacters(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "ctl", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	evil := "x\x1b]0;owned\x07\x1b[2J\r\x00\x7f"
	forger := "y\n  forged line"
	hostsWithRecords(t, st, c, []string{"facebook.com", evil, forger}, "10.77.5.2:443", "10.77.5.3:443")
	if err := st.WriteTrace(ctx, c, &store.Trace{Vantage: "local", Host: "10.77.5.2:443", SNI: "facebook.com", Time: time.Now(), Error: evil}); err != nil {
		t.Fatal(err)
	}
	// A finding is stored as text too: a database may hold any.
	if err := st.WriteTrace(ctx, c, &store.Trace{Vantage: "local", Host: "10.77.5.3:443", SNI: "facebook.com", Time: time.Now(), Result: locate.Result{Finding: "clean\n  forged finding"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := Build(ctx, st, "ctl")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if i := strings.IndexFunc(b.String(), func(r rune) bool { return r != '\n' && (r < 0x20 || r == 0x7f) }); i >= 0 {
		t.Errorf("control character %q in the text report:\n%q", b.String()[i], b.String())
	}
	if !strings.Contains(b.String(), "x?]0;owned??[2J???") {
		t.Errorf("the bad text is not shown with its controls replaced:\n%s", b.String())
	}
	// A line break in a name forges no line of the report.
	if strings.Contains(b.String(), "\n  forged line") || !strings.Contains(b.String(), "y?  forged line") {
		t.Errorf("a name's line break reached the text report:\n%s", b.String())
	}
	if strings.Contains(b.String(), "\n  forged finding") || !strings.Contains(b.String(), "clean?  forged finding") {
		t.Errorf("a trace finding's line break reached the text report:\n%s", b.String())
	}
}
