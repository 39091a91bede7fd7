// Command genref writes detect/data/reference.json, the ClientHellos of
// today's browsers and of the TLS stacks interceptors are built on, from real
// handshakes on loopback: browsers as github.com/refraction-networking/utls
// v1.8.2 parrots them, Go's crypto/tls as this toolchain sends it, and
// OpenSSL's s_client. Run it again (go generate ./detect) when browsers
// change; the file records what produced it.
package main

import (
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	utls "github.com/refraction-networking/utls"

	"github.com/mitmguard/mitmguard/detect"
)

// samples per parrot: Chrome permutes its extensions and every browser
// draws GREASE values at random, so one hello is not the whole profile.
const samples = 12

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	hellos := make(chan []byte)
	go func() {
		cl := detect.NewListener(ln)
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				dc := c.(*detect.Conn)
				buf := make([]byte, 4096)
				for {
					if _, err := dc.Read(buf); err != nil {
						break
					}
					if _, raw, err := dc.ClientHello(); err == nil {
						hellos <- raw
						return
					}
				}
				hellos <- nil
			}()
		}
	}()
	addr := ln.Addr().String()

	ref := detect.Reference{
		Generator: "go run ./detect/internal/genref",
		Sources:   map[string]string{"utls": "github.com/refraction-networking/utls v1.8.2", "go": runtime.Version()},
	}
	if out, err := exec.Command("openssl", "version").Output(); err == nil {
		ref.Sources["openssl"] = strings.TrimSpace(string(out))
	}
	parrots := []struct {
		stack    string
		id       utls.ClientHelloID
		minMajor int
	}{
		{"chromium", utls.HelloChrome_100, 83}, {"chromium", utls.HelloChrome_102, 83}, {"chromium", utls.HelloChrome_120, 83},
		{"chromium", utls.HelloChrome_131, 83}, {"chromium", utls.HelloChrome_133, 83},
		{"chromium", utls.HelloEdge_85, 83}, {"chromium", utls.HelloEdge_106, 83},
		{"firefox", utls.HelloFirefox_102, 100}, {"firefox", utls.HelloFirefox_105, 100}, {"firefox", utls.HelloFirefox_120, 100},
		{"safari", utls.HelloSafari_16_0, 14}, {"safari", utls.HelloIOS_14, 14},
	}
	for _, p := range parrots {
		var raws [][]byte
		for range samples {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				log.Fatal(err)
			}
			uc := utls.UClient(conn, &utls.Config{ServerName: "www.example.com", InsecureSkipVerify: true}, p.id)
			go uc.Handshake()
			raw := <-hellos
			conn.Close()
			if raw == nil {
				log.Fatalf("%s %s: no ClientHello captured", p.id.Client, p.id.Version)
			}
			raws = append(raws, raw)
		}
		if err := ref.AddBrowser(p.stack, fmt.Sprintf("utls %s %s", p.id.Client, p.id.Version), p.minMajor, raws); err != nil {
			log.Fatal(err)
		}
	}

	// The stacks interceptors re-originate connections with.
	var goRaws [][]byte
	for range 3 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		go tls.Client(conn, &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}).Handshake()
		goRaws = append(goRaws, <-hellos)
		conn.Close()
	}
	ref.AddStack("Go crypto/tls", goRaws)
	if _, err := exec.LookPath("openssl"); err == nil {
		var raws [][]byte
		for range 2 {
			cmd := exec.Command("openssl", "s_client", "-connect", addr, "-servername", "www.example.com")
			cmd.Stdin = strings.NewReader("")
			cmd.Start()
			raws = append(raws, <-hellos)
			cmd.Process.Kill()
			cmd.Wait()
		}
		ref.AddStack("OpenSSL", raws)
	}
	if _, err := exec.LookPath("keytool"); err == nil {
		// keytool -printcert -sslserver makes a TLS handshake with the JDK's
		// own stack (JSSE), what Java-based proxies and clients send.
		var raws [][]byte
		for range 2 {
			cmd := exec.Command("keytool", "-printcert", "-sslserver", addr)
			cmd.Start()
			raws = append(raws, <-hellos)
			cmd.Process.Kill()
			cmd.Wait()
		}
		ref.AddStack("Java (JSSE)", raws)
		if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
			ref.Sources["java"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	for _, s := range ref.Stacks {
		for _, h := range s.Samples {
			if _, err := hex.DecodeString(h); err != nil {
				log.Fatal(err)
			}
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
