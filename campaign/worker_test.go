package campaign

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mitmguard/mitmguard/natsd"
)

// A worker killed mid-job (its connection gone, the job unacknowledged)
// loses nothing: after the ack wait another worker gets the job.
func TestKilledWorkerJobRedelivered(t *testing.T) {
	s, _ := startNATS(t)
	opts := Options{AckWait: time.Second}
	q := openQueue(t, s.URL(), opts)
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("k1", 5, "kz")); err != nil {
		t.Fatal(err)
	}

	started := make(chan Work, 1)
	blocked := RunnerFunc(func(ctx context.Context, w Work) error {
		started <- w
		<-ctx.Done() // never finishes on its own
		return ctx.Err()
	})
	ncA := connect(t, s.URL())
	cancelA := runWorker(t, &Worker{Conn: ncA, Vantage: "kz", Runner: blocked, Options: opts, PollWait: 200 * time.Millisecond})
	var first Work
	select {
	case first = <-started:
	case <-ctx.Done():
		t.Fatal("worker A got no job")
	}
	ncA.Close() // the kill: no ack, no nak, no more in-progress acks
	defer cancelA()

	rec := newRecorder()
	runWorker(t, &Worker{URL: s.URL(), Vantage: "kz", Runner: rec, Options: opts, PollWait: 200 * time.Millisecond})
	var again Work
	select {
	case again = <-rec.event:
	case <-ctx.Done():
		t.Fatal("the killed worker's job never came back")
	}
	if again.Seq != first.Seq || again.Delivery < 2 {
		t.Fatalf("worker B ran job %d (delivery %d), want job %d redelivered", again.Seq, again.Delivery, first.Seq)
	}
	var st *Status
	waitFor(t, "the campaign to finish", func() bool {
		var err error
		st, err = q.Status(ctx, "k1")
		return err == nil && st.Done
	})
	if rec.hosts("kz") != 5 {
		t.Fatalf("worker B ran %d hosts, want all 5", rec.hosts("kz"))
	}
}

// A long job does not go to another worker while its worker is alive: the
// in-progress acknowledgements keep it.
func TestLongJobKeptByInProgress(t *testing.T) {
	s, _ := startNATS(t)
	opts := Options{AckWait: 300 * time.Millisecond}
	q := openQueue(t, s.URL(), opts)
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("long", 1, "kz")); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	slow := RunnerFunc(func(ctx context.Context, w Work) error {
		runs.Add(1)
		// Ten ack waits: without in-progress acks the consumer would
		// redeliver the job (to the second slot) in the meantime.
		return pause(ctx, 10*opts.AckWait)
	})
	runWorker(t, &Worker{URL: s.URL(), Vantage: "kz", Runner: slow, Options: opts, Concurrency: 2, PollWait: 100 * time.Millisecond})
	waitFor(t, "the long job to finish", func() bool {
		st, err := q.Status(ctx, "long")
		return err == nil && st.Done
	})
	if n := runs.Load(); n != 1 {
		t.Fatalf("the long job ran %d times, want once", n)
	}
}

// pause is a job that takes d.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ctrl-C during a job returns it to the queue at once, not after the ack
// wait.
func TestStopReturnsJob(t *testing.T) {
	s, _ := startNATS(t)
	opts := Options{AckWait: time.Hour} // a redelivery by timeout would never come
	q := openQueue(t, s.URL(), opts)
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("stop", 3, "kz")); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	blocked := RunnerFunc(func(ctx context.Context, w Work) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	wctx, stop := context.WithCancel(context.Background())
	w := &Worker{URL: s.URL(), Vantage: "kz", Runner: blocked, Options: opts, PollWait: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	receive(t, started)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker stopped with %v, want nil", err)
	}
	rec := newRecorder()
	runWorker(t, &Worker{URL: s.URL(), Vantage: "kz", Runner: rec, Options: opts, PollWait: 100 * time.Millisecond})
	waitFor(t, "the returned job to be done", func() bool {
		st, err := q.Status(ctx, "stop")
		return err == nil && st.Done
	})
}

