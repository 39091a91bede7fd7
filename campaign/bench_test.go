package campaign

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSubmit measures publishing jobs (one host each) on the real
// server: the coordinator's cost per job.
func BenchmarkSubmit(b *testing.B) {
	s, _ := startNATSB(b)
	q, err := OpenQueue(context.Background(), connectB(b, s), Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := request("bench", b.N, "kz")
	r.Batch = 1
	b.ResetTimer()
	if _, err := q.Submit(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkWorkers measures the queue's overhead per job with a Runner that
// does nothing: pull, spec lookup, run, double ack, for 1, 2 and 4 workers.
func BenchmarkWorkers(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			s, _ := startNATSB(b)
			q, err := OpenQueue(context.Background(), connectB(b, s), Options{})
			if err != nil {
				b.Fatal(err)
			}
			r := request("bench", b.N, "kz")
			r.Batch = 1
			if _, err := q.Submit(context.Background(), r); err != nil {
				b.Fatal(err)
			}
			var done atomic.Int64
			all := make(chan struct{})
			noop := RunnerFunc(func(context.Context, Work) error {
				if done.Add(1) == int64(b.N) {
					close(all)
				}
				return nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ResetTimer()
			for range n {
				go (&Worker{URL: s.URL(), Vantage: "kz", Runner: noop, PollWait: time.Second}).Run(ctx)
			}
			<-all
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
