package campaign

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"
)

// States of a campaign, in its Spec.
const (
	// StateSubmitting: the spec is stored and jobs are being published; a
	// submit that died here is finished by submitting the same again.
	StateSubmitting = "submitting"
	// StateSubmitted: every job is on the stream.
	StateSubmitted = "submitted"
	// StateCancelled: remaining jobs were removed; workers drop any they
	// still receive.
	StateCancelled = "cancelled"
)

// Bounds on a spec (a key-value entry, at most 1 MiB by default).
const (
	MaxSpecBytes = 1 << 20
	MaxDomains   = 10000
	MaxVantages  = 64
	MaxRootsPEM  = 256 << 10
)

// Limits are the measurement engine's per-campaign bounds, as probe takes
// them. Zero means the engine's default.
type Limits struct {
	TimeoutMS int64   `json:"timeout_ms,omitempty"`
	PerHost   int     `json:"per_host,omitempty"`
	Rate      float64 `json:"rate_per_host,omitempty"`
	// Retries as measure.Config takes it: 0 the default, negative none.
	Retries int `json:"retries,omitempty"`
}

// Timeout is TimeoutMS as a duration.
func (l Limits) Timeout() time.Duration { return time.Duration(l.TimeoutMS) * time.Millisecond }

// Spec is a campaign's parameters and state, stored once in the key-value
// bucket under the campaign's ID; workers read it for every job.
type Spec struct {
	Version        int      `json:"v"`
	ID             string   `json:"id"`
	Vantages       []string `json:"vantages"`
	Domains        []string `json:"domains"`
	ControlDomains []string `json:"control_domains"`
	Limits         Limits   `json:"limits"`
	// Roots is PEM of extra roots to treat as public, carried here because
	// workers do not see the submitter's files.
	Roots string `json:"roots,omitempty"`

	Hosts int `json:"hosts"`
	Batch int `json:"batch"`
	Jobs  int `json:"jobs"` // per vantage point: ceil(Hosts / Batch)
	// Fingerprint digests what the submitter asked for (hosts included), so
	// a second submit with the same ID can tell a retry from a conflict.
	Fingerprint string    `json:"fingerprint"`
	State       string    `json:"state"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// ParseSpec reads a stored spec, refusing anything oversized, of another
// version, or out of bounds.
func ParseSpec(b []byte) (*Spec, error) {
	var s Spec
	if err := decodeStrict(b, MaxSpecBytes, "campaign spec", &s); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Marshal validates the spec and returns its stored form.
func (s *Spec) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSpecBytes {
		return nil, &FormatError{What: "campaign spec", Reason: fmt.Sprintf("%d bytes, more than %d: fewer domains or roots", len(b), MaxSpecBytes)}
	}
	return b, nil
}

// Validate checks every field of the spec.
func (s *Spec) Validate() error {
	bad := func(format string, a ...any) error {
		return &FormatError{What: "campaign spec", Reason: fmt.Sprintf(format, a...)}
	}
	if s.Version != Version {
		return bad("version %d, this mitmguard reads version %d", s.Version, Version)
	}
	if err := CheckName("campaign", s.ID); err != nil {
		return bad("%v", err)
	}
	if len(s.Vantages) == 0 || len(s.Vantages) > MaxVantages {
		return bad("%d vantage points, want 1 to %d", len(s.Vantages), MaxVantages)
	}
	for i, v := range s.Vantages {
		if err := CheckName("vantage", v); err != nil {
			return bad("%v", err)
		}
		if slices.Contains(s.Vantages[:i], v) {
			return bad("vantage point %q twice", v)
		}
	}
	if len(s.Domains) == 0 || len(s.Domains) > MaxDomains || len(s.ControlDomains) > MaxDomains {
		return bad("%d domains and %d control SNIs, want 1 to %d each", len(s.Domains), len(s.ControlDomains), MaxDomains)
	}
	for _, d := range slices.Concat(s.Domains, s.ControlDomains) {
		if err := checkDomain(d); err != nil {
			return bad("%v", err)
		}
	}
	l := s.Limits
	if l.TimeoutMS < 0 || l.TimeoutMS > int64(time.Hour/time.Millisecond) || l.PerHost < 0 || l.PerHost > 1000 ||
		!(l.Rate >= 0 && l.Rate <= 1e6) || l.Retries > 100 {
		return bad("limits out of range: %+v", l)
	}
	if len(s.Roots) > MaxRootsPEM {
		return bad("roots: %d bytes, more than %d", len(s.Roots), MaxRootsPEM)
	}
	if s.Roots != "" {
		if b, _ := pem.Decode([]byte(s.Roots)); b == nil {
			return bad("roots: no PEM block")
		}
	}
	if s.Hosts < 0 || s.Batch < 1 || s.Batch > MaxBatch || s.Jobs < 0 || s.Jobs != (s.Hosts+s.Batch-1)/s.Batch {
		return bad("hosts %d, batch %d, jobs %d do not add up", s.Hosts, s.Batch, s.Jobs)
	}
	if len(s.Fingerprint) != 64 {
		return bad("fingerprint is not a SHA-256")
	}
	switch s.State {
	case StateSubmitting, StateSubmitted, StateCancelled:
	default:
		return bad("state %q", s.State)
	}
	return nil
}

// checkDomain accepts what measure.ReadDomains does: a name without
// spaces, '/', ':' or '@', at most 253 bytes.
func checkDomain(d string) error {
	if d == "" || len(d) > 253 || strings.ContainsAny(d, " /:@\x00\n\r\t") {
		return fmt.Errorf("%.80q is not a domain name", d)
	}
	return nil
}

// fingerprint digests a submit request: everything that decides which jobs
// exist and what they measure.
func fingerprint(r *Request, hostsDigest []byte, hosts int) string {
	h := sha256.New()
	json.NewEncoder(h).Encode(struct {
		Vantages, Domains, Controls []string
		Limits                      Limits
		Roots                       string
		Batch, Hosts                int
		HostsSHA256                 []byte
	}{r.Vantages, r.Domains, r.ControlDomains, r.Limits, r.Roots, r.batch(), hosts, hostsDigest})
	return hex.EncodeToString(h.Sum(nil))
}
