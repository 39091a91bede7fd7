package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Runner measures one job and commits its records. The worker
// acknowledges the job only after Run returned nil, so a Runner must not
// return nil before the records are durable. Run is called again for a job
// redelivered after a crash or a failure, so storing must be idempotent
// (records unique on campaign, vantage point, host and SNI).
type Runner interface {
	Run(ctx context.Context, job Work) error
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, job Work) error

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, job Work) error { return f(ctx, job) }

// Work is what a Runner gets: the job and its campaign's parameters.
type Work struct {
	*Job
	Spec *Spec
	// Delivery counts how often the job was handed out, 1 the first time.
	Delivery uint64

	// entered, when set, is called by a Budget runner once the job counts
	// in its Room, so the worker asks Room again only after that.
	entered func()
}

// DefaultJobs is the most jobs a worker with a Budget runner holds at
// once when Worker.Concurrency is 0.
const DefaultJobs = 16

// Budget is implemented by a Runner whose jobs share one budget, as
// MeasureRunner's handshakes do. A job lasts as long as its slowest part
// (a stalling host holds a handshake for the whole timeout) while it
// leaves the rest of the budget idle: the worker then takes another job
// whenever the budget has idle room, rather than running a fixed number of
// jobs each waiting for its slowest host.
type Budget interface {
	// Room reports whether the jobs being run leave part of the budget
	// idle with nothing waiting for it; when not, it returns a channel
	// closed when that may have changed.
	Room() (idle bool, changed <-chan struct{})
}

// Worker pulls the jobs of one vantage point and runs them.
type Worker struct {
	// URL of the NATS server, used when Conn is nil; the worker then
	// connects (retrying with backoff until it succeeds) and closes the
	// connection when it stops.
	URL string
	// Conn, if set, is used instead of URL and left open.
	Conn    *nats.Conn
	Vantage string
	Runner  Runner
	// Concurrency is how many jobs the worker holds at once. With a
	// Runner that is a Budget, it is a cap (default DefaultJobs): another
	// job is taken only while the budget has idle room, and the cap keeps
	// ack waits and memory bounded. With another Runner, that many jobs
	// run at once (default 1).
	Concurrency int
	// Options for the stream and consumer if the worker creates them.
	Options Options
	// Logger receives what the worker does and why (default: discarded).
	Logger *slog.Logger
	// PollWait bounds one pull for a job (default 5s); it is also how long
	// a stop may wait for an idle pull to end.
	PollWait time.Duration
	// MaxBackoff caps the wait between retries when NATS is unreachable
	// (default 30s).
	MaxBackoff time.Duration
	// RetryDelay is how long a job whose Runner failed waits before it is
	// handed out again, times its deliveries so far, at most 5 minutes
	// (default 5s).
	RetryDelay time.Duration
}

// Run pulls and runs jobs until ctx is cancelled, then returns nil after
// the jobs in progress ended (a job whose Runner failed because of the
// cancellation goes back to the queue at once). It returns an error only
// for what retrying cannot fix: a bad vantage point name, or a Conn closed
// by its owner.
func (w *Worker) Run(ctx context.Context) error {
	if err := CheckName("vantage", w.Vantage); err != nil {
		return err
	}
	if w.Runner == nil {
		return errors.New("campaign worker: no runner")
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("vantage", w.Vantage)
	nc := w.Conn
	if nc == nil {
		var err error
		if nc, err = w.connect(ctx, log); err != nil {
			return nil // cancelled while waiting for NATS
		}
		defer nc.Close()
	}
	var cons jetstream.Consumer
	var q *Queue
	bo := w.backoff()
	for {
		var err error
		if q, err = OpenQueue(ctx, nc, w.Options); err == nil {
			if cons, err = q.consumer(ctx, w.Vantage); err == nil {
				break
			}
		}
		if nc.IsClosed() {
			return fmt.Errorf("campaign worker: %w", nats.ErrConnectionClosed)
		}
		d := bo.next()
		log.Warn("cannot open the job queue; retrying", "err", err, "retry_in", d)
		if !sleep(ctx, d) {
			return nil
		}
	}
	log.Info("worker started", "consumer", ConsumerName(w.Vantage), "jobs", w.jobs())

	return w.pull(ctx, nc, q, cons, log)
}

// jobs is the most jobs held at once.
func (w *Worker) jobs() int {
	if w.Concurrency > 0 {
		return w.Concurrency
	}
	if _, ok := w.Runner.(Budget); ok {
		return DefaultJobs
	}
	return 1
}

// connect dials NATS until it answers or ctx ends, saying why it waits.
func (w *Worker) connect(ctx context.Context, log *slog.Logger) (*nats.Conn, error) {
	bo := w.backoff()
	for {
		nc, err := Connect(w.URL, "mitmguard worker "+w.Vantage,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				log.Warn("lost NATS; reconnecting", "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("NATS reconnected", "url", redact(nc.ConnectedUrl()))
			}))
		if err == nil {
			return nc, nil
		}
		d := bo.next()
		log.Warn("NATS unreachable; retrying", "err", err, "retry_in", d)
		if !sleep(ctx, d) {
			return nil, ctx.Err()
		}
	}
}

