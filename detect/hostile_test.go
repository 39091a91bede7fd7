package detect

import (
	"errors"
	"net"
	"testing"

	"github.com/mitmguard/mitmguard/detect/internal/hellotest"
	"github.com/mitmguard/mitmguard/detect/tlshello"
)

// vectorHellos returns FoxIO's JA4 test vectors' ClientHello records.
func vectorHellos(t testing.TB) [][]byte {
	return hellotest.Hellos(t, "tlshello/testdata/ja4/vectors.jsonl")
}

// FuzzCheck: any bytes that parse as a ClientHello are judged, under a
// browser's User-Agent and none, without a panic.
func FuzzCheck(f *testing.F) {
	for _, b := range vectorHellos(f) {
		f.Add(b)
		f.Add(hellotest.Records(b[5:], 7))
	}
	c := Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := tlshello.Parse(data)
		if err != nil {
			return
		}
		c.Check(ch, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36", nil)
		c.Check(ch, "", nil)
	})
}

// The capturing connection reassembles a hello sent one byte per record,
// one record per write, consuming each record once as it arrives.
func TestCaptureOneByteRecords(t *testing.T) {
	good := vectorHellos(t)[0]
	split := hellotest.Records(good[5:], 1)
	client, server := net.Pipe()
	go func() {
		for i := 0; i < len(split); i += 6 { // one record (5-byte header, 1 byte) per write
			client.Write(split[i:min(i+6, len(split))])
		}
	}()
	c := &Conn{Conn: server}
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if ch, _, err := c.ClientHello(); err == nil {
			ref, err := Parse(good)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.JA4()
			if got, _ := ch.JA4(); got != want {
				t.Fatalf("JA4 %s, want %s", got, want)
			}
			break
		} else if !errors.Is(err, ErrIncomplete) {
			t.Fatal(err)
		}
	}
	if c.r.Records() != len(good[5:]) {
		t.Errorf("%d records consumed, want %d", c.r.Records(), len(good[5:]))
	}
	client.Close()
	server.Close()
}
