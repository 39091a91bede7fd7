package campaign

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mitmguard/mitmguard/measure"
)

// DefaultBatch is how many hosts one job holds when Request.Batch is 0:
// small enough that a redelivered job repeats little, large enough that
// the stream holds few messages per campaign.
const DefaultBatch = 100

// maxInFlight bounds the jobs published and not yet acknowledged by the
// stream; the client allows twice as many (OpenQueue).
const maxInFlight = 128

// HostSource emits a campaign's hosts ("IP:PORT") in order. Submit calls it
// twice (once to count and digest, once to publish) so hosts never all sit
// in memory; both calls must emit the same hosts.
type HostSource func(ctx context.Context, emit func(host string) error) error

// Request is a campaign to submit.
type Request struct {
	// ID names the campaign; empty picks a new one. Submitting the same
	// request with the same ID again adds nothing.
	ID       string
	Vantages []string
	Domains  []string
	// ControlDomains default to two random names (measure.RandomControls),
	// chosen once and stored in the spec.
	ControlDomains []string
	Limits         Limits
	Roots          string // PEM, optional
	Batch          int    // hosts per job (DefaultBatch)
	Hosts          HostSource
}

func (r *Request) batch() int {
	if r.Batch <= 0 {
		return DefaultBatch
	}
	return r.Batch
}

// SubmitResult says what a submit did.
type SubmitResult struct {
	ID    string
	Hosts int
	Jobs  int // per vantage point
	// Published counts jobs the stream took as new; 0 when the campaign
	// was already fully submitted.
	Published int
	// AlreadySubmitted: the same campaign was submitted before; nothing
	// was added.
	AlreadySubmitted bool
}

// ConflictError says the campaign ID is taken by a different campaign.
type ConflictError struct {
	ID, Reason string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("campaign %s already exists %s; choose another --id", e.ID, e.Reason)
}

// NewID returns a campaign ID as probe makes them: the UTC time and a
// random suffix.
func NewID(now time.Time) string {
	b := make([]byte, 2)
	rand.Read(b)
	return now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// Submit stores the campaign's spec and publishes one job per batch of
// hosts per vantage point. A submit that failed midway is finished by
// submitting the same request again.
func (q *Queue) Submit(ctx context.Context, r Request) (*SubmitResult, error) {
	if r.ID == "" {
		r.ID = NewID(time.Now())
	}
	if r.Hosts == nil {
		return nil, errors.New("campaign submit: no hosts")
	}
	// Names first: a bad one should not wait for a long host list.
	if err := CheckName("campaign", r.ID); err != nil {
		return nil, err
	}
	if len(r.Vantages) == 0 {
		return nil, errors.New("campaign submit: at least one vantage point is required")
	}
	for _, v := range r.Vantages {
		if err := CheckName("vantage", v); err != nil {
			return nil, err
		}
	}
	count, digest, err := digestHosts(ctx, r.Hosts)
	if err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, errors.New("campaign submit: no host to measure")
	}
	now := time.Now().UTC()
	spec := &Spec{
		Version: Version, ID: r.ID, Vantages: r.Vantages, Domains: r.Domains,
		ControlDomains: r.ControlDomains, Limits: r.Limits, Roots: r.Roots,
		Hosts: count, Batch: r.batch(), Jobs: (count + r.batch() - 1) / r.batch(),
		Fingerprint: fingerprint(&r, digest, count), State: StateSubmitting, Created: now, Updated: now,
	}
	if len(spec.ControlDomains) == 0 {
		spec.ControlDomains = measure.RandomControls(2)
	}
	b, err := spec.Marshal()
	if err != nil {
		return nil, err
	}
	res := &SubmitResult{ID: r.ID, Hosts: count, Jobs: spec.Jobs}
	rev, err := q.specs.Create(ctx, r.ID, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		stored, storedRev, err := q.spec(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case stored.Fingerprint != spec.Fingerprint:
			return nil, &ConflictError{r.ID, "with other hosts, domains, vantage points or limits"}
		case stored.State == StateCancelled:
			return nil, &ConflictError{r.ID, "and was cancelled"}
		case stored.State == StateSubmitted:
			res.AlreadySubmitted = true
			return res, nil
		}
		spec, rev = stored, storedRev // finish the interrupted submit, same controls
	} else if err != nil {
		return nil, fmt.Errorf("campaign %s: storing the spec: %w", r.ID, err)
	}

	for _, v := range spec.Vantages {
		if _, err := q.consumer(ctx, v); err != nil {
			return nil, err
		}
	}
	if res.Published, err = q.publish(ctx, spec, r.Hosts, digest); err != nil {
		return nil, fmt.Errorf("campaign %s: %w (submit the same again to finish)", r.ID, err)
	}
	spec.State, spec.Updated = StateSubmitted, time.Now().UTC()
	if b, err = spec.Marshal(); err != nil {
		return nil, err
	}
	if _, err := q.specs.Update(ctx, r.ID, b, rev); err != nil {
		return nil, fmt.Errorf("campaign %s: jobs published, but marking it submitted failed (cancelled meanwhile?): %w", r.ID, err)
	}
	return res, nil
}

