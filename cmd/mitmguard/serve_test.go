package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
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
