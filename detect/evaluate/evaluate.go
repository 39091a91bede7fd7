// Package evaluate measures the detector on labelled captures: real
// ClientHellos of browsers and of interception products, each with the
// User-Agent of the request (the layout of Cloudflare's mitmengine captures,
// as in detect/testdata/captures: one raw .bin per hello and an index.jsonl).
//
// It answers the questions a site operator asks before trusting a verdict:
// what share of the interceptors' hellos is caught, what share of the real
// browsers' hellos is wrongly flagged, and why the rest is "unknown".
package evaluate

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/detecthttp"
)

// Case is one labelled capture, as index.jsonl describes it.
type Case struct {
	File        string `json:"file"`
	UserAgent   string `json:"user_agent"`
	Intercepted bool   `json:"intercepted"`
	Product     string `json:"product"`
	// SameAs is set when the product forwarded the browser's hello
	// unchanged: there is nothing to detect in it.
	SameAs       string `json:"same_tls_structure_as"`
	RecordFormat string `json:"record_format"`
}

// Outcome is the verdict on one case.
type Outcome struct {
	Case
	Result *detect.Result
	Err    error // the hello could not be parsed
}

// Kind classifies an outcome for the tallies.
func (o Outcome) Kind() string {
	switch {
	case o.Err != nil:
		return "unparsable"
	case o.Result.Intercepted == nil:
		return "unknown"
	case *o.Result.Intercepted:
		return "intercepted"
	}
	return "not intercepted"
}

// Counted reports whether the case counts in the rates: SSLv2-format hellos
// and hellos an interceptor passed through unchanged are only checked not
// to crash.
func (o Outcome) Counted() bool { return o.SameAs == "" && o.RecordFormat != "sslv2" }

// Run judges every case of the index in dir.
func Run(dir string, c *detect.Checker) ([]Outcome, error) {
	f, err := os.Open(filepath.Join(dir, "index.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Outcome
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var k Case
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			return nil, fmt.Errorf("evaluate: index.jsonl line %d: %w", n, err)
		}
		if k.File != filepath.Base(k.File) || !strings.HasSuffix(k.File, ".bin") {
			return nil, fmt.Errorf("evaluate: index.jsonl line %d: file %q is not a .bin in the folder", n, k.File)
		}
		raw, err := readBounded(filepath.Join(dir, k.File), detecthttp.MaxCapture)
		if err != nil {
			return nil, err
		}
		o := Outcome{Case: k}
		ch, err := detect.Parse(raw)
		if err != nil {
			o.Err = err
		} else {
			o.Result = c.Check(ch, k.UserAgent, nil)
		}
		out = append(out, o)
	}
	return out, sc.Err()
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return b, nil
}

// Tally counts the outcomes of one group of cases.
type Tally struct {
	Interceptors, Caught, InterceptorsUnknown int
	Browsers, Flagged, BrowsersUnknown        int
	// WithReference counts the browser hellos whose family and version
	// the reference covers; FlaggedWithReference those wrongly flagged.
	WithReference, FlaggedWithReference int
	Passthrough, Unparsable             int
}

func (t *Tally) add(o Outcome) {
	if o.Err != nil {
		t.Unparsable++
	}
	if !o.Counted() {
		t.Passthrough++
		return
	}
	kind := o.Kind()
	if o.Intercepted {
		t.Interceptors++
		switch kind {
		case "intercepted":
			t.Caught++
		case "unknown", "unparsable":
			t.InterceptorsUnknown++
		}
		return
	}
	t.Browsers++
	withRef := o.Result != nil && o.Result.Reference != ""
	if withRef {
		t.WithReference++
	}
	switch kind {
	case "intercepted":
		t.Flagged++
		if withRef {
			t.FlaggedWithReference++
		}
	case "unknown", "unparsable":
		t.BrowsersUnknown++
	}
}

// Report holds the tallies, overall and by family and product, and the
// cases to read: interceptors not caught, browsers flagged, unknowns.
type Report struct {
	All                      Tally
	ByFamily, ByProduct      map[string]*Tally
	Missed, Flagged, Unknown []Outcome
	// UnexplainedUnknown are unknown verdicts without a reason.
	UnexplainedUnknown []Outcome
}

// Goals of issue 10: at least 90% of the interceptors' hellos caught, at most
// 2% of the browsers' flagged and none of a version the reference covers.
const (
	MinCaught  = 0.90
	MaxFlagged = 0.02
)