// digestHosts counts and digests the hosts, validating each.
func digestHosts(ctx context.Context, src HostSource) (int, []byte, error) {
	h := sha256.New()
	n := 0
	err := src(ctx, func(host string) error {
		if err := checkHost(host); err != nil {
			return fmt.Errorf("host %d: %w", n+1, err)
		}
		n++
		h.Write([]byte(host))
		h.Write([]byte{'\n'})
		return nil
	})
	return n, h.Sum(nil), err
}

// publish sends every job and waits for the stream to store them all. It
// returns how many were new (not duplicates of an earlier submit).
func (q *Queue) publish(ctx context.Context, spec *Spec, src HostSource, digest []byte) (int, error) {
	var futures []jetstream.PubAckFuture
	published := 0
	// wait collects the acknowledgements so far.
	wait := func() error {
		select {
		case <-q.js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if !ack.Duplicate {
					published++
				}
			case err := <-f.Err():
				return fmt.Errorf("publishing job %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
			}
		}
		futures = futures[:0]
		return nil
	}
	h := sha256.New()
	seq := 0
	batch := make([]string, 0, spec.Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		seq++
		for _, v := range spec.Vantages {
			// Collect acknowledgements before the client's window of
			// unacknowledged publishes is full, where it would stall.
			if len(futures) >= maxInFlight {
				if err := wait(); err != nil {
					return err
				}
			}
			j := &Job{Version: Version, Campaign: spec.ID, Vantage: v, Seq: seq, Hosts: batch}
			b, err := j.Marshal()
			if err != nil {
				return err
			}
			f, err := q.js.PublishAsync(j.Subject(), b, jetstream.WithMsgID(j.MsgID()))
			if err != nil {
				return fmt.Errorf("publishing job %s: %w", j.MsgID(), err)
			}
			futures = append(futures, f)
		}
		batch = batch[:0]
		return nil
	}
	err := src(ctx, func(host string) error {
		h.Write([]byte(host))
		h.Write([]byte{'\n'})
		batch = append(batch, host)
		if len(batch) == spec.Batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = wait()
	}
	if err != nil {
		return published, err
	}
	if !bytes.Equal(h.Sum(nil), digest) || seq != spec.Jobs {
		return published, errors.New("the hosts changed while they were submitted")
	}
	return published, nil
}

// Cancel marks a campaign cancelled and removes its jobs still on the
// stream; workers drop any they already hold. It returns how many jobs
// were removed.
func (q *Queue) Cancel(ctx context.Context, id string) (int, error) {
	for {
		spec, rev, err := q.spec(ctx, id)
		if err != nil {
			return 0, err
		}
		if spec.State == StateCancelled {
			break
		}
		spec.State, spec.Updated = StateCancelled, time.Now().UTC()
		b, err := spec.Marshal()
		if err != nil {
			return 0, err
		}
		if _, err = q.specs.Update(ctx, id, b, rev); err == nil {
			break
		} else if !errors.Is(err, jetstream.ErrKeyExists) { // a concurrent update: read again
			return 0, fmt.Errorf("campaign %s: %w", id, err)
		}
	}
	left, err := q.remaining(ctx, id)
	if err != nil {
		return 0, err
	}
	if err := q.jobs.Purge(ctx, jetstream.WithPurgeSubject(JobSubject("*", id))); err != nil {
		return 0, fmt.Errorf("campaign %s: removing its jobs: %w", id, err)
	}
	n := 0
	for _, c := range left {
		n += c
	}
	return n, nil
}

// remaining counts the campaign's jobs still on the stream (not yet
// acknowledged), per vantage point.
func (q *Queue) remaining(ctx context.Context, id string) (map[string]int, error) {
	info, err := q.jobs.Info(ctx, jetstream.WithSubjectFilter(JobSubject("*", id)))
	if err != nil {
		return nil, fmt.Errorf("campaign %s: reading the job stream: %w", id, err)
	}
	out := map[string]int{}
	prefix := SubjectPrefix + "."
	suffix := "." + id
	for subj, n := range info.State.Subjects {
		if len(subj) > len(prefix)+len(suffix) {
			out[subj[len(prefix):len(subj)-len(suffix)]] += int(n)
		}
	}
	return out, nil
}

// Status is a campaign's progress as the stream sees it: jobs done are
// jobs acknowledged, which workers do only once their records are
// committed.
type Status struct {
	Campaign       string          `json:"campaign"`
	State          string          `json:"state"`
	Hosts          int             `json:"hosts"`
	JobsPerVantage int             `json:"jobs_per_vantage"`
	PendingJobs    int             `json:"pending_jobs"`
	Done           bool            `json:"done"`
	Created        time.Time       `json:"created"`
	Vantages       []VantageStatus `json:"vantages"`
}

// VantageStatus is one vantage point's part of a campaign.
type VantageStatus struct {
	Vantage     string `json:"vantage"`
	JobsDone    int    `json:"jobs_done"`
	PendingJobs int    `json:"pending_jobs"` // of this campaign, not yet acknowledged
	Done        bool   `json:"done"`
	// The vantage point's queue over all its campaigns, from its consumer:
	// jobs not yet handed out, handed out and unacknowledged, and handed
	// out more than once (a worker died or failed).
	QueueWaiting     uint64 `json:"queue_waiting"`
	QueueInFlight    int    `json:"queue_in_flight"`
	QueueRedelivered int    `json:"queue_redelivered"`
}

// Status reports a campaign's progress per vantage point.
func (q *Queue) Status(ctx context.Context, id string) (*Status, error) {
	spec, _, err := q.spec(ctx, id)
	if err != nil {
		return nil, err
	}
	left, err := q.remaining(ctx, id)
	if err != nil {
		return nil, err
	}
	st := &Status{Campaign: id, State: spec.State, Hosts: spec.Hosts, JobsPerVantage: spec.Jobs, Created: spec.Created, Done: spec.State == StateSubmitted}
	for _, v := range spec.Vantages {
		vs := VantageStatus{Vantage: v, PendingJobs: left[v]}
		vs.JobsDone = spec.Jobs - vs.PendingJobs
		vs.Done = spec.State == StateSubmitted && vs.PendingJobs == 0
		if c, err := q.jobs.Consumer(ctx, ConsumerName(v)); err == nil {
			info := c.CachedInfo()
			vs.QueueWaiting, vs.QueueInFlight, vs.QueueRedelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("consumer of vantage point %s: %w", v, err)
		}
		st.PendingJobs += vs.PendingJobs
		st.Done = st.Done && vs.Done
		st.Vantages = append(st.Vantages, vs)
	}
	slices.SortFunc(st.Vantages, func(a, b VantageStatus) int { return strings.Compare(a.Vantage, b.Vantage) })
	return st, nil
}
