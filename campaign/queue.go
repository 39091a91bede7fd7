package campaign

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of what the package keeps in JetStream. Operators see them in
// `nats stream ls` and may give them limits or replicas of their own.
const (
	StreamName    = "MITMGUARD_JOBS"
	SubjectPrefix = "mitmguard.jobs"
	SpecBucket    = "mitmguard_campaigns"
)

// Defaults of Options.
const (
	DefaultAckWait = 5 * time.Minute
	// DefaultDuplicateWindow is how long the stream remembers job IDs: a
	// submit retried within it adds nothing even for jobs already done.
	// Beyond it, a retry of an unfinished submit may re-add done jobs,
	// which then measure again and store nothing new (records are unique
	// on campaign, vantage, host and SNI).
	DefaultDuplicateWindow = time.Hour
)

// JobSubject is where jobs of a campaign for one vantage point go.
func JobSubject(vantage, campaign string) string {
	return SubjectPrefix + "." + vantage + "." + campaign
}

// ConsumerName is the durable consumer every worker of a vantage point
// pulls from.
func ConsumerName(vantage string) string { return "vantage_" + vantage }

// Options shape the stream and consumers when this package creates them;
// existing ones are used as they are, so an operator's changes stay.
type Options struct {
	// AckWait is how long a job may go without an acknowledgement (or an
	// in-progress one) before it goes to another worker (DefaultAckWait).
	AckWait time.Duration
	// DuplicateWindow: see DefaultDuplicateWindow.
	DuplicateWindow time.Duration
}

// ConnectError says a NATS server could not be reached; URL has no
// password.
type ConnectError struct {
	URL string
	Err error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot reach NATS at %s: %v", e.URL, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Connect dials a NATS server, failing within a few seconds when none
// answers. Once connected, the connection reconnects by itself for ever
// (a worker outlives a NATS restart); more options may be added.
func Connect(natsURL, name string, more ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.Timeout(3 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
	}, more...)
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, &ConnectError{URL: redact(natsURL), Err: err}
	}
	return nc, nil
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// Queue is the job stream and the campaign specs on one connection.
type Queue struct {
	js    jetstream.JetStream
	jobs  jetstream.Stream
	specs jetstream.KeyValue
	opts  Options
}

// OpenQueue finds the stream and the spec bucket, creating them when
// missing.
func OpenQueue(ctx context.Context, nc *nats.Conn, opts Options) (*Queue, error) {
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = DefaultDuplicateWindow
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*maxInFlight))
	if err != nil {
		return nil, err
	}
	q := &Queue{js: js, opts: opts}
	q.jobs, err = js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		q.jobs, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        StreamName,
			Description: "mitmguard campaign jobs: one subject per vantage point and campaign",
			Subjects:    []string{SubjectPrefix + ".>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  opts.DuplicateWindow,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			q.jobs, err = js.Stream(ctx, StreamName) // created meanwhile
		}
	}
	if err != nil {
		return nil, queueError("job stream "+StreamName, err)
	}
	q.specs, err = js.KeyValue(ctx, SpecBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		q.specs, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      SpecBucket,
			Description: "mitmguard campaigns: parameters and state",
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			q.specs, err = js.KeyValue(ctx, SpecBucket)
		}
	}
	if err != nil {
		return nil, queueError("campaign bucket "+SpecBucket, err)
	}
	return q, nil
}

func queueError(what string, err error) error {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrJetStreamNotEnabled) {
		return fmt.Errorf("%s: the NATS server has no JetStream (start it with -js, or use mitmguard nats): %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// consumer finds, or creates, the vantage point's durable pull consumer.
func (q *Queue) consumer(ctx context.Context, vantage string) (jetstream.Consumer, error) {
	c, err := q.jobs.Consumer(ctx, ConsumerName(vantage))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = q.jobs.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       ConsumerName(vantage),
			Description:   "workers of vantage point " + vantage,
			FilterSubject: SubjectPrefix + "." + vantage + ".>",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       q.opts.AckWait,
			MaxDeliver:    -1, // a job is retried until done; a malformed one is terminated
			MaxAckPending: -1,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("consumer of vantage point %s: %w", vantage, err)
	}
	return c, nil
}

// spec reads a campaign's spec and its revision.
func (q *Queue) spec(ctx context.Context, id string) (*Spec, uint64, error) {
	e, err := q.specs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, &UnknownCampaignError{ID: id}
	}
	if err != nil {
		return nil, 0, err
	}
	s, err := ParseSpec(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("campaign %s: %w", id, err)
	}
	if s.ID != id {
		return nil, 0, fmt.Errorf("campaign %s: the stored spec names campaign %s", id, s.ID)
	}
	return s, e.Revision(), nil
}

// Spec returns a campaign's parameters and state.
func (q *Queue) Spec(ctx context.Context, id string) (*Spec, error) {
	s, _, err := q.spec(ctx, id)
	return s, err
}

// UnknownCampaignError says no campaign has the ID.
type UnknownCampaignError struct{ ID string }

func (e *UnknownCampaignError) Error() string { return "no campaign " + e.ID + " on this NATS server" }
