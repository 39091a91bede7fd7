package locate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ICMP types and codes of a time-exceeded message ("TTL exceeded in
// transit"): RFC 792 for IPv4, RFC 4443 for IPv6.
const (
	icmp4TimeExceeded = 11
	icmp6TimeExceeded = 3
	tcpProto          = 6
)

// quoted is the flow of the packet a time-exceeded message quotes: the
// router sends back the IP header and the first 8 bytes of the TCP segment
// that expired, enough to match it to the connection that sent it.
type quoted struct {
	Src, Dst netip.AddrPort
}

var errNotTimeExceeded = errors.New("locate: not an ICMP time-exceeded message for TCP")

// parseTimeExceeded reads an ICMP message (from its ICMP header; Go's raw
// IPv4 socket strips the outer IP header, and ICMPv6 sockets never see it)
// that any host on the path may have sent: every length and field is checked
// before use.
func parseTimeExceeded(msg []byte, v6 bool) (quoted, error) {
	var q quoted
	want := byte(icmp4TimeExceeded)
	if v6 {
		want = icmp6TimeExceeded
	}
	// type, code (0: hop limit exceeded in transit), checksum, 4 unused bytes.
	if len(msg) < 8 || msg[0] != want || msg[1] != 0 {
		return q, errNotTimeExceeded
	}
	ip := msg[8:]
	var src, dst netip.Addr
	var tcp []byte
	if v6 {
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return q, fmt.Errorf("locate: quoted IPv6 header: %w", errNotTimeExceeded)
		}
		if ip[6] != tcpProto { // extension headers are not followed
			return q, errNotTimeExceeded
		}
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		tcp = ip[40:]
	} else {
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return q, fmt.Errorf("locate: quoted IPv4 header: %w", errNotTimeExceeded)
		}
		ihl := int(ip[0]&0x0f) * 4
		if ihl < 20 || len(ip) < ihl {
			return q, fmt.Errorf("locate: quoted IPv4 header length %d: %w", ihl, errNotTimeExceeded)
		}
		if ip[9] != tcpProto {
			return q, errNotTimeExceeded
		}
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		tcp = ip[ihl:]
	}
	if len(tcp) < 4 { // source and destination ports
		return q, fmt.Errorf("locate: quoted TCP header: %w", errNotTimeExceeded)
	}
	q.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:2]))
	q.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:4]))
	return q, nil
}
