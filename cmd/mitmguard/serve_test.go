package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect"
)

// mitmguard serve, as a process: a Chrome parrot with Chrome's User-Agent is
// not intercepted; Go's crypto/tls under the same User-Agent is.
func TestServe(t *testing.T) {
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("serve did not stop cleanly: %v", err)
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.Fields(line)[2], "/")
	addr = strings.TrimPrefix(addr, "https://")

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
