package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mitmguard/mitmguard/campaign"
	"github.com/mitmguard/mitmguard/store"
)

// statusWithRecords is campaign status with the store's record counts
// added: the queue says which jobs are acknowledged, the store what they
// left behind.
type statusWithRecords struct {
	*campaign.Status
	Records int `json:"records"`
	// RecordsPerSecond is over the time since the campaign was created.
	RecordsPerSecond float64              `json:"records_per_s"`
	Vantages         []vantageWithRecords `json:"vantages"`
}

type vantageWithRecords struct {
	campaign.VantageStatus
	Records int `json:"records"`
}

// printStatusWithRecords adds the records stored per vantage point to st.
func printStatusWithRecords(ctx context.Context, w io.Writer, st *campaign.Status, db store.Store, asJSON bool) error {
	counts := map[string]int{}
	c, err := db.Campaign(ctx, st.Campaign)
	switch {
	case errors.Is(err, store.ErrNoCampaign):
		// No worker has stored a record yet.
	case err != nil:
		return err
	default:
		if counts, err = db.VantageCounts(ctx, c); err != nil {
			return err
		}
	}
	out := statusWithRecords{Status: st}
	for _, v := range st.Vantages {
		out.Vantages = append(out.Vantages, vantageWithRecords{v, counts[v.Vantage]})
		out.Records += counts[v.Vantage]
	}
	if el := time.Since(st.Created).Seconds(); el > 0 && !st.Created.IsZero() {
		out.RecordsPerSecond = float64(out.Records) / el
	}
	if asJSON {
		return writeJSON(w, out)
	}
	printCampaignStatus(w, st)
	fmt.Fprintf(w, "  records stored: %d (%.1f/s since the campaign was created)\n", out.Records, out.RecordsPerSecond)
	for _, v := range out.Vantages {
		fmt.Fprintf(w, "  %-24s %9d records\n", v.Vantage, v.Records)
	}
	return nil
}
