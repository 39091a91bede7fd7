package locate

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// timeExceeded4 builds the ICMP message a router sends for an expired IPv4
// TCP segment from src to dst.
func timeExceeded4(src, dst netip.AddrPort) []byte {
	m := []byte{icmp4TimeExceeded, 0, 0, 0, 0, 0, 0, 0}
	ip := make([]byte, 20)
	ip[0], ip[9] = 0x45, tcpProto
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	tcp := make([]byte, 8)
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	return append(append(m, ip...), tcp...)
}

func timeExceeded6(src, dst netip.AddrPort) []byte {
	m := []byte{icmp6TimeExceeded, 0, 0, 0, 0, 0, 0, 0}
	ip := make([]byte, 40)
	ip[0], ip[6] = 0x60, tcpProto
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	tcp := make([]byte, 8)
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	return append(append(m, ip...), tcp...)
}

func TestParseTimeExceeded(t *testing.T) {
	src4, dst4 := netip.MustParseAddrPort("10.77.0.1:40000"), netip.MustParseAddrPort("10.77.5.2:443")
	q, err := parseTimeExceeded(timeExceeded4(src4, dst4), false)
	if err != nil || q.Src != src4 || q.Dst != dst4 {
		t.Fatalf("v4: %v %v", q, err)
	}
	src6, dst6 := netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8:5::2]:443")
	q, err = parseTimeExceeded(timeExceeded6(src6, dst6), true)
	if err != nil || q.Src != src6 || q.Dst != dst6 {
		t.Fatalf("v6: %v %v", q, err)
	}
	// IPv4 options in the quoted header move the TCP ports.
	m := timeExceeded4(src4, dst4)
	withOpts := append(append(append([]byte{}, m[:8]...), m[8:28]...), 1, 1, 1, 1)
	withOpts = append(withOpts, m[28:]...)
	withOpts[8] = 0x46
	if q, err := parseTimeExceeded(withOpts, false); err != nil || q.Dst != dst4 {
		t.Fatalf("v4 with options: %v %v", q, err)
	}

	bad := map[string][]byte{
		"empty":              nil,
		"echo reply":         {0, 0, 0, 0, 0, 0, 0, 0},
		"reassembly expired": append([]byte{icmp4TimeExceeded, 1}, m[2:]...),
		"truncated ip":       m[:20],
		"no ports":           m[:29],
		"udp":                func() []byte { b := append([]byte{}, m...); b[8+9] = 17; return b }(),
		"ihl too small":      func() []byte { b := append([]byte{}, m...); b[8] = 0x44; return b }(),
		"ihl past the end":   func() []byte { b := append([]byte{}, m[:30]...); b[8] = 0x4f; return b }(),
		"v6 header in v4":    timeExceeded6(src6, dst6),
	}
	for name, b := range bad {
		if _, err := parseTimeExceeded(b, false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := parseTimeExceeded(timeExceeded6(src6, dst6)[:50], true); err == nil {
		t.Error("truncated v6: accepted")
	}
	if _, err := parseTimeExceeded(m, true); err == nil {
		t.Error("v4 message on a v6 socket: accepted")
	}
}

// FuzzParseTimeExceeded: any host on the path can send any bytes; the
// parser never panics and what it accepts names a TCP flow.
func FuzzParseTimeExceeded(f *testing.F) {
	f.Add(timeExceeded4(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:443")), false)
	f.Add(timeExceeded6(netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::2]:443")), true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		q, err := parseTimeExceeded(b, v6)
		if err != nil {
			return
		}
		if !q.Src.IsValid() || !q.Dst.IsValid() || q.Src.Addr().Is4() == v6 {
			t.Fatalf("accepted %x as %v", b, q)
		}
	})
}