func (w *Worker) backoff() *backoff {
	b := &backoff{min: 100 * time.Millisecond, max: w.MaxBackoff}
	if b.max <= 0 {
		b.max = 30 * time.Second
	}
	return b
}

// pull takes jobs and starts each in a goroutine of its own: up to
// Concurrency at once, and with a Budget runner only while the jobs held
// leave the budget idle. It returns once the jobs it started have ended.
func (w *Worker) pull(ctx context.Context, nc *nats.Conn, q *Queue, cons jetstream.Consumer, log *slog.Logger) error {
	pollWait := w.PollWait
	if pollWait <= 0 {
		pollWait = 5 * time.Second
	}
	ackWait := cons.CachedInfo().Config.AckWait
	budget, _ := w.Runner.(Budget)
	held := make(chan struct{}, w.jobs()) // a token per job held
	ended := make(chan struct{}, 1)       // a job ended since the last look
	var wg sync.WaitGroup
	defer wg.Wait()
	bo := w.backoff()
	for ctx.Err() == nil {
		select {
		case held <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		if budget != nil && !waitRoom(ctx, budget, held, ended) {
			<-held
			return nil
		}
		// The pull ends when the server ends it, not on a deadline of
		// this side: a job the server hands out as this side gives up
		// would be dropped, unacknowledged until the ack wait. So a stop
		// waits for an idle pull to end (PollWait).
		msg, err := cons.Next(jetstream.FetchMaxWait(pollWait))
		if err == nil {
			bo.reset()
			entered := make(chan struct{})
			wg.Go(func() {
				defer func() {
					<-held
					select {
					case ended <- struct{}{}:
					default:
					}
				}()
				w.handle(ctx, q, msg, ackWait, log, sync.OnceFunc(func() { close(entered) }))
			})
			if budget != nil {
				select { // until the job counts in Room
				case <-entered:
				case <-ctx.Done():
				}
			}
			continue
		}
		<-held
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
			// no job this time
		case nc.IsClosed():
			return fmt.Errorf("campaign worker: %w", nats.ErrConnectionClosed)
		case errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, nats.ErrNoResponders):
			// Removed by an operator, or lost with the server's store (a
			// pull that reaches no consumer finds no responder, and one
			// looked up as its deletion ended may be gone): the jobs on the
			// stream are still there, so find or make it again.
			log.Warn("the vantage point's consumer is gone; creating it again", "err", err)
			if c, err := q.consumer(ctx, w.Vantage); err == nil {
				cons = c
			} else {
				sleep(ctx, bo.next())
			}
		default:
			d := bo.next()
			log.Warn("cannot pull a job; retrying", "err", err, "retry_in", d)
			sleep(ctx, d)
		}
	}
	return nil
}

