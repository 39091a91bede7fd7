package measure

import (
	"context"
	"fmt"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
)

// DefaultVantage names the vantage point of a campaign run on one machine
// (`probe --vantage` names another). Interception depends on where one
// stands, so every record says where it was measured from.
const DefaultVantage = "local"

// Control is what a host's control handshake saw.
type Control struct {
	Vantage string          `json:"-"`
	Host    string          `json:"-"`
	SNI     string          `json:"sni"`
	Outcome outcome.Outcome `json:"outcome"`
	Chain   []chain.Hash    `json:"chain"`
}

// Record is one (host, SNI) measurement from one vantage point.
type Record struct {
	Vantage  string          `json:"vantage"`
	Host     string          `json:"host"`
	SNI      string          `json:"sni"`
	Outcome  outcome.Outcome `json:"outcome"`
	Time     time.Time       `json:"time"`
	Chain    []chain.Hash    `json:"chain"`
	Attempts int             `json:"attempts"`
	Traits   []string        `json:"traits,omitempty"`
	Issuer   string          `json:"issuer,omitempty"`
	Error    string          `json:"error,omitempty"`
	MS       float64         `json:"handshake_ms,omitempty"` // the last handshake's duration
}

// HostResult is everything measured for one host, stored at once so that a
// host is either wholly recorded or not at all (what makes resume exact).
type HostResult struct {
	Control Control
	Records []Record
	// Certs are the DER certificates the records and control refer to;
	// a sink skips the ones it already holds.
	Certs [][]byte
}

// Sink is where a campaign's results go: the one thing the engine needs of
// a store. It is bound to one campaign. The SQLite store implements it
// (store.Bind), and so will a PostgreSQL backend.
type Sink interface {
	// Write stores the results of several hosts in one transaction and
	// returns the certificates it did not hold before (for JSON Lines).
	Write(ctx context.Context, results []*HostResult) (newCerts [][]byte, err error)
	// HostDone reports whether a host's results from a vantage point are
	// stored (resume skips it).
	HostDone(ctx context.Context, vantage, host string) (bool, error)
}

// TransientSink is an optional upgrade of Sink: a sink that can tell a
// transient write error (a lock held by another writer, a lost connection)
// from a persistent one. The engine retries the transient ones with backoff;
// a sink without it gets no retries.
type TransientSink interface {
	Sink
	Transient(err error) bool
}

// Source reads back a campaign's records and certificates (JSON Lines
// export, and re-emitting what a killed run's JSON Lines lack).
type Source interface {
	// Records calls fn for every record, in (vantage, host, SNI) order,
	// with the host's control.
	Records(ctx context.Context, fn func(Record, Control) error) error
	Cert(ctx context.Context, h chain.Hash) ([]byte, error)
}

// WriteError is a write to the sink that failed for good (a persistent
// error, or a transient one that outlasted the retries): the engine stops
// probing at once, since every later result would be lost too.
type WriteError struct {
	Stored int // hosts stored by this run before the failure
	Err    error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("store: writing results failed, probing stopped (%d hosts of this run are stored; the rest can be measured with --resume): %v", e.Stored, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }
