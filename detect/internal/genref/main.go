// Command genref writes detect/data/reference.json, the reference model of
// the interception detector, from real handshakes on loopback and from
// documented facts about browsers' TLS stacks:
//
//   - today's browsers per TLS stack and version range: each browser parrot
//     of github.com/refraction-networking/utls v1.8.2, and the real browsers
//     installed here (Debian's chromium and firefox-esr, run headless);
//   - what each browser TLS stack never sends (the rules below), checked
//     against every browser hello above and every browser hello of the
//     development captures (detect/testdata/captures): a rule that a real
//     browser breaks stops the generator;
//   - the TLS stacks interceptors are built on: Go's crypto/tls as this
//     toolchain sends it, OpenSSL's s_client, Java's JSSE.
//
// Run it again (go generate ./detect) when the packaged browsers or uTLS
// change; the file records what produced it.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/detecthttp"
	"github.com/mitmguard/mitmguard/detect/internal/browser"
)

// samples per parrot: Chrome permutes its extensions and every browser
// draws GREASE values at random, so one hello is not the whole profile.
const perParrot = 12

// browserRuns is how many times each real browser is started.
const browserRuns = 3

func main() {
	ref := detect.Reference{
		Generator: "go run ./detect/internal/genref",
		Sources:   map[string]string{"utls": "github.com/refraction-networking/utls v1.8.2", "go": runtime.Version()},
		Never:     never,
	}
	if out, err := exec.Command("openssl", "version").Output(); err == nil {
		ref.Sources["openssl"] = strings.TrimSpace(string(out))
	}
	var all []sample // every browser hello, checked against the rules
	parrots := []struct {
		stack           string
		id              utls.ClientHelloID
		minMajor, major int
	}{
		{"chromium", utls.HelloChrome_100, 83, 100}, {"chromium", utls.HelloChrome_102, 83, 102}, {"chromium", utls.HelloChrome_120, 83, 120},
		{"chromium", utls.HelloChrome_131, 83, 131}, {"chromium", utls.HelloChrome_133, 83, 133},
		{"chromium", utls.HelloEdge_85, 83, 85}, {"chromium", utls.HelloEdge_106, 83, 106},
		{"firefox", utls.HelloFirefox_102, 100, 102}, {"firefox", utls.HelloFirefox_105, 100, 105}, {"firefox", utls.HelloFirefox_120, 100, 120},
		{"safari", utls.HelloSafari_16_0, 14, 16}, {"safari", utls.HelloIOS_14, 14, 14},
	}
	for _, p := range parrots {
		raws := capture(perParrot, func(addr string) func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				log.Fatal(err)
			}
			uc := utls.UClient(conn, &utls.Config{ServerName: "www.example.com", InsecureSkipVerify: true}, p.id)
			go uc.Handshake()
			return func() { conn.Close() }
		})
		source := fmt.Sprintf("utls %s %s", p.id.Client, p.id.Version)
		if err := addBrowser(&ref, p.stack, source, p.minMajor, p.major, raws); err != nil {
			log.Fatal(err)
		}
		all = append(all, asSamples(p.stack, source, raws)...)
	}

	// The real browsers installed here, as they connect to a server.
	dir, err := os.MkdirTemp("", "genref-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, b := range browser.All() {
		if b.Path == "" {
			log.Printf("%s not installed (Debian package %s): its hellos are not in the reference", b.Program, b.Package)
			continue
		}
		var raws [][]byte
		for i := range browserRuns {
			raws = append(raws, capture(1, func(addr string) func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				cmd, err := b.Open(ctx, "https://"+addr+"/", filepath.Join(dir, fmt.Sprint(b.Name, i)), nil)
				if err != nil {
					log.Fatal(err)
				}
				return func() { browser.Stop(cmd); cancel() }
			})...)
		}
		source := fmt.Sprintf("%s %s (Debian)", b.Name, strings.TrimSpace(b.Version))
		if err := addBrowser(&ref, b.Stack, source, b.Major, b.Major, raws); err != nil {
			log.Fatal(err)
		}
		ref.Sources[b.Name] = strings.TrimSpace(b.Version)
		all = append(all, asSamples(b.Stack, source, raws)...)
	}

	// The development captures: real browsers of 2014-2016, as checks.
	dev, err := devCaptures("testdata/captures")
	if err != nil {
		log.Fatal(err)
	}
	all = append(all, dev...)
	if bad := check(all); len(bad) > 0 {
		log.Fatalf("a real browser hello breaks a rule of what its stack never sends:\n%s", strings.Join(bad, "\n"))
	}
	ref.Sources["checks"] = fmt.Sprintf("%d browser hellos (parrots, installed browsers, development captures) keep every rule of \"never\"", len(all))

	// The stacks interceptors re-originate connections with.
	addStack(&ref, "Go crypto/tls", capture(3, func(addr string) func() {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		go tls.Client(conn, &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}).Handshake()
		return func() { conn.Close() }
	}))
	if _, err := exec.LookPath("openssl"); err == nil {
		addStack(&ref, "OpenSSL", capture(2, func(addr string) func() {
			cmd := exec.Command("openssl", "s_client", "-connect", addr, "-servername", "www.example.com")
			cmd.Stdin = strings.NewReader("")
			cmd.Start()
			return func() { cmd.Process.Kill(); cmd.Wait() }
		}))
	}
	if _, err := exec.LookPath("keytool"); err == nil {
		// keytool -printcert -sslserver makes a TLS handshake with the JDK's
		// own stack (JSSE), what Java-based proxies and clients send.
		addStack(&ref, "Java (JSSE)", capture(2, func(addr string) func() {
			cmd := exec.Command("keytool", "-printcert", "-sslserver", addr)
			cmd.Start()
			return func() { cmd.Process.Kill(); cmd.Wait() }
		}))
		if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
			ref.Sources["java"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	out, err := json.MarshalIndent(ref, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("data/reference.json", append(out, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}

// capture listens on loopback, calls start(addr) once per hello wanted
// (start launches a client and returns how to stop it), and returns the
// first ClientHello of each client.
func capture(n int, start func(addr string) (stop func())) [][]byte {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	hellos := make(chan []byte, 16)
	go func() {
		cl := detecthttp.NewListener(ln)
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				dc := c.(*detecthttp.Conn)
				buf := make([]byte, 4096)
				for {
					if _, err := dc.Read(buf); err != nil {
						return
					}
					if _, raw, err := dc.ClientHello(); err == nil {
						select {
						case hellos <- raw:
						default:
						}
						return
					}
				}
			}()
		}
	}()
	var out [][]byte
	for range n {
		stop := start(ln.Addr().String())
		select {
		case raw := <-hellos:
			out = append(out, raw)
		case <-time.After(90 * time.Second):
			log.Fatal("no ClientHello captured in 90s")
		}
		stop()
		for len(hellos) > 0 { // extra connections of the same client
			<-hellos
		}
	}
	return out
}

// never are the rules of what browsers' TLS stacks never send, from their
// source and every hello captured of them: all four send only uncompressed
// EC points, no heartbeat, none of the binary-field, small or brainpool
// curves and no SRP suites (OpenSSL sends these by default, and so do the
// interception products built on it); Firefox never offered the CBC suites
// with SHA-2 MACs (what products built on SChannel or OpenSSL offer under
// its name).
var never = []*detect.Never{
	{Stacks: browserStacks, Why: "compressed EC points are OpenSSL's", OnlyPointFormat: new(uint8)},
	{Stacks: browserStacks, Why: "heartbeat is OpenSSL's", Extensions: []uint16{0x000f}},
	{Stacks: browserStacks, Why: "binary-field, small and brainpool curves are OpenSSL's",
		Groups: []uint16{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 0x1a, 0x1b, 0x1c}},
	{Stacks: browserStacks, Why: "SRP suites are OpenSSL's", Ciphers: []uint16{0xc01a, 0xc01b, 0xc01c, 0xc01d, 0xc01e, 0xc01f, 0xc020, 0xc021, 0xc022}},
	// NSS had them from 2013 but Firefox never enabled them; Windows'
	// SChannel, Apple's stack and OpenSSL offer them. (Not a rule for
	// Chromium: Android 4.4's WebView says "Chrome/33" and sends the
	// system OpenSSL's list, as the development captures show.)
	{Stacks: []string{"firefox"}, Why: "CBC suites with SHA-256/384 MACs are other stacks'",
		Ciphers: []uint16{0x003c, 0x003d, 0x0040, 0x0067, 0x006a, 0x006b, 0xc023, 0xc024, 0xc025, 0xc026, 0xc027, 0xc028, 0xc029, 0xc02a}},
}

var browserStacks = []string{"chromium", "firefox", "safari", "schannel"}

type sample struct {
	stack, source string
	raw           []byte
}

func asSamples(stack, source string, raws [][]byte) []sample {
	var out []sample
	for _, r := range raws {
		out = append(out, sample{stack, source, r})
	}
	return out
}

// devCaptures reads the browser hellos of the development captures.
func devCaptures(dir string) ([]sample, error) {
	f, err := os.Open(filepath.Join(dir, "index.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var k struct {
			File        string `json:"file"`
			UserAgent   string `json:"user_agent"`
			Intercepted bool   `json:"intercepted"`
		}
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			return nil, err
		}
		if k.Intercepted {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, filepath.Base(k.File)))
		if err != nil {
			return nil, err
		}
		out = append(out, sample{detect.ParseUA(k.UserAgent).Stack, "capture " + k.File, raw})
	}
	return out, sc.Err()
}

// check returns the hellos that break a rule of their stack.
func check(all []sample) []string {
	var bad []string
	for _, s := range all {
		ch, err := detect.Parse(s.raw)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", s.source, err))
			continue
		}
		f := detect.FeaturesOf(ch)
		for _, n := range never {
			for _, st := range n.Stacks {
				if st == s.stack {
					for _, r := range n.Violations(f) {
						bad = append(bad, fmt.Sprintf("%s (%s): %s: %s", s.source, s.stack, r.What, r.Seen))
					}
				}
			}
		}
	}
	return bad
}
