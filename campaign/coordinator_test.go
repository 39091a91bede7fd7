package campaign

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func streamMsgs(t *testing.T, q *Queue) uint64 {
	t.Helper()
	info, err := q.jobs.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestSubmitTwiceAddsNothing(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)

	res, err := q.Submit(ctx, request("c1", 25, "kz", "us"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Jobs != 3 || res.Hosts != 25 || res.Published != 6 || res.AlreadySubmitted {
		t.Fatalf("first submit: %+v, want 3 jobs per vantage point, 6 published", res)
	}
	first, err := q.Spec(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}

	res, err = q.Submit(ctx, request("c1", 25, "kz", "us"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.AlreadySubmitted || res.Published != 0 {
		t.Fatalf("second submit: %+v, want already submitted, nothing published", res)
	}
	if n := streamMsgs(t, q); n != 6 {
		t.Fatalf("stream holds %d jobs after the second submit, want 6", n)
	}

	// A submit that died after publishing (spec still "submitting") is
	// finished by the same submit: the stream drops the duplicates and the
	// random control SNIs chosen the first time stay.
	first.State = StateSubmitting
	b, _ := first.Marshal()
	if _, err := q.specs.Put(ctx, "c1", b); err != nil {
		t.Fatal(err)
	}
	res, err = q.Submit(ctx, request("c1", 25, "kz", "us"))
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadySubmitted || res.Published != 0 {
		t.Fatalf("resumed submit: %+v, want 0 new jobs", res)
	}
	if n := streamMsgs(t, q); n != 6 {
		t.Fatalf("stream holds %d jobs after a resumed submit, want 6", n)
	}
	again, _ := q.Spec(ctx, "c1")
	if again.State != StateSubmitted || !slices.Equal(again.ControlDomains, first.ControlDomains) {
		t.Fatalf("spec after resumed submit: %+v", again)
	}

	// The same ID for another campaign is refused.
	var conflict *ConflictError
	if _, err := q.Submit(ctx, request("c1", 26, "kz", "us")); !errors.As(err, &conflict) {
		t.Fatalf("other hosts under the same ID: %v, want a ConflictError", err)
	}
	if _, err := q.Submit(ctx, request("c1", 25, "kz")); !errors.As(err, &conflict) {
		t.Fatalf("other vantage points under the same ID: %v, want a ConflictError", err)
	}
	if n := streamMsgs(t, q); n != 6 {
		t.Fatalf("stream holds %d jobs after refused submits, want 6", n)
	}
}

func TestEveryVantageGetsEveryHost(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	hosts, _ := hostList(95)
	vantages := []string{"almaty", "toronto", "frankfurt"}
	if _, err := q.Submit(ctx, request("c2", 95, vantages...)); err != nil {
		t.Fatal(err)
	}
	for _, v := range vantages {
		c, err := q.consumer(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			batch, err := c.Fetch(100, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range batch.Messages() {
				n++
				j, err := ParseJob(m.Data())
				if err != nil {
					t.Fatal(err)
				}
				if m.Subject() != "mitmguard.jobs."+v+".c2" || j.Vantage != v || j.Campaign != "c2" {
					t.Fatalf("job %s on subject %s pulled by %s", j.MsgID(), m.Subject(), v)
				}
				if len(j.Hosts) > 10 {
					t.Fatalf("job of %d hosts, batch is 10", len(j.Hosts))
				}
				got = append(got, j.Hosts...)
				m.Ack()
			}
			if n == 0 {
				break
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(hosts))
		if !slices.Equal(got, want) {
			t.Fatalf("vantage point %s got %d hosts, want all %d once", v, len(got), len(want))
		}
	}
}

func TestCancel(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("c3", 30, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Submit(ctx, request("other", 30, "a")); err != nil {
		t.Fatal(err)
	}
	n, err := q.Cancel(ctx, "c3")
	if err != nil || n != 6 {
		t.Fatalf("Cancel = %d, %v; want 6 jobs removed", n, err)
	}
	st, err := q.Status(ctx, "c3")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateCancelled || st.PendingJobs != 0 || st.Done {
		t.Fatalf("status after cancel: %+v", st)
	}
	if m := streamMsgs(t, q); m != 3 {
		t.Fatalf("stream holds %d jobs, want the other campaign's 3", m)
	}
	// A cancelled campaign's ID cannot be submitted again.
	var conflict *ConflictError
	if _, err := q.Submit(ctx, request("c3", 30, "a", "b")); !errors.As(err, &conflict) {
		t.Fatalf("resubmitting a cancelled campaign: %v", err)
	}
	// A job of the cancelled campaign still reaching a worker is dropped.
	j := &Job{Version: Version, Campaign: "c3", Vantage: "b", Seq: 1, Hosts: []string{"127.0.0.1:443"}}
	b, _ := j.Marshal()
	if _, err := q.js.Publish(ctx, j.Subject(), b); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runWorker(t, &Worker{URL: s.URL(), Vantage: "b", Runner: rec, PollWait: 200 * time.Millisecond})
	waitFor(t, "the cancelled job to leave the stream", func() bool { return streamMsgs(t, q) == 3 })
	if len(rec.event) != 0 {
		t.Fatal("a job of a cancelled campaign was run")
	}
	if _, err := q.Cancel(ctx, "nope"); !errors.As(err, new(*UnknownCampaignError)) {
		t.Fatalf("cancel of an unknown campaign: %v", err)
	}
}

func TestStatusProgress(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("c4", 20, "a", "b")); err != nil {
		t.Fatal(err)
	}
	st, err := q.Status(ctx, "c4")
	if err != nil {
		t.Fatal(err)
	}
	if st.Done || st.PendingJobs != 4 || st.JobsPerVantage != 2 || len(st.Vantages) != 2 || st.Vantages[0].QueueWaiting != 2 {
		t.Fatalf("status before any worker: %+v", st)
	}
	rec := newRecorder()
	runWorker(t, &Worker{URL: s.URL(), Vantage: "a", Runner: rec, PollWait: 200 * time.Millisecond})
	waitFor(t, "vantage point a to finish", func() bool {
		st, err = q.Status(ctx, "c4")
		return err == nil && st.Vantages[0].Done
	})
	if st.Done || st.PendingJobs != 2 || st.Vantages[0].JobsDone != 2 || st.Vantages[1].Done || st.Vantages[1].PendingJobs != 2 {
		t.Fatalf("status with only a done: %+v", st)
	}
	runWorker(t, &Worker{URL: s.URL(), Vantage: "b", Runner: rec, PollWait: 200 * time.Millisecond})
	waitFor(t, "the campaign to finish", func() bool {
		st, err = q.Status(ctx, "c4")
		return err == nil && st.Done
	})
	if rec.hosts("a") != 20 || rec.hosts("b") != 20 {
		t.Fatalf("hosts run: a %d, b %d; want 20 each", rec.hosts("a"), rec.hosts("b"))
	}
}

// A job the server hands out when the worker's pull has already run out of
// time on its side (a loaded machine, a slow link: here every byte from the
// server comes 300 ms late, the pull lasts 200 ms) is not dropped: dropped,
// it would sit unacknowledged for the ack wait (5 minutes) while the
// campaign looks stuck, which is how TestStatusProgress timed out under
// load.
func TestSlowLinkStrandsNoJob(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("slow", 30, "a")); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runWorker(t, &Worker{URL: slowLink(t, s.URL(), 300*time.Millisecond), Vantage: "a", Runner: rec, PollWait: 200 * time.Millisecond})
	var st *Status
	waitFor(t, "the campaign to finish through the slow link", func() bool {
		var err error
		st, err = q.Status(ctx, "slow")
		return err == nil && st.Done
	})
	if rec.hosts("a") != 30 || st.Vantages[0].QueueRedelivered != 0 {
		t.Fatalf("%d hosts run, %d jobs redelivered; want 30 hosts, none redelivered", rec.hosts("a"), st.Vantages[0].QueueRedelivered)
	}
}

// A consumer removed while the worker is busy with a job (no pull waiting,
// so no "consumer deleted" notice reaches it) is found gone by the next
// pull, which no consumer answers, and made again: the jobs get done.
func TestConsumerRemovedWhileWorkerBusy(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	if _, err := q.Submit(ctx, request("busy", 20, "kz")); err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	var once sync.Once
	runner := RunnerFunc(func(ctx context.Context, w Work) error {
		once.Do(func() {
			close(started)
			<-release
		})
		return rec.Run(ctx, w)
	})
	runWorker(t, &Worker{URL: s.URL(), Vantage: "kz", Runner: runner, PollWait: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	receive(t, started)
	if err := q.jobs.DeleteConsumer(ctx, ConsumerName("kz")); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, "the campaign to finish after the consumer was removed", func() bool {
		st, err := q.Status(ctx, "busy")
		return err == nil && st.Done
	})
	if rec.hosts("kz") != 20 {
		t.Fatalf("%d hosts run, want 20", rec.hosts("kz"))
	}
}

func TestUnreachableNATS(t *testing.T) {
	s, _ := startNATS(t)
	url := s.URL()
	s.Close() // nothing listens there any more
	start := time.Now()
	_, err := Connect(url, "test")
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "cannot reach NATS at "+url) {
		t.Fatalf("err = %v, want a ConnectError naming %s", err, url)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v to report an unreachable server", d)
	}
	if _, err := Connect("nats://user:secret@127.0.0.1:1", "test"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestSubmitRefusesBadInput(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	ctx := testCtx(t)
	for name, r := range map[string]Request{
		"no vantage":     request("c5", 3),
		"bad vantage":    request("c5", 3, "a.b"),
		"bad id":         request("c5>", 3, "a"),
		"twice the same": request("c5", 3, "a", "a"),
		"no hosts":       request("c5", 0, "a"),
		"bad host": {ID: "c5", Vantages: []string{"a"}, Domains: []string{"x.example"}, Hosts: func(ctx context.Context, emit func(string) error) error {
			return emit("example.com:443")
		}},
	} {
		if _, err := q.Submit(ctx, r); err == nil {
			t.Errorf("%s: submitted", name)
		}
	}
	if n := streamMsgs(t, q); n != 0 {
		t.Fatalf("refused submits left %d jobs", n)
	}
}

// More jobs than the publish window: every one arrives, once.
func TestSubmitManyJobs(t *testing.T) {
	s, _ := startNATS(t)
	q := openQueue(t, s.URL(), Options{})
	r := request("many", 1500, "a", "b")
	r.Batch = 1
	res, err := q.Submit(testCtx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 3000 || streamMsgs(t, q) != 3000 {
		t.Fatalf("published %d, stream holds %d; want 3000", res.Published, streamMsgs(t, q))
	}
}
