//go:build unix

package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/internal/testtool"
)

// startServe runs mitmguard serve as a process on a loopback port and
// returns its address; it is stopped (and must stop cleanly) at cleanup.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("serve did not stop cleanly: %v", err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.Fields(line)[2], "/")
	return strings.TrimPrefix(addr, "https://")
}

// mitmguard serve, as a process: a Chrome parrot with Chrome's User-Agent is
// not intercepted; Go's crypto/tls under the same User-Agent is.
func TestServe(t *testing.T) {
	addr := startServe(t)

	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36"
	ask := func(conn net.Conn) (*detect.Result, http.Header) {
		fmt.Fprintf(conn, "GET /mitmguard/verdict HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n", ua)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r detect.Result
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return &r, resp.Header
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := utls.UTLSIdToSpec(utls.HelloChrome_133)
	for _, e := range spec.Extensions {
		if alpn, ok := e.(*utls.ALPNExtension); ok {
			alpn.AlpnProtocols = []string{"http/1.1"} // speak HTTP/1.1 to read the answer simply
		}
	}
	uc := utls.UClient(raw, &utls.Config{ServerName: "localhost", InsecureSkipVerify: true}, utls.HelloCustom)
	if err := uc.ApplyPreset(&spec); err != nil {
		t.Fatal(err)
	}
	if err := uc.Handshake(); err != nil {
		t.Fatal(err)
	}
	r, h := ask(uc)
	uc.Close()
	if r.Intercepted == nil || *r.Intercepted || h.Get("Mitmguard-Intercepted") != "no" {
		t.Errorf("Chrome parrot: %v %+v (header %q)", r.Intercepted, r.Reasons, h.Get("Mitmguard-Intercepted"))
	}

	gc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	r, _ = ask(gc)
	gc.Close()
	if r.Intercepted == nil || !*r.Intercepted || r.Product != "Go crypto/tls" {
		t.Errorf("Go crypto/tls: %v %q", r.Intercepted, r.Product)
	}
}

// Issue 9 item 9: serve closes an idle keep-alive connection (after
// --idle-timeout) and a connection that never sends its ClientHello (after
// the 10s handshake/header timeout) instead of keeping it for ever.
func TestServeClosesIdleConnections(t *testing.T) {
	addr := startServe(t, "--idle-timeout", "500ms")
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /mitmguard/verdict HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The next read ends when the server closes the connection; the
	// deadline only keeps a broken server from hanging the test.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle keep-alive connection: read gave %v, want EOF (closed by the server)", err)
	}

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("silent connection: read gave %v, want EOF (closed by the server)", err)
	}
}

// Issue 11: --cert without --key (and the reverse) names the missing flag.
func TestServeCertNeedsKey(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cert", "x.pem"}, "--cert needs --key"},
		{[]string{"--key", "k.pem"}, "--key needs --cert"},
	} {
		cmd := exec.Command(os.Args[0], append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		cmd.Env = append(os.Environ(), mainEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("serve %v: %v, output %q, want an error saying %q", c.args, err, out, c.want)
		}
	}
}

// Issue 10: Debian's Chromium, headless, visiting mitmguard serve over
// loopback is judged not intercepted (the verdict JSON it loads says so).
func TestServeRealChromium(t *testing.T) {
	chromium := testtool.Need(t, "chromium", "chromium")
	addr := startServe(t)
	dir := t.TempDir()
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--ignore-certificate-errors",
		"--user-data-dir="+dir, "--dump-dom", "https://"+addr+"/mitmguard/verdict")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a hung browser, and its helpers
		}
	}()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, out)
	}
	dom := string(out)
	i, j := strings.Index(dom, "{"), strings.LastIndex(dom, "}")
	if i < 0 || j < i {
		t.Fatalf("no verdict JSON in the page: %s", dom)
	}
	var r detect.Result
	if err := json.Unmarshal([]byte(html.UnescapeString(dom[i:j+1])), &r); err != nil {
		t.Fatalf("%v: %s", err, dom[i:j+1])
	}
	if r.Intercepted == nil || *r.Intercepted || r.Browser.Family != "chrome" {
		t.Errorf("Chromium %d visiting serve: intercepted=%v %+v", r.Browser.Major, r.Intercepted, r.Reasons)
	}
}

// detect --evaluate over the development captures prints the rates by
// family and product and exits 0 when the goals are met; a folder without
// an index is an error.
func TestDetectEvaluate(t *testing.T) {
	cmd := exec.Command(os.Args[0], "detect", "--evaluate", "../../detect/testdata/captures")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("detect --evaluate: %v\n%s", err, out)
	}
	for _, want := range []string{"interceptors: caught ", "browsers:     flagged 0/", "by family:", "by product:", "goals met"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cmd = exec.Command(os.Args[0], "detect", "--evaluate", t.TempDir())
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "index.jsonl") {
		t.Errorf("an empty folder: %v %s", err, out)
	}
}
