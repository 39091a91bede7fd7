package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
	"github.com/mitmguard/mitmguard/update"
)

// cliRunner runs the CLI in this process: the function it returns fails
// the test unless the command exits with want, and returns what it printed
// (stdout and stderr together).
func cliRunner(t *testing.T) func(want int, args ...string) string {
	return func(want int, args ...string) string {
		t.Helper()
		var out strings.Builder
		if code := run(args, &out, &out); code != want {
			t.Fatalf("%v exited %d, want %d:\n%s", args, code, want, out.String())
		}
		return out.String()
	}
}

// The maintainer's and the user's commands end to end: repo init, publish,
// served over HTTP on loopback; update installs it; blocklist show and
// check use it.
func TestRepoAndUpdate(t *testing.T) {
	dir := t.TempDir()
	repo, cache := filepath.Join(dir, "tuf"), filepath.Join(dir, "cache")
	t.Setenv("MITMGUARD_DIR", cache)
	mustRun := cliRunner(t)
	mustRun(0, "repo", "init", repo)
	list := filepath.Join(dir, "list.json")
	if err := os.WriteFile(list, []byte(mustRun(0, "blocklist", "export", "--format", "json")), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := mustRun(0, "repo", "publish", repo, "--list", list); !strings.Contains(s, "version 1") {
		t.Fatal(s)
	}
	url := serveRepo(t, repo)

	if s := mustRun(1, "update", "--url", url); !strings.Contains(s, "--trust-root") { // no trusted root yet
		t.Errorf("no hint about --trust-root: %s", s)
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

// TestUpdateScripts runs the transcripts of the update and repo commands in
// testdata/update. Besides the lab's addresses and roots, each script gets:
//
//	national-list.json   the embedded list plus the lab's national root
//	serve NAME DIR [tamper|stall]   serves DIR on loopback as $NAME
//	down NAME            sets $NAME to a loopback URL where nothing listens
func TestUpdateScripts(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	national, err := blocklist.FromPEM(lab.PEM(l.NationalRoot), "lab")
	if err != nil {
		t.Fatal(err)
	}
	list, err := blocklist.Merge(blocklist.Embedded(), national).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/update",
		Setup: func(env *testscript.Env) error {
			env.Setenv("MITMGUARD_DIR", filepath.Join(env.WorkDir, "state"))
			env.Setenv("MIDDLEBOX", l.MiddleboxAddr)
			if err := os.WriteFile(filepath.Join(env.WorkDir, "national-list.json"), list, 0o644); err != nil {
				return err
			}
			return l.WriteFiles(env.WorkDir)
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"status": status,
			"serve":  serveCmd,
			"down": func(ts *testscript.TestScript, neg bool, args []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				ln.Close()
				ts.Setenv(args[0], "http://"+ln.Addr().String())
			},
		},
	})
}

// serveCmd: serve NAME DIR [tamper|stall] serves a repository folder on
// loopback, honestly, with every list changed by one byte, or stalling.
func serveCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: serve NAME DIR [tamper|stall]")
	}
	mode := ""
	if len(args) > 2 {
		mode = args[2]
	}
	dir := ts.MkAbs(args[1])
	files := http.FileServer(http.Dir(dir))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case mode == "stall":
			<-r.Context().Done()
		case mode == "tamper" && strings.HasSuffix(r.URL.Path, ".blocklist.json"):
			data, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(r.URL.Path)))
			w.Write([]byte(strings.Replace(string(data), "Qaznet", "Qazn3t", 1)))
		default:
			files.ServeHTTP(w, r)
		}
	})}
	go srv.Serve(ln)
	ts.Defer(func() { srv.Close() })
	ts.Setenv(args[0], "http://"+ln.Addr().String())
}

// A release-like binary: built with a test repository's root and mirrors
// set in update/channel (as a release sets them, here through -overlay), it
// updates with no flags at all.
func TestReleaseChannelBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to build a release-like binary: ", err)
	}
	dir := t.TempDir()
	repo := embeddedRepo(t, dir)
	good := serveRepo(t, repo)
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	down.Close()

	mirrors := filepath.Join(dir, "mirrors.txt")
	os.WriteFile(mirrors, []byte("# test channel\nhttp://"+down.Addr().String()+"\n"+good+"\n"), 0o644)
	src, _ := filepath.Abs("../../update/channel")
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(src, "root.json"):   filepath.Join(repo, "repository", "1.root.json"),
		filepath.Join(src, "mirrors.txt"): mirrors,
	}})
	ovl := filepath.Join(dir, "overlay.json")
	os.WriteFile(ovl, overlay, 0o644)
	bin := filepath.Join(dir, "mitmguard")
	build := exec.Command(goBin, "build", "-overlay", ovl, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "MITMGUARD_DIR="+state)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("update"); !strings.Contains(out, "installed blocklist version 1") || !strings.Contains(out, good) {
		t.Fatalf("update with no flags:\n%s", out)
	}
	if out := run("blocklist", "show"); !strings.Contains(out, "from "+good) {
		t.Fatalf("blocklist show:\n%s", out)
	}
}

// A bundle installs on a machine with no network: mitmguard runs in a
// network namespace of its own (unshare -rn: no interface up, not even
// loopback), with an HTTP proxy set that it must not need.
func TestBundleWithoutNetwork(t *testing.T) {
	unshare := testtool.Need(t, "unshare", "util-linux")
	if err := exec.Command(unshare, "-rn", "true").Run(); err != nil {
		testtool.Missing(t, "an unprivileged network namespace (unshare -rn: "+err.Error()+"; kernel.unprivileged_userns_clone=1)")
	}
	dir := t.TempDir()
	repo := embeddedRepo(t, dir)
	f, err := os.Create(filepath.Join(dir, "list.bundle"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := update.WriteBundle(f, repo); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(unshare, "-rn", os.Args[0], "update", "--from-file", f.Name(), "--trust-root", filepath.Join(repo, "repository", "1.root.json"))
	cmd.Env = append(os.Environ(), mainEnv+"=1", "MITMGUARD_DIR="+filepath.Join(dir, "state"), "HTTPS_PROXY=http://192.0.2.1:3128", "HTTP_PROXY=http://192.0.2.1:3128")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "installed blocklist version 1") {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, st, err := update.Active(filepath.Join(dir, "state")); err != nil || st == nil || st.Version != 1 {
		t.Fatalf("not installed: %+v %v", st, err)
	}
}

// embeddedRepo makes a repository in dir/tuf with the embedded list
// published as version 1, and returns its folder.
func embeddedRepo(t *testing.T, dir string) string {
	t.Helper()
	repo := filepath.Join(dir, "tuf")
	if err := update.InitRepo(repo, time.Now()); err != nil {
		t.Fatal(err)
	}
	emb, err := blocklist.Embedded().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := update.Publish(repo, emb, time.Now()); err != nil {
		t.Fatal(err)
	}
	return repo
}

// serveRepo serves a repository's published folder on loopback for the
// rest of the test, as a mirror does, and returns its URL.
func serveRepo(t *testing.T, repo string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(repo, "repository")))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
