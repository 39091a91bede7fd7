package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The maintainer's and the user's commands end to end: repo init, publish,
// served over HTTP on loopback; update installs it; blocklist show and
// check use it.
func TestRepoAndUpdate(t *testing.T) {
	dir := t.TempDir()
	repo, cache := filepath.Join(dir, "tuf"), filepath.Join(dir, "cache")
	t.Setenv("MITMGUARD_CACHE", cache)
	var out strings.Builder
	mustRun := func(want int, args ...string) string {
		t.Helper()
		out.Reset()
		if code := run(args, &out, &out); code != want {
			t.Fatalf("%v exited %d, want %d:\n%s", args, code, want, out.String())
		}
		return out.String()
	}
	mustRun(0, "repo", "init", repo)
	list := filepath.Join(dir, "list.json")
	mustRun(0, "blocklist", "export", "--format", "json")
	if err := os.WriteFile(list, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := mustRun(0, "repo", "publish", repo, "--list", list); !strings.Contains(s, "version 1") {
		t.Fatal(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(repo, "repository")))}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	mustRun(1, "update", "--url", url) // no trusted root yet
	if !strings.Contains(out.String(), "--trust-root") {
		t.Errorf("no hint about --trust-root: %s", out.String())
	}
	if s := mustRun(0, "update", "--url", url, "--trust-root", filepath.Join(repo, "repository", "1.root.json")); !strings.Contains(s, "installed blocklist version 1") {
		t.Fatal(s)
	}
	if s := mustRun(0, "update", "--url", url); !strings.Contains(s, "is current") {
		t.Fatal(s)
	}
	if s := mustRun(0, "blocklist", "show"); !strings.Contains(s, "installed") || !strings.Contains(s, url) {
		t.Fatal(s)
	}
	if s := mustRun(0, "blocklist", "show", "--json"); !strings.Contains(s, `"source":"`+url) || !strings.Contains(s, `"installed":"`) || !strings.Contains(s, `"list":{`) {
		t.Fatal(s)
	}
	mustRun(0, "repo", "rotate", repo, "--role", "snapshot")
	mustRun(0, "repo", "refresh", repo)
	mustRun(1, "repo", "rotate", repo, "--role", "nobody")
}
