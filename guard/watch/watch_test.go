package watch_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/guard/watch"
	"github.com/mitmguard/mitmguard/internal/atomicfile"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/update/active"
)

// install writes list into dir the way mitmguard update does: a complete
// file renamed over the old one.
func install(t *testing.T, dir string, data []byte) {
	t.Helper()
	if err := atomicfile.Write(filepath.Join(dir, active.ListFile), data, 0o644, nil); err != nil {
		t.Fatal(err)
	}
}

func marshal(t *testing.T, l *blocklist.List) []byte {
	t.Helper()
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// waitFor returns the first value on ch, failing the test when none comes
// in a long while (a bound on a hang, not a timing assertion).
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("no %s within a minute", what)
		panic("unreachable")
	}
}

// A running program's guard takes a newer installed list while connections
// are in flight: every connection through the lab's middlebox either
// succeeds (the old list does not know the lab's national root) or is
// refused as that root, none fails for another reason, none that starts
// after the swap gets through the forged chain; a damaged and then an older
// list installed afterwards are not taken, and the new list keeps enforcing.
func TestSwapUnderLoad(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	emb := blocklist.Embedded()
	before := blocklist.WithVersion(emb, emb.Version+1, time.Now())
	labList, labID := lab.Blocklist(l.NationalRoot)
	after := blocklist.WithVersion(labList, emb.Version+2, time.Now())

	dir := t.TempDir()
	install(t, dir, marshal(t, before))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	swaps := make(chan *blocklist.List, 4)
	errs := make(chan error, 16)
	var swapDone atomic.Bool
	policy := watch.Start(ctx, watch.Options{
		Dir:      dir,
		Interval: 2 * time.Millisecond,
		OnSwap: func(_, n *blocklist.List) {
			swapDone.Store(true)
			swaps <- n
		},
		OnError: func(err error) { errs <- err },
	})
	if v := policy.List().Version; v != before.Version {
		t.Fatalf("started on version %d, want %d", v, before.Version)
	}

	trusting := l.PublicPool()
	trusting.AddCert(l.NationalRoot) // the device trusts the national root
	tr := guard.Transport(&http.Transport{DisableKeepAlives: true}, guard.Options{Policy: policy})
	tr.TLSClientConfig.RootCAs = trusting
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", l.MiddleboxAddr)
	}
	client := &http.Client{Transport: tr}
	get := func() error {
		resp, err := client.Get("https://www.facebook.com/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && !strings.Contains(string(body), "hello from the lab origin") {
			err = errors.New("relay broken: " + string(body))
		}
		return err
	}

	var (
		okBefore, okAfterSwap, refused, refusedAfter atomic.Int64
		mu                                           sync.Mutex
		failures                                     []string
	)
	enoughOK, enoughRefused := make(chan struct{}), make(chan struct{})
	var closeOK, closeRefused sync.Once
	workers, stop := 6, make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				startedAfterSwap := swapDone.Load()
				err := get()
				var ie *guard.InterceptionError
				switch {
				case err == nil && startedAfterSwap:
					okAfterSwap.Add(1)
				case err == nil:
					if okBefore.Add(1) >= 20 {
						closeOK.Do(func() { close(enoughOK) })
					}
				case errors.As(err, &ie) && ie.Entry.ID == labID:
					refused.Add(1)
					if startedAfterSwap && refusedAfter.Add(1) >= 40 {
						closeRefused.Do(func() { close(enoughRefused) })
					}
				default:
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	waitFor(t, enoughOK, "successful connections with the first list")
	install(t, dir, marshal(t, after))
	if n := waitFor(t, swaps, "swap"); n.Version != after.Version || n.ByID(labID) == nil {
		t.Fatalf("swapped to version %d", n.Version)
	}
	waitFor(t, enoughRefused, "refused connections after the swap")
	close(stop)
	wg.Wait()

	t.Logf("%d connections succeeded before the swap, %d were refused (%d started after it)", okBefore.Load(), refused.Load(), refusedAfter.Load())
	if okAfterSwap.Load() != 0 {
		t.Errorf("%d connections started after the swap got through the forged chain", okAfterSwap.Load())
	}
	if len(failures) > 0 {
		t.Errorf("%d connections failed for another reason, first: %s", len(failures), failures[0])
	}

	// A damaged list is not taken: the new list keeps enforcing.
	install(t, dir, []byte(`{"format": "mitmguard-blocklist", "entries": [`))
	var de *active.DamagedError
	if err := waitFor(t, errs, "error for the damaged list"); !errors.As(err, &de) {
		t.Fatalf("damaged list reported as %v", err)
	}
	var ie *guard.InterceptionError
	if err := get(); !errors.As(err, &ie) {
		t.Fatalf("after a damaged list: %v", err)
	}
	// Nor is an older list, which would bring the root back.
	install(t, dir, marshal(t, before))
	var re *guard.RollbackError
	if err := waitFor(t, errs, "error for the older list"); !errors.As(err, &re) || re.Current != after.Version || re.Offered != before.Version {
		t.Fatalf("older list reported as %v", err)
	}
	if err := get(); !errors.As(err, &ie) {
		t.Fatalf("after an older list: %v", err)
	}
	// Nor does removing the file lift the block.
	os.Remove(filepath.Join(dir, active.ListFile))
	var rm *watch.RemovedError
	if err := waitFor(t, errs, "error for the removed list"); !errors.As(err, &rm) {
		t.Fatalf("removed list reported as %v", err)
	}
	if err := get(); !errors.As(err, &ie) || policy.List().Version != after.Version {
		t.Fatalf("after the list was removed: %v, version %d", err, policy.List().Version)
	}
	select {
	case err := <-errs:
		t.Errorf("unexpected report: %v", err)
	default:
	}
}

// The first list installed may carry the embedded list's version (a new
// repository publishes version 1): it blocks more, so it is taken.
func TestFirstListOfTheEmbeddedVersion(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	swaps, errs := make(chan *blocklist.List, 1), make(chan error, 4)
	policy := watch.Start(ctx, watch.Options{Dir: dir, Interval: time.Millisecond,
		OnSwap: func(_, n *blocklist.List) { swaps <- n }, OnError: func(err error) { errs <- err }})
	emb := blocklist.Embedded()
	if policy.List().Len() != emb.Len() {
		t.Fatal("nothing installed: not the embedded list")
	}
	extra, err := blocklist.New([]*blocklist.Entry{{ID: "new-root", Name: "CN=new root", Kind: blocklist.KindGovernment,
		SPKISHA256: "0000000000000000000000000000000000000000000000000000000000000001"}}, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	install(t, dir, marshal(t, blocklist.WithVersion(blocklist.Merge(emb, extra), emb.Version, time.Now())))
	select {
	case n := <-swaps:
		if n.ByID("new-root") == nil || policy.List() != n {
			t.Fatalf("swapped to a list without the new root")
		}
	case err := <-errs:
		t.Fatalf("not taken: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no swap within a minute")
	}
}
