package store

import (
	"context"
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

// Streamer is a store with a bulk read path for exports: StreamRows is
// Records without decoding, CertsByHash looks certificates up many at a
// time.
type Streamer interface {
	StreamRows(ctx context.Context, c *Campaign, fn func(*Row) error) error
	CertsByHash(ctx context.Context, hs []chain.Hash, fn func(h chain.Hash, der []byte) error) error
}

// StreamRows calls fn for every record of the campaign in (vantage, host,
// SNI) order, as Store.Records does, through the store's bulk path when it
// has one. fn gets the same *Row each time: it may keep the row's strings
// and slices, not the row.
func StreamRows(ctx context.Context, st Store, c *Campaign, fn func(*Row) error) error {
	if s, ok := st.(Streamer); ok {
		return s.StreamRows(ctx, c, fn)
	}
	var row Row
	return st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
		row = Row{Vantage: r.Vantage, Host: r.Host, SNI: r.SNI, Outcome: string(r.Outcome), TimeMS: r.Time.UnixMilli(),
			Chain: packHashes(r.Chain), Attempts: r.Attempts, Traits: strings.Join(r.Traits, ","), Issuer: r.Issuer, Error: r.Error, MS: r.MS,
			ControlSNI: ctl.SNI, ControlOutcome: string(ctl.Outcome), ControlChain: packHashes(ctl.Chain)}
		return fn(&row)
	})
}

// CertsByHash calls fn for each of the certificates hs names, in no
// particular order, failing for one not stored.
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
