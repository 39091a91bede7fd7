package probe

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/internal/leak"
	"github.com/mitmguard/mitmguard/outcome"
)

// hostile runs a loopback server whose every connection is handled by fn.
func hostile(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// readHello reads the client's first record so the server acts after it.
func readHello(c net.Conn) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return
	}
	io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[3:])))
}

// Hostile servers cost bounded time and memory and get a classified outcome,
// and the probe leaves no goroutine behind.
func TestHostileServers(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	servers := []struct {
		name string
		fn   func(net.Conn)
		want []outcome.Outcome
	}{
		{"trickles a byte a second", func(c net.Conn) {
			readHello(c)
			for i := 0; i < 10; i++ {
				if _, err := c.Write([]byte{0x16}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}, []outcome.Outcome{outcome.BlockedTimeout}},
		{"sends a 50 MB certificate message", func(c net.Conn) {
			readHello(c)
			rec := make([]byte, 5+16384)
			rec[0], rec[1], rec[2] = 0x16, 0x03, 0x03
			binary.BigEndian.PutUint16(rec[3:], 16384)
			rec[5] = 11 // Certificate
			rec[6], rec[7], rec[8] = 0xff, 0xff, 0xff
			for sent := 0; sent < 50<<20; sent += len(rec) {
				if _, err := c.Write(rec); err != nil {
					return
				}
			}
		}, []outcome.Outcome{outcome.Invalid, outcome.BlockedReset, outcome.BlockedClosed}},
		{"never answers", func(c net.Conn) {
			io.Copy(io.Discard, c)
		}, []outcome.Outcome{outcome.BlockedTimeout}},
		{"resets mid-handshake", func(c net.Conn) {
			readHello(c)
			c.Write([]byte{0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00})
			c.(*net.TCPConn).SetLinger(0)
		}, []outcome.Outcome{outcome.BlockedReset}},
		{"endless garbage", func(c net.Conn) {
			readHello(c)
			junk := make([]byte, 1<<16)
			for i := 0; i < 1000; i++ {
				if _, err := c.Write(junk); err != nil {
					return
				}
			}
		}, []outcome.Outcome{outcome.Invalid, outcome.BlockedReset, outcome.BlockedClosed}},
	}
	leak.Check(t, 0, func() {
		for _, s := range servers {
			t.Run(s.name, func(t *testing.T) {
				addr := hostile(t, s.fn)
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				start := time.Now()
				r := Handshake(context.Background(), Target{Address: addr, SNI: "facebook.com"}, Options{Timeout: timeout})
				took := time.Since(start)
				runtime.ReadMemStats(&m1)
				ok := false
				for _, w := range s.want {
					ok = ok || r.Failure == w
				}
				if !ok {
					t.Errorf("outcome %q (%v), want one of %v", r.Failure, r.Err, s.want)
				}
				if took > timeout+time.Second {
					t.Errorf("took %v", took)
				}
				if grew := int64(m1.TotalAlloc - m0.TotalAlloc); grew > 8<<20 {
					t.Errorf("allocated %d bytes", grew)
				}
			})
		}
	})
}
