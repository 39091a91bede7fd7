package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two real update processes on one folder: while one holds it (stalled on
// a mirror that never answers), another with --no-wait fails at once
// naming the holder's PID, and one without waits, saying for whom, and
// installs once the holder is gone (killed: the OS frees its lock).
func TestUpdateWaitsForAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	repo, state := filepath.Join(dir, "tuf"), filepath.Join(dir, "state")
	t.Setenv("MITMGUARD_DIR", state)
	mustRun := cliRunner(t)
	list := filepath.Join(dir, "list.json")
	if err := os.WriteFile(list, []byte(mustRun(0, "blocklist", "export", "--format", "json")), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle, root := filepath.Join(dir, "list.bundle"), filepath.Join(repo, "repository", "1.root.json")
	mustRun(0, "repo", "init", repo)
	mustRun(0, "repo", "publish", repo, "--list", list)
	mustRun(0, "repo", "bundle", repo, "--output", bundle)

	// A mirror that never answers keeps the first run inside its update.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{}, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	})}
	go srv.Serve(ln)
	defer srv.Close()
	start := func(args ...string) (*exec.Cmd, *bufio.Reader) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), mainEnv+"=1")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, bufio.NewReader(stderr)
	}
	holder, _ := start("update", "--url", "http://"+ln.Addr().String(), "--trust-root", root, "--timeout", "1h")
	select {
	case <-asked: // it holds the folder by the time it asks a mirror
	case <-time.After(time.Minute):
		t.Fatal("the first run never asked its mirror")
	}
	pid := fmt.Sprint(holder.Process.Pid)

	s := mustRun(1, "update", "--no-wait", "--from-file", bundle, "--trust-root", root)
	if !strings.Contains(s, "process "+pid) || !strings.Contains(s, filepath.Join(state, "update.lock")) {
		t.Errorf("--no-wait does not name the holder %s and the lock file:\n%s", pid, s)
	}
	s = mustRun(1, "update", "--no-wait", "--json", "--from-file", bundle, "--trust-root", root)
	var v struct{ Status, Stage string }
	if err := json.Unmarshal([]byte(s[:strings.IndexByte(s, '\n')]), &v); err != nil || v.Status != "refused" || v.Stage != "lock" {
		t.Errorf("--no-wait --json: %+v %v\n%s", v, err, s)
	}

	waiter, stderr := start("update", "--from-file", bundle, "--trust-root", root)
	line, err := stderr.ReadString('\n')
	if want := "waiting for the run with PID " + pid; !strings.Contains(line, want) {
		t.Fatalf("the second run said %q (%v), want %q", line, err, want)
	}
	holder.Process.Kill()
	holder.Wait()
	if err := waiter.Wait(); err != nil {
		t.Fatalf("the waiting run: %v", err)
	}
	if s := mustRun(0, "blocklist", "show", "--json"); !strings.Contains(s, `"source":"bundle `) {
		t.Errorf("after the wait, the bundle's list is not installed:\n%s", s)
	}
}
