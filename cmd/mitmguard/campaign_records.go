package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mitmguard/mitmguard/campaign"
	"github.com/mitmguard/mitmguard/measure"
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
	// ASN and Country are what the vantage point's workers declared.
	ASN     uint32 `json:"asn,omitempty"`
	Country string `json:"country,omitempty"`
}

// printStatusWithRecords adds the records stored per vantage point to st.
func printStatusWithRecords(ctx context.Context, w io.Writer, st *campaign.Status, db store.Store, asJSON bool) error {
	counts := map[string]int{}
	declared := map[string]measure.Vantage{}
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
		if declared, err = store.VantageMap(ctx, db, c); err != nil {
			return err
		}
	}
	out := statusWithRecords{Status: st}
	for _, v := range st.Vantages {
		d := declared[v.Vantage]
		out.Vantages = append(out.Vantages, vantageWithRecords{v, counts[v.Vantage], d.ASN, d.Country})
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
		fmt.Fprintf(w, "  %-24s %9d records", v.Vantage, v.Records)
		if v.ASN != 0 {
			fmt.Fprintf(w, "  AS%d", v.ASN)
		}
		if v.Country != "" {
			fmt.Fprintf(w, "  %s", v.Country)
		}
		fmt.Fprintln(w)
	}
	return nil
}