// waitRoom waits until the budget has idle room, or no other job is held
// (held has the token of the job about to be taken). It reports false when
// ctx ended first.
func waitRoom(ctx context.Context, b Budget, held, ended chan struct{}) bool {
	for {
		select { // a job that ended may free no budget at all (a dropped job)
		case <-ended:
		default:
		}
		if len(held) <= 1 {
			return true
		}
		idle, changed := b.Room()
		if idle {
			return true
		}
		select {
		case <-changed:
		case <-ended:
		case <-ctx.Done():
			return false
		}
	}
}

// handle runs one job and settles it: acknowledged when done, terminated
// when malformed, returned to the queue when the run failed.
// entered is called once the job counts in the Budget's Room, or when
// handle returns.
func (w *Worker) handle(ctx context.Context, q *Queue, msg jetstream.Msg, ackWait time.Duration, log *slog.Logger, entered func()) {
	defer entered()
	// Settling must reach the server even when ctx is being cancelled.
	settle := context.WithoutCancel(ctx)
	delivery := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivery = md.NumDelivered
	}
	job, err := ParseJob(msg.Data())
	if err == nil && (job.Vantage != w.Vantage || msg.Subject() != job.Subject()) {
		err = &FormatError{What: "job", Reason: fmt.Sprintf("job for %s on subject %s, pulled by vantage point %s", job.Subject(), msg.Subject(), w.Vantage)}
	}
	if err != nil {
		log.Error("terminating a malformed job; it will not be retried", "subject", msg.Subject(), "reason", err)
		if err := msg.TermWithReason(err.Error()); err != nil {
			log.Warn("terminating the job failed; it comes back after the ack wait", "err", err)
		}
		return
	}
	log = log.With("campaign", job.Campaign, "seq", job.Seq, "hosts", len(job.Hosts), "delivery", delivery)
	spec, err := q.Spec(ctx, job.Campaign)
	var unknown *UnknownCampaignError
	var format *FormatError
	switch {
	case errors.As(err, &unknown) || errors.As(err, &format):
		log.Error("terminating a job of a campaign without a usable spec", "reason", err)
		msg.TermWithReason(err.Error())
		return
	case err != nil:
		log.Warn("cannot read the campaign's spec; the job goes back to the queue", "err", err)
		msg.NakWithDelay(time.Second)
		return
	case spec.State == StateCancelled:
		log.Info("dropping a job of a cancelled campaign")
		msg.Ack()
		return
	case !slices.Contains(spec.Vantages, job.Vantage):
		log.Error("terminating a job for a vantage point the campaign does not name")
		msg.TermWithReason("vantage point " + job.Vantage + " is not in campaign " + job.Campaign)
		return
	}

	// In-progress acknowledgements keep a long job from being handed to
	// another worker while this one is still on it.
	stopBeat := make(chan struct{})
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		t := time.NewTicker(max(ackWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stopBeat:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					log.Warn("in-progress acknowledgement failed", "err", err)
				}
			}
		}
	}()
	log.Info("job started")
	start := time.Now()
	runErr := w.Runner.Run(ctx, Work{Job: job, Spec: spec, Delivery: delivery, entered: entered})
	close(stopBeat)
	<-beatDone

	if runErr != nil {
		// Back to the queue: at once when stopping (another worker takes
		// it), after a delay growing with the deliveries when it failed.
		delay := time.Duration(0)
		if ctx.Err() == nil {
			step := w.RetryDelay
			if step <= 0 {
				step = 5 * time.Second
			}
			delay = min(time.Duration(delivery)*step, 5*time.Minute)
		}
		log.Warn("job failed; it goes back to the queue", "err", runErr, "retry_in", delay)
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("returning the job failed; it comes back after the ack wait", "err", err)
		}
		return
	}
	if err := msg.DoubleAck(settle); err != nil {
		// The records are committed; the job will run again and store
		// nothing new.
		log.Warn("acknowledging a done job failed; it will be redelivered", "err", err)
		return
	}
	log.Info("job done", "elapsed", time.Since(start).Round(time.Millisecond))
}

// backoff grows a wait exponentially with jitter, up to max.
type backoff struct{ min, max, cur time.Duration }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
