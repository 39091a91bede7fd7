package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
)

// Row is one record with its host's control in the store's own form, as an
// export reads them: chains are packed SHA-256 hashes (32 bytes each),
// traits one comma-separated string, the time Unix milliseconds. Decoding
// these into a measure.Record costs allocations an export that writes hex
// hashes and trait lists by itself does not need.
// Chain and ControlChain are valid only until the callback given the row
// returns (the reader reuses their memory); the strings may be kept.
type Row struct {
	Vantage, Host, SNI, Outcome string
	TimeMS                      int64
	Chain                       []byte
	Attempts                    int
	Traits, Issuer, Error       string
	MS                          float64
	ControlSNI, ControlOutcome  string
	ControlChain                []byte
}

// Hashes splits a packed chain into its hashes, appending them to dst.
func Hashes(dst []chain.Hash, packed []byte) []chain.Hash {
	for len(packed) >= len(chain.Hash{}) {
		dst = append(dst, chain.Hash(packed[:len(chain.Hash{})]))
		packed = packed[len(chain.Hash{}):]
	}
	return dst
}

// Record decodes the row.
func (r *Row) Record() (measure.Record, measure.Control) {
	rec := measure.Record{Vantage: r.Vantage, Host: r.Host, SNI: r.SNI, Outcome: outcome.Outcome(r.Outcome),
		Time: time.UnixMilli(r.TimeMS).UTC(), Chain: unpackHashes(r.Chain), Attempts: r.Attempts,
		Issuer: r.Issuer, Error: r.Error, MS: r.MS}
	if r.Traits != "" {
		rec.Traits = strings.Split(r.Traits, ",")
	}
	ctl := measure.Control{Vantage: r.Vantage, Host: r.Host, SNI: r.ControlSNI, Outcome: outcome.Outcome(r.ControlOutcome), Chain: unpackHashes(r.ControlChain)}
	return rec, ctl
}

// HostKey is a position in a campaign's record order: the records of the
// hosts at or after it, or before it.
type HostKey struct{ Vantage, Host string }

// Range is the records of the hosts from From (inclusive) to To
// (exclusive); a nil bound is the campaign's start or end.
type Range struct{ From, To *HostKey }

// Streamer is a store with a bulk read path for exports: StreamRange is
// Records without decoding, over a part of the campaign so that parts can
// be read side by side; SplitHosts cuts a campaign into such parts;
// CertsByHash looks certificates up, in the order asked, on one read.
type Streamer interface {
	StreamRange(ctx context.Context, c *Campaign, r Range, fn func(*Row) error) error
	SplitHosts(ctx context.Context, c *Campaign, n int) ([]Range, error)
	CertsByHash(ctx context.Context, hs []chain.Hash, fn func(h chain.Hash, der []byte) error) error
}

// SplitHosts cuts the campaign into at most n ranges of about as many
// hosts each, in order; a store without a bulk path gives one range.
func SplitHosts(ctx context.Context, st Store, c *Campaign, n int) ([]Range, error) {
	if s, ok := st.(Streamer); ok && n > 1 {
		return s.SplitHosts(ctx, c, n)
	}
	return []Range{{}}, nil
}

// StreamRows calls fn for every record of the campaign in (vantage, host,
// SNI) order, as Store.Records does, through the store's bulk path when it
// has one. fn gets the same *Row each time: it may keep the row's strings,
// not the row or its chains.
func StreamRows(ctx context.Context, st Store, c *Campaign, fn func(*Row) error) error {
	return StreamRange(ctx, st, c, Range{}, fn)
}

// StreamRange is StreamRows over a range from SplitHosts.
func StreamRange(ctx context.Context, st Store, c *Campaign, r Range, fn func(*Row) error) error {
	if s, ok := st.(Streamer); ok {
		return s.StreamRange(ctx, c, r, fn)
	}
	if r.From != nil || r.To != nil {
		return errors.New("store: this store reads no range of a campaign")
	}
	var row Row
	return st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		row = Row{Vantage: r.Vantage, Host: r.Host, SNI: r.SNI, Outcome: string(r.Outcome), TimeMS: r.Time.UnixMilli(),
			Chain: packHashes(r.Chain), Attempts: r.Attempts, Traits: strings.Join(r.Traits, ","), Issuer: r.Issuer, Error: r.Error, MS: r.MS,
			ControlSNI: ctl.SNI, ControlOutcome: string(ctl.Outcome), ControlChain: packHashes(ctl.Chain)}
		return fn(&row)
	})
}

// CertsByHash calls fn for each of the certificates hs names, in the order
// of hs, failing for one not stored. fn may keep der.
func CertsByHash(ctx context.Context, st Store, hs []chain.Hash, fn func(h chain.Hash, der []byte) error) error {
	if s, ok := st.(Streamer); ok {
		return s.CertsByHash(ctx, hs, fn)
	}
	for _, h := range hs {
		der, err := st.Cert(ctx, h)
		if err != nil {
			return err
		}
		if err := fn(h, der); err != nil {
			return err
		}
	}
	return nil
}
