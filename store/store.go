// Package store keeps measurement records and the certificates they saw.
// Store is what every backend offers; SQLite (one file, the pure-Go
// modernc.org/sqlite driver, no cgo) is the one for a person on one machine,
// and the shared test suite in store/storetest holds any other backend to
// the same behaviour.
//
// A certificate is stored once, keyed by its SHA-256, and records refer to
// it by hash, so a campaign that sees the same forged chain on a thousand
// hosts stores that chain once. What a host's controls saw is stored once per
// host, not once per record. Records of one host are written in one
// transaction with the host's control, so after a crash a host is either
// wholly recorded or not at all, which is what lets a campaign resume
// without losing or duplicating a record.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
)

// Store is a measurement database. Implementations are safe for concurrent
// use.
type Store interface {
	// CreateCampaign records a new campaign; an ID already stored fails.
	CreateCampaign(ctx context.Context, c *Campaign) error
	// Campaign returns a campaign by ID, or the newest one for "";
	// ErrNoCampaign if there is none.
	Campaign(ctx context.Context, id string) (*Campaign, error)
	// Campaigns returns every campaign, oldest first.
	Campaigns(ctx context.Context) ([]*Campaign, error)
	// Write stores the results of several hosts in one transaction and
	// returns the certificates that were not stored before. A host already
	// stored (same campaign, vantage and host) is left as it was.
	Write(ctx context.Context, c *Campaign, results []*measure.HostResult) (newCerts [][]byte, err error)
	// HostDone reports whether a host's results from a vantage are stored.
	HostDone(ctx context.Context, c *Campaign, vantage, host string) (bool, error)
	// Records calls fn for every record of the campaign, in (vantage,
	// host, SNI) order, with the host's control.
	Records(ctx context.Context, c *Campaign, fn func(measure.Record, measure.Control) error) error
	// Count returns the number of records of the campaign.
	Count(ctx context.Context, c *Campaign) (int, error)
	// OutcomeCounts returns how many records of the campaign have each
	// outcome, counted by the database.
	OutcomeCounts(ctx context.Context, c *Campaign) (map[outcome.Outcome]int, error)
	// VantageCounts returns how many records of the campaign each vantage
	// point has stored, counted by the database (campaign status).
	VantageCounts(ctx context.Context, c *Campaign) (map[string]int, error)
	// Cert returns a stored certificate by hash.
	Cert(ctx context.Context, h chain.Hash) ([]byte, error)
	// WriteTrace stores the locate trace of a record's pair (probe
	// --locate), replacing an earlier one; the record must be stored.
	WriteTrace(ctx context.Context, c *Campaign, t *Trace) error
	// Traces calls fn for every trace of the campaign, in (vantage, host,
	// SNI) order.
	Traces(ctx context.Context, c *Campaign, fn func(Trace) error) error
	// DeclareVantage stores what the operator declared of a vantage point
	// of the campaign (its ASN and country) and returns what is stored.
	// The first declaration wins: a later one only fills the fields left
	// undeclared, and one that differs in a declared field changes
	// nothing and returns a *measure.VantageConflictError (the caller
	// logs it and goes on: its records still belong to the vantage point).
	DeclareVantage(ctx context.Context, c *Campaign, v measure.Vantage) (measure.Vantage, error)
	// Vantages returns the declared vantage points of the campaign, in
	// name order, each checked as a declaration is (the database may have
	// been edited).
	Vantages(ctx context.Context, c *Campaign) ([]measure.Vantage, error)
	// Transient reports whether a write error may pass if tried again
	// (a lock held by another writer, a dropped connection).
	Transient(err error) bool
	Close() error
}

// Campaign is one run of a measurement, with the parameters it ran with.
type Campaign struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	Params  string    `json:"params"` // JSON
	n       int64     // the backend's key
}

// ErrNoCampaign is returned for an unknown campaign id.
var ErrNoCampaign = errors.New("store: no such campaign")

// Bound is a store bound to one campaign: the measurement engine's sink
// (with transient errors retried) and the source of JSON Lines exports.
type Bound struct {
	St Store
	C  *Campaign
}

// Bind binds st to campaign c.
func Bind(st Store, c *Campaign) Bound { return Bound{st, c} }

var _ measure.TransientSink = Bound{}
var _ measure.Source = Bound{}

func (b Bound) Write(ctx context.Context, results []*measure.HostResult) ([][]byte, error) {
	return b.St.Write(ctx, b.C, results)
}

func (b Bound) HostDone(ctx context.Context, vantage, host string) (bool, error) {
	return b.St.HostDone(ctx, b.C, vantage, host)
}

func (b Bound) Transient(err error) bool { return b.St.Transient(err) }

func (b Bound) Records(ctx context.Context, fn func(measure.Record, measure.Control) error) error {
	return b.St.Records(ctx, b.C, fn)
}

func (b Bound) Cert(ctx context.Context, h chain.Hash) ([]byte, error) { return b.St.Cert(ctx, h) }

func packHashes(hs []chain.Hash) []byte {
	if len(hs) == 0 {
		return nil
	}
	b := make([]byte, 0, len(hs)*len(chain.Hash{}))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func unpackHashes(b []byte) []chain.Hash { return Hashes(nil, b) }
