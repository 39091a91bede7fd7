package update

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// holderEnv makes the test binary a process that holds a folder's update
// lock (TestMain): it prints "locked" once it holds it, then waits to be
// killed.
const holderEnv = "MITMGUARD_TEST_LOCK_HOLDER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		if _, err := lockDir(context.Background(), dir, false, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("locked")
		select {}
	}
	os.Exit(m.Run())
}

// eventually fails the test if ch yields nothing in a long while: a guard
// against a hang, not a timing assumption (the event comes at once when
// the code is right).
func eventually[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("%s: nothing after a minute", what)
		panic("unreachable")
	}
}

// A second update on a folder that a first one is installing into waits
// for it (saying whom it waits for) instead of interleaving its writes,
// then finds the list current.
func TestUpdateWaitsForAnotherRun(t *testing.T) {
	dir, root := newTestRepo(t, time.Now())
	bundle := bundleOf(t, dir)
	cache := t.TempDir()
	ctx := context.Background()

	first := offlineClient(t, root, cache)
	first.Bundle = readBundle(t, bundle)
	installing, proceed := make(chan struct{}), make(chan struct{})
	first.beforeRename = func() error {
		close(installing)
		<-proceed
		return nil
	}
	firstDone := make(chan error, 1)
	go func() {
		res, err := first.Update(ctx)
		if err == nil && res.Status != "installed" {
			err = fmt.Errorf("status %q", res.Status)
		}
		firstDone <- err
	}()
	eventually(t, installing, "the first run's install")

	second := offlineClient(t, root, cache)
	second.Bundle = readBundle(t, bundle)
	waiting := make(chan int, 1)
	second.Waiting = func(pid int) { waiting <- pid }
	type result struct {
		res *Result
		err error
	}
	secondDone := make(chan result, 1)
	go func() {
		res, err := second.Update(ctx)
		secondDone <- result{res, err}
	}()
	if pid := eventually(t, waiting, "the second run waiting"); pid != os.Getpid() {
		t.Errorf("the second run waits for PID %d, want %d", pid, os.Getpid())
	}
	select {
	case r := <-secondDone:
		t.Fatalf("the second run finished while the first held the folder: %+v %v", r.res, r.err)
	default:
	}
	close(proceed)
	if err := eventually(t, firstDone, "the first run"); err != nil {
		t.Fatalf("first run: %v", err)
	}
	r := eventually(t, secondDone, "the second run")
	if r.err != nil || r.res.Status != "current" || r.res.Version != 1 {
		t.Fatalf("second run: %+v %v", r.res, r.err)
	}
}

// With NoWait an update on a folder another process holds fails at once,
// naming that process, and changes nothing; once that process is killed
// the operating system frees the folder and an update goes through.
func TestUpdateNoWaitNamesHolder(t *testing.T) {
	dir, root := newTestRepo(t, time.Now())
	bundle := bundleOf(t, dir)
	cache := t.TempDir()

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), holderEnv+"="+cache)
	holder.Stderr = os.Stderr
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("the holder said %q", line)
	}

	c := offlineClient(t, root, cache)
	c.Bundle = readBundle(t, bundle)
	c.NoWait = true
	c.Waiting = func(int) { t.Error("Waiting called with NoWait") }
	res, err := c.Update(context.Background())
	var be *BusyError
	var ue *Error
	if !errors.As(err, &be) || !errors.As(err, &ue) || ue.Stage != "lock" {
		t.Fatalf("update beside a holder: %+v %v", res, err)
	}
	if be.PID != holder.Process.Pid || be.Path != filepath.Join(cache, LockFile) {
		t.Errorf("BusyError %+v, want PID %d", be, holder.Process.Pid)
	}
	if want := fmt.Sprintf("process %d", holder.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
	if _, err := os.Stat(filepath.Join(cache, "metadata")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run touched the folder: %v", err)
	}

	holder.Process.Kill()
	holder.Wait()
	if res, err := c.Update(context.Background()); err != nil || res.Status != "installed" {
		t.Fatalf("after the holder died: %+v %v", res, err)
	}
}

// A waiting update gives up when its context ends.
func TestUpdateLockWaitCancelled(t *testing.T) {
	cache := t.TempDir()
	held, err := lockDir(context.Background(), cache, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{Dir: cache, Waiting: func(int) { cancel() }}
	if _, err := c.Update(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}
