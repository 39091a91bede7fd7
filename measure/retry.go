package measure

import (
	"context"
	"time"
)

// RetryTransient runs write until it succeeds, fails with an error that
// transient does not call passing (nil: none does), or would retry past d
// (a lock another writer holds), waiting 50 ms doubling to 2 s between
// tries. write runs on a context not cancelled with ctx: what was measured
// is worth committing after Ctrl-C; only the waits end with ctx, returning
// the last error.
func RetryTransient(ctx context.Context, d time.Duration, transient func(error) bool, write func(context.Context) error) error {
	deadline := time.Now().Add(d)
	wait := 50 * time.Millisecond
	for {
		err := write(context.WithoutCancel(ctx))
		if err == nil || transient == nil || !transient(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, 2*time.Second)
	}
}
