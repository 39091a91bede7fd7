package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Version is the wire format version of jobs and specs this package writes
// and the only one it reads. A change a reader of this version would
// misread bumps it.
const Version = 1

// Bounds on what a job may hold. A job is one JetStream message (at most
// 1 MiB by default); these keep a hostile one cheap to reject.
const (
	MaxJobBytes = 512 << 10
	MaxBatch    = 10000
	maxNameLen  = 64
)

// Job is one batch of hosts a vantage point measures for a campaign; its
// JSON is the message on the work-queue stream.
type Job struct {
	Version  int    `json:"v"`
	Campaign string `json:"campaign"`
	Vantage  string `json:"vantage"`
	// Seq numbers the campaign's batches from 1; the same batch has the
	// same Seq on every vantage point's subject.
	Seq   int      `json:"seq"`
	Hosts []string `json:"hosts"` // "IP:PORT", as measure.ReadHosts writes them
}

// MsgID is the Nats-Msg-Id of the job: the stream drops a second job with
// the same ID (within its duplicate window), which makes resubmitting safe.
func (j *Job) MsgID() string {
	return fmt.Sprintf("%s/%s/%d", j.Campaign, j.Vantage, j.Seq)
}

// Subject is the stream subject the job is published on.
func (j *Job) Subject() string { return JobSubject(j.Vantage, j.Campaign) }

// Marshal validates the job and returns its wire form.
func (j *Job) Marshal() ([]byte, error) {
	if err := j.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxJobBytes {
		return nil, &FormatError{What: "job", Reason: fmt.Sprintf("%d bytes, more than %d: use a smaller batch", len(b), MaxJobBytes)}
	}
	return b, nil
}

// FormatError says why a job or spec was refused.
type FormatError struct {
	What   string // "job" or "campaign spec"
	Reason string
}

func (e *FormatError) Error() string { return "malformed " + e.What + ": " + e.Reason }

// ParseJob reads a job message, refusing anything oversized, of another
// version, or with a field out of bounds.
func ParseJob(b []byte) (*Job, error) {
	var j Job
	if err := decodeStrict(b, MaxJobBytes, "job", &j); err != nil {
		return nil, err
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return &j, nil
}

// Validate checks every field of the job.
func (j *Job) Validate() error {
	bad := func(format string, a ...any) error {
		return &FormatError{What: "job", Reason: fmt.Sprintf(format, a...)}
	}
	if j.Version != Version {
		return bad("version %d, this mitmguard reads version %d", j.Version, Version)
	}
	if err := CheckName("campaign", j.Campaign); err != nil {
		return bad("%v", err)
	}
	if err := CheckName("vantage", j.Vantage); err != nil {
		return bad("%v", err)
	}
	if j.Seq < 1 {
		return bad("seq %d, want 1 or more", j.Seq)
	}
	if len(j.Hosts) == 0 || len(j.Hosts) > MaxBatch {
		return bad("%d hosts, want 1 to %d", len(j.Hosts), MaxBatch)
	}
	for i, h := range j.Hosts {
		if err := checkHost(h); err != nil {
			return bad("host %d: %v", i+1, err)
		}
	}
	return nil
}

// checkHost accepts an "IP:PORT" with a port other than 0.
func checkHost(h string) error {
	if len(h) > 64 {
		return errors.New("longer than an IP:PORT")
	}
	ap, err := netip.ParseAddrPort(h)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return fmt.Errorf("%q is not IP:PORT", h)
	}
	return nil
}

// NameError says why a campaign ID or vantage point name was refused.
type NameError struct {
	Kind, Name string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("%s name %q: use 1 to %d letters, digits, - or _, starting with a letter or digit", e.Kind, e.Name, maxNameLen)
}

// CheckName accepts campaign IDs and vantage point names: they become NATS
// subject tokens, consumer names and key-value keys, so only letters,
// digits, '-' and '_' are allowed (no '.', '*', '>' or spaces).
func CheckName(kind, name string) error {
	if len(name) == 0 || len(name) > maxNameLen {
		return &NameError{kind, name}
	}
	for i, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return &NameError{kind, name}
		}
	}
	return nil
}

// decodeStrict decodes one JSON object of at most limit bytes into v,
// refusing trailing data.
func decodeStrict(b []byte, limit int, what string, v any) error {
	if len(b) > limit {
		return &FormatError{What: what, Reason: fmt.Sprintf("%d bytes, more than %d", len(b), limit)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return &FormatError{What: what, Reason: err.Error()}
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		return &FormatError{What: what, Reason: "data after the JSON object"}
	}
	return nil
}
