//go:build linux

package lab

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzParseSegment feeds the injector's packet reader what a namespace's
// wire could carry: it never panics, and the payload it returns lies within
// the packet.
func FuzzParseSegment(f *testing.F) {
	key := flowKey{netip.MustParseAddrPort("10.77.0.1:40000"), netip.MustParseAddrPort("10.77.5.2:443")}
	seg := segment(key, 1, 2, &flow{hasTS: true, tsVal: 3, tsEcr: 4}, []byte("\x16\x03\x01\x00\x05hello"))
	f.Add(seg)
	f.Add(seg[:30])
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6})
	f.Fuzz(func(t *testing.T, p []byte) {
		_, fl, payload, ok := parseSegment(p)
		if !ok {
			return
		}
		if fl == nil || len(payload) > len(p) {
			t.Fatalf("payload of %d bytes from a %d-byte packet", len(payload), len(p))
		}
		if total := int(binary.BigEndian.Uint16(p[2:4])); total > len(p) {
			t.Fatalf("accepted a packet shorter than its length field")
		}
	})
}

// A segment the injector writes reads back as it was made, with a TCP
// checksum that verifies (sums to zero with the pseudo-header).
func TestSegmentRoundTrip(t *testing.T) {
	k := flowKey{netip.MustParseAddrPort("10.77.0.1:40000"), netip.MustParseAddrPort("10.77.5.2:443")}
	p := segment(k, 7, 9, &flow{hasTS: true, tsVal: 11, tsEcr: 13}, []byte("abc"))
	got, fl, payload, ok := parseSegment(p) // read as a packet from the server
	if !ok || got != (flowKey{k.server, k.client}) || fl.seq != 7 || fl.ack != 9 || !fl.hasTS || fl.tsVal != 13 || fl.tsEcr != 11 || string(payload) != "abc" {
		t.Fatalf("%v %+v %+v %q", ok, got, fl, payload)
	}
	if tcpChecksum(k.server.Addr().As4(), k.client.Addr().As4(), p[20:]) != 0 {
		t.Error("checksum does not verify")
	}
}

// The injector follows a hello over segments: it is returned once, whole,
// when its last segment arrives; a retransmission, a segment out of order
// and the client's next record (which may begin like a hello) do not
// restart it, and a new connection on the same ports does.
func TestFlowTableHello(t *testing.T) {
	k := flowKey{netip.MustParseAddrPort("10.77.0.1:40000"), netip.MustParseAddrPort("10.77.5.2:443")}
	hello := []byte("\x16\x03\x01\x00\x08\x16abcdefg") // a record whose second segment begins 0x16
	flows := flowTable{}
	step := func(seq uint32, payload []byte) []byte {
		_, got := flows.add(k, &flow{seq: seq, ack: 5}, payload)
		return got
	}
	if got := step(100, hello[:5]); got != nil {
		t.Fatalf("a partial hello returned: %q", got)
	}
	if got := step(100, hello[:5]); got != nil {
		t.Fatalf("a retransmission returned: %q", got)
	}
	if got := step(110, hello[10:]); got != nil {
		t.Fatalf("a segment out of order returned: %q", got)
	}
	if got := step(105, hello[5:]); string(got) != string(hello) {
		t.Fatalf("the whole hello: %q, want %q", got, hello)
	}
	if got := step(113, []byte("\x16\x03\x03\x00\x01\x10")); got != nil {
		t.Fatalf("the client's next record was taken for a hello: %q", got)
	}
	if got := step(9000, hello); string(got) != string(hello) {
		t.Fatalf("a new connection's hello: %q", got)
	}
	if got := step(7, []byte("mid-stream")); got != nil || len(flows) != 1 {
		t.Fatalf("a segment of an unseen start: %q, %d flows", got, len(flows))
	}
}
