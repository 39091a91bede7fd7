package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/testtool"
	"github.com/mitmguard/mitmguard/locate"
)

// needHops stops a test where a hop lab cannot run: skipped outside CI,
// failed under CI (which runs as root with iproute2 and nftables).
func needHops(t *testing.T) {
	t.Helper()
	if err := lab.CanRunHops(); err != nil {
		testtool.Missing(t, err.Error())
	}
}

// noneLeft fails the test if a namespace with the prefix remains.
func noneLeft(t *testing.T, prefix string) {
	t.Helper()
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if lab.IsHopNamespace(prefix, e.Name()) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

// hopLab starts a hop lab whose roles this test binary serves (TestMain
// runs mitmguard's main under mainEnv), with namespaces named for the test
// and removed when it ends, failed or not.
func hopLab(t *testing.T, prefix string, cfg lab.HopsConfig) (*lab.Hops, string) {
	t.Helper()
	needHops(t)
	t.Setenv(mainEnv, "1")
	cfg.Prefix, cfg.Dir, cfg.Command = prefix, t.TempDir(), []string{os.Args[0], "lab", "hop-serve"}
	t.Cleanup(func() {
		lab.RemoveHopNamespaces(prefix)
		noneLeft(t, prefix)
	})
	h, err := lab.StartHops(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h, cfg.Dir
}

// traced is what the tests read of locate --json.
type traced struct {
	locate.Result
	code   int
	stderr string
}

// runLocate runs `mitmguard locate --json` in the lab's client namespace;
// prefix runs it under another command there (setpriv, to drop root).
func runLocate(t *testing.T, h *lab.Hops, dir, sni string, prefix ...string) traced {
	t.Helper()
	return runLocateTo(t, h, h.Server, dir, sni, prefix...)
}

func runLocateTo(t *testing.T, h *lab.Hops, server, dir, sni string, prefix ...string) traced {
	t.Helper()
	args := append([]string{"netns", "exec", h.ClientNetns}, prefix...)
	args = append(args, os.Args[0], "locate", "--json", "--offline", "--no-system-roots", "--timeout", "5s",
		"--roots", filepath.Join(dir, "public-root.pem"), "--connect", server, sni)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1", "HOME="+dir, "XDG_CACHE_HOME="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r traced
	r.stderr = stderr.String()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &r.Result); err != nil {
		t.Fatalf("locate printed %q (%v), stderr %s", out, err, r.stderr)
	}
	return r
}

func ptr[T comparable](p *T, want T) bool { return p != nil && *p == want }

// The box on router 3 of 5: the forged chain first comes back at TTL 3,
// and router 2's address is the last clean one; routers 1 and 2 are named.
func TestLocateBoxAtRouter3(t *testing.T) {
	h, dir := hopLab(t, "mgt-b3", lab.HopsConfig{Routers: 5, BoxAt: 3})
	r := runLocate(t, h, dir, "facebook.com")
	if r.code != exitIntercepted || r.Finding != locate.Located || !ptr(r.FirstForgedHop, 3) || !ptr(r.LastCleanRouter, h.Routers[1]) {
		t.Fatalf("exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
	if len(r.Hops) != 3 || !ptr(r.Hops[0].Router, h.Routers[0]) || r.Hops[2].Outcome != "mitm.suspected" || r.ServerHops != nil || !r.RoutersVisible {
		t.Fatalf("hops %+v", r.Result)
	}

	// Without root: the same hop, no router addresses, and a note saying
	// why.
	bin, nobody := asNobody(t, dir)
	saved := os.Args[0]
	os.Args[0] = filepath.Join(bin, "mitmguard.test")
	defer func() { os.Args[0] = saved }()
	r = runLocate(t, h, bin, "facebook.com", nobody...)
	if r.code != exitIntercepted || !ptr(r.FirstForgedHop, 3) || r.LastCleanRouter != nil || r.RoutersVisible || r.Hops[0].Router != nil {
		t.Fatalf("unprivileged: exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
	if len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "needs root or CAP_NET_RAW") {
		t.Fatalf("unprivileged: notes %q", r.Notes)
	}
}

// asNobody copies this test binary and the hop lab's public root into a
// new folder that user nobody can use (and write), and returns it with the
// command prefix that drops root to run as nobody.
func asNobody(t *testing.T, labDir string) (string, []string) {
	t.Helper()
	setpriv := testtool.Need(t, "setpriv", "util-linux")
	bin, err := os.MkdirTemp("", "mglocate-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	// nobody's own, so that it can write a database there and no one else
	// can change what it runs.
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(bin, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{os.Args[0]: 0o755, filepath.Join(labDir, "public-root.pem"): 0o644} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(name)
		if mode == 0o755 {
			base = "mitmguard.test"
		}
		if err := os.WriteFile(filepath.Join(bin, base), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	return bin, []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
}

// With the box moved to router 5 the answer moves with it.
func TestLocateBoxAtRouter5(t *testing.T) {
	h, dir := hopLab(t, "mgt-b5", lab.HopsConfig{Routers: 5, BoxAt: 5})
	r := runLocate(t, h, dir, "facebook.com")
	if r.code != exitIntercepted || !ptr(r.FirstForgedHop, 5) || !ptr(r.LastCleanRouter, h.Routers[3]) || len(r.Hops) != 5 {
		t.Fatalf("exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
}

// Over IPv6 the hop limit plays the TTL's part and ICMPv6 names the routers.
func TestLocateIPv6(t *testing.T) {
	h, dir := hopLab(t, "mgt-v6", lab.HopsConfig{Routers: 3, BoxAt: 2})
	r := runLocateTo(t, h, h.Server6, dir, "facebook.com")
	if r.code != exitIntercepted || !ptr(r.FirstForgedHop, 2) || !ptr(r.LastCleanRouter, h.Routers6[0]) || !r.RoutersVisible {
		t.Fatalf("exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
	r = runLocateTo(t, h, h.Server6, dir, "github.com") // passed by the box, answered from its hop
	if r.code != exitOK || !ptr(r.ServerHops, 2) || r.Outcome != "ok" {
		t.Fatalf("github.com: exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
}

// With no box the server itself answers, one hop past the last router.
func TestLocateNoBox(t *testing.T) {
	h, dir := hopLab(t, "mgt-nb", lab.HopsConfig{Routers: 5})
	r := runLocate(t, h, dir, "facebook.com")
	if r.code != exitOK || r.Finding != locate.Clean || r.FirstForgedHop != nil || r.LastCleanRouter != nil || !ptr(r.ServerHops, 6) ||
		!strings.Contains(r.Message, "no interception on this path") || r.Outcome != "ok" {
		t.Fatalf("exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
	for i, router := range h.Routers {
		if r.Hops[i].Outcome != locate.Expired || !ptr(r.Hops[i].Router, router) {
			t.Errorf("hop %d: %+v, want expired at %s", i+1, r.Hops[i], router)
		}
	}
}

// A reset injected at router 2 is blocking at that hop, not interception.
func TestLocateResetAtRouter2(t *testing.T) {
	h, dir := hopLab(t, "mgt-r2", lab.HopsConfig{Routers: 5, ResetAt: 2})
	r := runLocate(t, h, dir, "facebook.com")
	if r.code != exitFailed || r.Finding != locate.Blocking || !ptr(r.BlockedAtHop, 2) || r.FirstForgedHop != nil ||
		len(r.Hops) != 2 || r.Hops[1].Outcome != "blocked.reset" || !ptr(r.Hops[0].Router, h.Routers[0]) {
		t.Fatalf("exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
}

// mitmguard lab --hops writes hops.json, runs until interrupted, and then
// leaves no namespace behind.
func TestLabHopsCommand(t *testing.T) {
	needHops(t)
	const prefix = "mgt-cli"
	dir := t.TempDir()
	t.Cleanup(func() {
		lab.RemoveHopNamespaces(prefix)
		noneLeft(t, prefix)
	})
	cmd := exec.Command(os.Args[0], "lab", "--hops", "2", "--box-at", "1", "--dir", dir, "--netns-prefix", prefix)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	s := bufio.NewScanner(stdout)
	for s.Scan() && !strings.HasPrefix(s.Text(), "Ctrl-C stops") {
	}
	go io.Copy(io.Discard, stdout)
	data, err := os.ReadFile(filepath.Join(dir, "hops.json"))
	if err != nil {
		t.Fatalf("%v; stderr %s", err, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client_netns", "server", "routers", "box_at"} {
		if _, ok := got[k]; !ok {
			t.Errorf("hops.json has no %s: %s", k, data)
		}
	}
	if got["client_netns"] != prefix+"-c" || got["box_at"] != 1.0 {
		t.Errorf("hops.json: %s", data)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("lab after Ctrl-C: %v; stderr %s", err, stderr.String())
	}
	noneLeft(t, prefix)
}

// A box on router 3 that does not terminate TCP but injects its forged
// answer into the client's stream with the origin: locate places it at hop
// 3 all the same, and a name it lets by is answered by the origin itself,
// 6 hops away (a terminating box would answer it from hop 3).
func TestLocateInjectorAtRouter3(t *testing.T) {
	h, dir := hopLab(t, "mgt-in", lab.HopsConfig{Routers: 5, BoxAt: 3, Inject: true})
	r := runLocate(t, h, dir, "facebook.com")
	if r.code != exitIntercepted || !ptr(r.FirstForgedHop, 3) || !ptr(r.LastCleanRouter, h.Routers[1]) || r.Hops[2].Outcome != "mitm.suspected" {
		t.Fatalf("exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
	r = runLocate(t, h, dir, "github.com")
	if r.code != exitOK || !ptr(r.ServerHops, 6) || r.Outcome != "ok" || !ptr(r.Hops[3].Router, h.Routers[3]) {
		t.Fatalf("github.com: exit %d, %+v\n%s", r.code, r.Result, r.stderr)
	}
}