// Summarize tallies the outcomes.
func Summarize(outs []Outcome) *Report {
	r := &Report{ByFamily: map[string]*Tally{}, ByProduct: map[string]*Tally{}}
	for _, o := range outs {
		family := detect.ParseUA(o.UserAgent).Family
		if family == "" {
			family = "(no browser in the User-Agent)"
		}
		product := o.Product
		if !o.Intercepted {
			product = "browser " + family
		}
		for _, t := range []*Tally{&r.All, get(r.ByFamily, family), get(r.ByProduct, product)} {
			t.add(o)
		}
		if !o.Counted() {
			continue
		}
		switch kind := o.Kind(); {
		case o.Intercepted && kind != "intercepted":
			r.Missed = append(r.Missed, o)
		case !o.Intercepted && kind == "intercepted":
			r.Flagged = append(r.Flagged, o)
		}
		if o.Kind() == "unknown" {
			r.Unknown = append(r.Unknown, o)
			if len(o.Result.Reasons) == 0 {
				r.UnexplainedUnknown = append(r.UnexplainedUnknown, o)
			}
		}
	}
	return r
}

func get(m map[string]*Tally, k string) *Tally {
	if m[k] == nil {
		m[k] = &Tally{}
	}
	return m[k]
}

// Failures lists the goals the report misses (none: it passes).
func (r *Report) Failures() []string {
	var out []string
	a := r.All
	if a.Interceptors > 0 && float64(a.Caught) < MinCaught*float64(a.Interceptors) {
		out = append(out, fmt.Sprintf("caught %d/%d interceptor hellos, below %.0f%%", a.Caught, a.Interceptors, 100*MinCaught))
	}
	if float64(a.Flagged) > MaxFlagged*float64(a.Browsers) {
		out = append(out, fmt.Sprintf("flagged %d/%d browser hellos, above %.0f%%", a.Flagged, a.Browsers, 100*MaxFlagged))
	}
	if a.FlaggedWithReference > 0 {
		out = append(out, fmt.Sprintf("flagged %d browser hellos of versions the reference covers", a.FlaggedWithReference))
	}
	if n := len(r.UnexplainedUnknown); n > 0 {
		out = append(out, fmt.Sprintf("%d unknown verdicts without a reason", n))
	}
	if a.Unparsable > 0 {
		out = append(out, fmt.Sprintf("%d hellos could not be parsed", a.Unparsable))
	}
	return out
}

func pct(n, d int) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
}

// Print writes the report for a reader: totals, by family, by product, and
// each miss, false positive and unknown with its reasons.
func (r *Report) Print(w io.Writer) {
	a := r.All
	fmt.Fprintf(w, "interceptors: caught %d/%d (%s), unknown %d; passed through unchanged or SSLv2 (not counted) %d\n",
		a.Caught, a.Interceptors, pct(a.Caught, a.Interceptors), a.InterceptorsUnknown, a.Passthrough)
	fmt.Fprintf(w, "browsers:     flagged %d/%d (%s), unknown %d; with reference data: flagged %d/%d\n",
		a.Flagged, a.Browsers, pct(a.Flagged, a.Browsers), a.BrowsersUnknown, a.FlaggedWithReference, a.WithReference)
	for _, by := range []struct {
		name string
		m    map[string]*Tally
	}{{"family", r.ByFamily}, {"product", r.ByProduct}} {
		fmt.Fprintf(w, "\nby %s:\n", by.name)
		keys := make([]string, 0, len(by.m))
		for k := range by.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			t := by.m[k]
			fmt.Fprintf(w, "  %-52s", k)
			if t.Interceptors > 0 {
				fmt.Fprintf(w, "  caught %d/%d unknown %d", t.Caught, t.Interceptors, t.InterceptorsUnknown)
			}
			if t.Browsers > 0 {
				fmt.Fprintf(w, "  flagged %d/%d unknown %d", t.Flagged, t.Browsers, t.BrowsersUnknown)
			}
			if t.Passthrough > 0 {
				fmt.Fprintf(w, "  not counted %d", t.Passthrough)
			}
			fmt.Fprintln(w)
		}
	}
	for _, l := range []struct {
		title string
		outs  []Outcome
	}{{"interceptor hellos not caught", r.Missed}, {"browser hellos flagged", r.Flagged}, {"unknown", r.Unknown}} {
		if len(l.outs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", l.title)
		slices.SortFunc(l.outs, func(x, y Outcome) int { return cmp.Compare(x.File, y.File) })
		for _, o := range l.outs {
			fmt.Fprintf(w, "  %s (%s): %s\n", o.File, o.Product, o.Kind())
			if o.Err != nil {
				fmt.Fprintf(w, "    %v\n", o.Err)
				continue
			}
			for _, re := range o.Result.Reasons {
				fmt.Fprintf(w, "    - %s", re.What)
				if re.Expected != "" {
					fmt.Fprintf(w, "; expected %s", re.Expected)
				}
				if re.Seen != "" {
					fmt.Fprintf(w, "; seen %s", re.Seen)
				}
				fmt.Fprintln(w)
			}
		}
	}
	if f := r.Failures(); len(f) > 0 {
		fmt.Fprintf(w, "\nBELOW THE GOALS: %s\n", strings.Join(f, "; "))
	} else {
		fmt.Fprintf(w, "\ngoals met: >= %.0f%% caught, <= %.0f%% flagged, none flagged with reference data, every unknown explained\n", 100*MinCaught, 100*MaxFlagged)
	}
}