// A malformed job is terminated with a logged reason: never run, never
// redelivered, and the queue goes on.
func TestMalformedJobTerminated(t *testing.T) {
	s, _ := startNATS(t)
	opts := Options{AckWait: 200 * time.Millisecond}
	q := openQueue(t, s.URL(), opts)
	ctx := testCtx(t)
	if _, err := q.consumer(ctx, "kz"); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{ // subject's campaign: m1, but for "no campaign"
		"not JSON":      `{"v":1,"campaign":`,
		"wrong version": `{"v":9,"campaign":"m1","vantage":"kz","seq":1,"hosts":["127.0.0.1:443"]}`,
		"bad host":      `{"v":1,"campaign":"m1","vantage":"kz","seq":1,"hosts":["example.com:443"]}`,
		"other vantage": `{"v":1,"campaign":"m1","vantage":"us","seq":1,"hosts":["127.0.0.1:443"]}`,
		"no campaign":   `{"v":1,"campaign":"nosuch","vantage":"kz","seq":1,"hosts":["127.0.0.1:443"]}`,
	}
	for name, b := range bad {
		subject := JobSubject("kz", "m1")
		if name == "no campaign" {
			subject = JobSubject("kz", "nosuch")
		}
		if _, err := q.js.Publish(ctx, subject, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	rec := newRecorder()
	runWorker(t, &Worker{URL: s.URL(), Vantage: "kz", Runner: rec, Options: opts, Logger: testLogger(&logs), PollWait: 100 * time.Millisecond})
	// Terminated jobs leave the work-queue stream: nothing is left to
	// redeliver.
	waitFor(t, "the malformed jobs to leave the stream", func() bool { return streamMsgs(t, q) == 0 })
	// A good job after them runs: the worker did not stall on them.
	if _, err := q.Submit(ctx, request("m2", 1, "kz")); err != nil {
		t.Fatal(err)
	}
	if w := receive(t, rec.event); w.Campaign != "m2" {
		t.Fatalf("ran a job of %s", w.Campaign)
	}
	// The recorder reports a job before the worker acknowledges it, so
	// the good job's acknowledgement may still be on its way: wait for
	// it. A malformed job left unsettled would keep the count above zero
	// (or come back, counted as redelivered).
	cons, _ := q.consumer(ctx, "kz")
	var info *jetstream.ConsumerInfo
	waitFor(t, "every job settled", func() bool {
		var err error
		if info, err = cons.Info(ctx); err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 0 || info.NumRedelivered != 0
	})
	if info.NumRedelivered != 0 || info.NumAckPending != 0 {
		t.Fatalf("consumer: %d redelivered, %d unacknowledged; want none", info.NumRedelivered, info.NumAckPending)
	}
	if len(rec.event) != 0 || len(rec.jobs) != 1 {
		t.Fatalf("%d jobs ran, want only the good one", len(rec.jobs))
	}
	out := logs.String()
	for _, reason := range []string{"malformed job", "version 9", "example.com:443", "pulled by vantage point kz", "no campaign nosuch"} {
		if !strings.Contains(out, reason) {
			t.Errorf("log does not give the reason %q:\n%s", reason, out)
		}
	}
	if n := strings.Count(out, "terminating"); n != len(bad) {
		t.Errorf("%d terminations logged, want %d:\n%s", n, len(bad), out)
	}
}

// NATS stopped and started again on the same store folder mid-campaign
// loses no job: the worker reconnects and every host gets measured.
func TestNATSRestartLosesNoJob(t *testing.T) {
	dir := t.TempDir()
	s, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	url := s.URL()
	defer func() { s.Close() }()
	ctx := testCtx(t)
	// Jobs handed out as the server stopped are acknowledged by nobody;
	// they come back after the ack wait.
	opts := Options{AckWait: time.Second}
	q := openQueue(t, url, opts)
	hosts, _ := hostList(100)
	if _, err := q.Submit(ctx, request("r1", 100, "kz", "us")); err != nil {
		t.Fatal(err)
	}

	rec := newRecorder()
	var logs syncBuffer
	for _, v := range []string{"kz", "us"} {
		runWorker(t, &Worker{URL: url, Vantage: v, Runner: rec, Options: opts, Logger: testLogger(&logs), PollWait: 200 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	}
	for range 3 {
		receive(t, rec.event)
	}
	s.Close()
	if s, err = natsd.Start(natsd.Config{Listen: addr, StoreDir: dir}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every vantage point to run every host after the restart", func() bool {
		return rec.hosts("kz") == len(hosts) && rec.hosts("us") == len(hosts)
	})
	// The coordinator's connection came back too: the status is complete.
	waitFor(t, "the campaign to be done", func() bool {
		st, err := q.Status(ctx, "r1")
		return err == nil && st.Done
	})
	if !strings.Contains(logs.String(), "lost NATS") {
		t.Errorf("the worker did not say it lost NATS:\n%s", logs.String())
	}
}

// A worker whose NATS is not there yet waits with backoff and says so; it
// starts working once the server appears.
func TestWorkerWaitsForNATS(t *testing.T) {
	dir := t.TempDir()
	s, err := natsd.Start(natsd.Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr, url := s.Addr().String(), s.URL()
	s.Close()

	var logs syncBuffer
	rec := newRecorder()
	runWorker(t, &Worker{URL: url, Vantage: "kz", Runner: rec, Logger: testLogger(&logs), PollWait: 200 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	waitFor(t, "the worker to report NATS unreachable", func() bool { return strings.Contains(logs.String(), "NATS unreachable") })

	if s, err = natsd.Start(natsd.Config{Listen: addr, StoreDir: dir}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := openQueue(t, url, Options{})
	if _, err := q.Submit(testCtx(t), request("w1", 12, "kz")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker to run every host", func() bool { return rec.hosts("kz") == 12 })
}

func TestWorkerRefusesBadVantage(t *testing.T) {
	w := &Worker{URL: "nats://127.0.0.1:1", Vantage: "a.b", Runner: newRecorder()}
	if err := w.Run(context.Background()); !errors.As(err, new(*NameError)) {
		t.Fatalf("err = %v, want a NameError", err)
	}
}

// A job whose Runner failed (the store was away, say) is not acknowledged:
// it comes back after the retry delay and is done then.
func TestFailedJobRetried(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("f1", 3, "kz")); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	deliveries := make(chan uint64, 10)
	flaky := RunnerFunc(func(ctx context.Context, w Work) error {
		deliveries <- w.Delivery
		if calls.Add(1) == 1 {
			return errors.New("store unreachable")
		}
		return nil
	})
	var logs syncBuffer
	runWorker(t, &Worker{URL: s.URL(), Vantage: "kz", Runner: flaky, Logger: testLogger(&logs), PollWait: 100 * time.Millisecond, RetryDelay: 50 * time.Millisecond})
	waitFor(t, "the campaign to finish", func() bool {
		st, err := q.Status(ctx, "f1")
		return err == nil && st.Done
	})
	if first, second := receive(t, deliveries), receive(t, deliveries); first != 1 || second != 2 {
		t.Fatalf("deliveries %d then %d, want the failed job delivered again", first, second)
	}
	if !strings.Contains(logs.String(), "store unreachable") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
}

// A consumer removed under a running worker (by an operator) is created
// again, and the jobs still on the stream get done.
func TestConsumerRemovedUnderWorker(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	rec := newRecorder()
	var logs syncBuffer
	runWorker(t, &Worker{URL: s.URL(), Vantage: "kz", Runner: rec, Logger: testLogger(&logs), PollWait: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	waitFor(t, "the worker to start", func() bool { return strings.Contains(logs.String(), "worker started") })
	if err := q.jobs.DeleteConsumer(ctx, ConsumerName("kz")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker to notice", func() bool { return strings.Contains(logs.String(), "consumer is gone") })
	// A job put on the stream without Submit, which would create the
	// consumer itself: only the worker can bring it back.
	spec := validSpec()
	spec.ID, spec.Vantages, spec.Hosts, spec.Batch, spec.Jobs = "gone", []string{"kz"}, 1, 1, 1
	b, _ := spec.Marshal()
	if _, err := q.specs.Put(ctx, spec.ID, b); err != nil {
		t.Fatal(err)
	}
	j := &Job{Version: Version, Campaign: "gone", Vantage: "kz", Seq: 1, Hosts: []string{"127.0.0.9:443"}}
	b, _ = j.Marshal()
	if _, err := q.js.Publish(ctx, j.Subject(), b); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-rec.event:
		if w.Campaign != "gone" {
			t.Fatalf("ran a job of %s", w.Campaign)
		}
	case <-ctx.Done():
		t.Fatal("the job on the stream was never run")
	}
}
