//go:build linux

package lab

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmguard/mitmguard/internal/testtool"
)

const roleArg = "hop-serve"

// TestMain lets the test binary serve a hop lab's roles: the lab runs
// [binary, hop-serve, ROLE...] inside its namespaces.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == roleArg {
		if err := ServeHopRole(context.Background(), os.Args[2:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// needHops skips (outside CI) or fails (under CI) a test where a hop lab
// cannot run.
func needHops(t *testing.T) {
	t.Helper()
	if err := CanRunHops(); err != nil {
		testtool.Missing(t, err.Error())
	}
}

// startHops starts a lab whose namespaces carry a prefix unique to the test
// and are removed when it ends, even when it fails.
func startHops(t *testing.T, prefix string, cfg HopsConfig) *Hops {
	t.Helper()
	needHops(t)
	cfg.Prefix, cfg.Dir, cfg.Command = prefix, t.TempDir(), []string{os.Args[0], roleArg}
	t.Cleanup(func() { RemoveHopNamespaces(prefix) })
	h, err := StartHops(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// dialIn dials addr from inside namespace ns: the socket is made on a
// thread moved into ns, and stays there after the thread moves back.
func dialIn(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := setns(target); err != nil {
		t.Fatal(err)
	}
	c, dialErr := net.DialTimeout("tcp", addr, 5*time.Second)
	if err := setns(self); err != nil {
		panic(err) // the thread is in the wrong namespace; do not let it be reused
	}
	if dialErr != nil {
		t.Fatal(dialErr)
	}
	return c
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// issuerFrom returns the issuer of the leaf the client in ns sees for sni.
func issuerFrom(t *testing.T, h *Hops, sni string) (string, error) {
	t.Helper()
	return issuerVia(t, h, h.Server, sni)
}

func issuerVia(t *testing.T, h *Hops, server, sni string) (string, error) {
	t.Helper()
	c := dialIn(t, h.ClientNetns, server)
	tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", err
	}
	return tc.ConnectionState().PeerCertificates[0].Issuer.CommonName, nil
}

func namespaces(t *testing.T, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if IsHopNamespace(prefix, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// The lab builds the path it describes in hops.json, the box on router 2
// forges for a target and passes other names, and Close removes the
// namespaces (with their veths and rules) and ends the children.
func TestHopsLab(t *testing.T) {
	const prefix = "mgt-lab"
	h := startHops(t, prefix, HopsConfig{Routers: 3, BoxAt: 2})
	if got := len(namespaces(t, prefix)); got != 5 {
		t.Fatalf("%d namespaces, want 5 (client, 3 routers, origin)", got)
	}
	want := []string{"10.77.0.2", "10.77.1.2", "10.77.2.2"}
	if strings.Join(h.Routers, " ") != strings.Join(want, " ") || h.Server != "10.77.3.2:443" {
		t.Fatalf("routers %v server %s", h.Routers, h.Server)
	}
	out, err := exec.Command("ip", "netns", "exec", prefix+"-r2", "nft", "list", "ruleset").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "redirect to :") {
		t.Fatalf("router 2 rules: %v\n%s", err, out)
	}
	if iss, err := issuerFrom(t, h, "facebook.com"); err != nil || iss != "Security Certificate" {
		t.Fatalf("facebook.com through the box: issuer %q, %v", iss, err)
	}
	if iss, err := issuerFrom(t, h, "github.com"); err != nil || iss != "mitmguard lab public CA 1" {
		t.Fatalf("github.com through the box: issuer %q, %v", iss, err)
	}
	if iss, err := issuerVia(t, h, h.Server6, "facebook.com"); err != nil || iss != "Security Certificate" || h.Server6 != "[2001:db8:77:3::2]:443" {
		t.Fatalf("facebook.com over IPv6 (%s) through the box: issuer %q, %v", h.Server6, iss, err)
	}
	pids := []int{}
	for _, c := range h.children {
		pids = append(pids, c.cmd.Process.Pid)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if left := namespaces(t, prefix); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("child %d still runs", pid)
		}
	}
}

// hops.json holds the contract's fields.
func TestHopsJSON(t *testing.T) {
	needHops(t)
	dir := t.TempDir()
	const prefix = "mgt-json"
	t.Cleanup(func() { RemoveHopNamespaces(prefix) })
	h, err := StartHops(context.Background(), HopsConfig{Prefix: prefix, Routers: 2, ResetAt: 1, Dir: dir, Command: []string{os.Args[0], roleArg}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	data, err := os.ReadFile(filepath.Join(dir, "hops.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ClientNetns string   `json:"client_netns"`
		Server      string   `json:"server"`
		Routers     []string `json:"routers"`
		BoxAt       *int     `json:"box_at"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.ClientNetns != prefix+"-c" || got.Server != "10.77.2.2:443" || len(got.Routers) != 2 || got.BoxAt == nil || *got.BoxAt != 0 {
		t.Fatalf("hops.json: %s", data)
	}
	if _, err := os.Stat(filepath.Join(dir, "public-root.pem")); err != nil {
		t.Fatal(err)
	}
	// The reset router answers the ClientHello with a reset.
	if _, err := issuerFrom(t, h, "github.com"); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("through the resetting router: %v", err)
	}
}

// A lab refuses bad shapes before touching the system.
func TestHopsConfigErrors(t *testing.T) {
	for _, c := range []HopsConfig{
		{Prefix: "Bad Prefix", Routers: 1, Dir: "x", Command: []string{"x"}},
		{Prefix: "ok", Routers: 0, Dir: "x", Command: []string{"x"}},
		{Prefix: "ok", Routers: 2, BoxAt: 3, Dir: "x", Command: []string{"x"}},
		{Prefix: "ok", Routers: MaxRouters + 1, Dir: "x", Command: []string{"x"}},
	} {
		if _, err := StartHops(context.Background(), c); err == nil || strings.Contains(err.Error(), "needs root") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// Leftovers of a killed lab are found by prefix, and only those.
func TestIsHopNamespace(t *testing.T) {
	for name, want := range map[string]bool{
		"mg-c": true, "mg-o": true, "mg-r12": true, "mg-x": false, "mgx-c": false, "mg-r": false, "other": false, "mg-c-1": false,
	} {
		if IsHopNamespace("mg", name) != want {
			t.Errorf("%s: want %v", name, want)
		}
	}
}

// A lab removes the namespaces a killed lab of its prefix left behind
// before it builds its own, and leaves other prefixes alone.
func TestHopsRemovesLeftovers(t *testing.T) {
	needHops(t)
	const prefix = "mgt-left"
	for _, ns := range []string{prefix + "-r1", prefix + "-r7", "mgt-other-c"} {
		if err := ipCmd(context.Background(), "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ipCmd(context.Background(), "netns", "del", ns) })
	}
	startHops(t, prefix, HopsConfig{Routers: 1})
	got := namespaces(t, prefix)
	if strings.Join(got, " ") != prefix+"-c "+prefix+"-o "+prefix+"-r1" {
		t.Fatalf("namespaces %v: want the new lab's only", got)
	}
	if _, err := os.Stat("/run/netns/mgt-other-c"); err != nil {
		t.Fatalf("another prefix's namespace was removed: %v", err)
	}
}

// cancelOnWrite cancels a context at the first byte written to it.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (w cancelOnWrite) Write(p []byte) (int, error) { w.cancel(); return len(p), nil }

// A lab that fails after it made its namespaces removes them all, and ends
// the roles it started: a role that dies before it is ready, and a lab
// stopped (ctx) while a role is starting.
func TestHopsTornDownOnError(t *testing.T) {
	needHops(t)
	for name, command := range map[string][]string{
		"role fails":    {"false"},
		"ctx cancelled": {"sh", "-c", "echo starting >&2; exec cat >/dev/null", "role"},
	} {
		t.Run(name, func(t *testing.T) {
			const prefix = "mgt-fail"
			t.Cleanup(func() { RemoveHopNamespaces(prefix) })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := StartHops(ctx, HopsConfig{Prefix: prefix, Routers: 2, BoxAt: 1, Dir: t.TempDir(), Command: command, Stderr: cancelOnWrite{cancel}})
			if err == nil {
				h.Close()
				t.Fatal("the lab started")
			}
			if left := namespaces(t, prefix); len(left) > 0 {
				t.Fatalf("%v; left behind: %v", err, left)
			}
			if len(h.children) > 0 {
				t.Fatalf("%v; children not stopped", err)
			}
		})
	}
}
