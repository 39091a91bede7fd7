package report

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mitmguard/mitmguard/locate"
	"github.com/mitmguard/mitmguard/store"
)

// Location is where interception starts on the path to one host, from the
// locate traces probe --locate stored: the IMC 2020 study of Kazakhstan's
// 2019 interception found the box 3-4 hops before the servers, at a few
// routers of one operator. One row per (vantage, host): the path depends on
// where one stands.
type Location struct {
	Vantage string   `json:"vantage"`
	Host    string   `json:"host"`
	Traced  []string `json:"traced_snis"`
	// Finding, the hops and RoutersVisible are the trace that placed the
	// box closest (the smallest first forged hop); without a located trace,
	// the first that finished, else the first failure with its Error.
	Finding          locate.Finding `json:"finding"`
	FirstForgedHop   *int           `json:"first_forged_hop"`
	LastCleanRouter  *string        `json:"last_clean_router"`
	ServerHops       *int           `json:"server_hops"`
	HopsBeforeServer *int           `json:"hops_before_server"` // ServerHops - FirstForgedHop
	RoutersVisible   bool           `json:"routers_visible"`
	Error            string         `json:"error,omitempty"`
}

// HopCount is one bar of the "hops before the server" histogram: how many
// hosts' interception starts that many hops before the server.
type HopCount struct {
	Hops  int `json:"hops"`
	Hosts int `json:"hosts"`
}

// locations reads the campaign's traces: one Location per (vantage, host)
// and the histogram of hops before the server. Both are empty for a
// campaign without traces.
func locations(ctx context.Context, st store.Store, c *store.Campaign) ([]Location, []HopCount, error) {
	var out []Location
	var best store.Trace
	flush := func() {
		if len(out) == 0 {
			return
		}
		l := &out[len(out)-1]
		r := best.Result
		l.Finding, l.FirstForgedHop, l.LastCleanRouter, l.ServerHops, l.RoutersVisible, l.Error = r.Finding, r.FirstForgedHop, r.LastCleanRouter, r.ServerHops, r.RoutersVisible, best.Error
		if f, s := r.FirstForgedHop, r.ServerHops; f != nil && s != nil && *s >= *f {
			d := *s - *f
			l.HopsBeforeServer = &d
		}
	}
	err := st.Traces(ctx, c, func(t store.Trace) error {
		if len(out) == 0 || out[len(out)-1].Vantage != t.Vantage || out[len(out)-1].Host != t.Host {
			flush()
			out = append(out, Location{Vantage: t.Vantage, Host: t.Host})
			best = t
		} else if better(t, best) {
			best = t
		}
		l := &out[len(out)-1]
		l.Traced = append(l.Traced, t.SNI)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	flush()
	byHops := map[int]int{}
	for _, l := range out {
		if l.HopsBeforeServer != nil {
			byHops[*l.HopsBeforeServer]++
		}
	}
	var hist []HopCount
	for h, n := range byHops {
		hist = append(hist, HopCount{h, n})
	}
	sort.Slice(hist, func(i, j int) bool { return hist[i].Hops < hist[j].Hops })
	return out, hist, nil
}

// better reports whether trace a says more about where interception starts
// than b: located beats not located (the closer box first), a finished
// trace beats a failed one.
func better(a, b store.Trace) bool {
	// A database may say located without a hop: not located, then.
	al := a.Result.Finding == locate.Located && a.Result.FirstForgedHop != nil
	bl := b.Result.Finding == locate.Located && b.Result.FirstForgedHop != nil
	switch {
	case al && bl:
		return *a.Result.FirstForgedHop < *b.Result.FirstForgedHop
	case al != bl:
		return al
	}
	return a.Error == "" && b.Error != ""
}

func optInt(p *int) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(*p)
}

func optStr(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

// writeLocations prints where interception starts, when the campaign has
// traces.
func (r *Report) writeLocations(w io.Writer) {
	if len(r.Locations) == 0 {
		return
	}
	hosts := "hosts"
	if len(r.Locations) == 1 {
		hosts = "host"
	}
	fmt.Fprintf(w, "\nwhere interception starts (probe --locate, %d %s traced):\n", len(r.Locations), hosts)
	if len(r.HopsBeforeServer) > 0 {
		fmt.Fprintf(w, "  %-22s  %5s\n", "hops before the server", "hosts")
		most := 0
		for _, h := range r.HopsBeforeServer {
			most = max(most, h.Hosts)
		}
		for _, h := range r.HopsBeforeServer {
			fmt.Fprintf(w, "  %22d  %5d  %s\n", h.Hops, h.Hosts, strings.Repeat("#", max(1, 30*h.Hosts/most)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  %-24s %-12s %-12s %16s  %-18s %11s\n", "host", "vantage", "finding", "first forged hop", "last clean router", "server hops")
	for _, l := range r.Locations {
		fmt.Fprintf(w, "  %-24s %-12s %-12s %16s  %-18s %11s", line(l.Host), line(l.Vantage), line(string(l.Finding)), optInt(l.FirstForgedHop), line(optStr(l.LastCleanRouter)), optInt(l.ServerHops))
		if l.Error != "" {
			fmt.Fprintf(w, "  %s", line(l.Error))
		}
		fmt.Fprintln(w)
	}
}

// writeLocationCSV writes locations.csv and hops_before_server.csv, only
// for a campaign with traces.
func (r *Report) writeLocationCSV(dir string) error {
	if len(r.Locations) == 0 {
		return nil
	}
	err := writeCSV(filepath.Join(dir, "locations.csv"), func(w *csvWriter) error {
		w.Write([]string{"vantage", "host", "traced_snis", "finding", "first_forged_hop", "last_clean_router", "server_hops", "hops_before_server", "routers_visible", "error"})
		for _, l := range r.Locations {
			w.Write([]string{l.Vantage, l.Host, join(l.Traced), string(l.Finding), csvInt(l.FirstForgedHop), csvStr(l.LastCleanRouter), csvInt(l.ServerHops),
				csvInt(l.HopsBeforeServer), strconv.FormatBool(l.RoutersVisible), l.Error})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCSV(filepath.Join(dir, "hops_before_server.csv"), func(w *csvWriter) error {
		w.Write([]string{"hops_before_server", "hosts"})
		for _, h := range r.HopsBeforeServer {
			w.Write([]string{strconv.Itoa(h.Hops), strconv.Itoa(h.Hosts)})
		}
		return nil
	})
}

func csvInt(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func csvStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
