//go:build linux

package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// An injector is a middlebox that does not terminate TCP: the client's
// connection goes to the origin, and the box, on the path, reads the
// ClientHello off the wire (an AF_PACKET socket on the router's client-side
// veth) and, for a targeted name, writes a forged server flight into the
// client's stream with the origin's address and the sequence numbers the
// client expects, racing the origin's own answer (it is hops closer, so it
// wins). Only the TLS stream is rewritten; the TCP handshake is the
// origin's. The flight is TLS 1.2, where the certificate is sent in the
// clear; its ServerKeyExchange signature does not hold (the random is not
// the one signed), so the client stops right after it has the chain.

// injectSnap bounds what is read of one packet.
const injectSnap = 65536

// flow is a client's connection as seen on the wire: the hello's bytes so
// far and what the injected segments need.
type flow struct {
	seq, ack     uint32 // of the hello's first segment
	tsVal, tsEcr uint32
	hasTS        bool
	hello        []byte
	done         bool
}

type flowKey struct {
	client netip.AddrPort
	server netip.AddrPort
}

// injector is the box's two sockets: one reads the client side's packets,
// the other writes the forged segments.
type injector struct {
	sniff, out int
	targets    map[string]Action
	forged     *tls.Certificate
}

// openInjector opens the sockets on iface and forges the certificate that
// impersonates real.
func openInjector(iface string, targets map[string]Action, f *forger, real *x509.Certificate) (in *injector, err error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	in = &injector{sniff: -1, out: -1, targets: targets}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	proto := uint16(unix.ETH_P_IP)
	proto = proto<<8 | proto>>8 // network order
	if in.sniff, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(proto)); err != nil {
		return nil, fmt.Errorf("lab injector: AF_PACKET socket: %w", err)
	}
	if err := unix.Bind(in.sniff, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return nil, err
	}
	if err := unix.SetsockoptTimeval(in.sniff, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000}); err != nil {
		return nil, err
	}
	if in.out, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW); err != nil {
		return nil, fmt.Errorf("lab injector: raw socket: %w", err)
	}
	if in.forged, err = f.forge(real); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *injector) close() {
	for _, fd := range []int{in.sniff, in.out} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// run answers the targeted ClientHellos to port HopPort with a forged
// flight until ctx ends.
func (in *injector) run(ctx context.Context) error {
	flows := flowTable{}
	buf := make([]byte, injectSnap)
	for ctx.Err() == nil {
		n, from, err := unix.Recvfrom(in.sniff, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		key, fl, payload, ok := parseSegment(buf[:n])
		if !ok || key.server.Port() != HopPort || len(payload) == 0 {
			continue
		}
		cur, hello := flows.add(key, fl, payload)
		if hello == nil {
			continue
		}
		sni, _, err := readClientHello(&prefixConn{Conn: nopConn{}, prefix: hello})
		if err != nil || in.targets[sni] != Intercept {
			continue
		}
		flight, err := serverFlight(hello, in.forged)
		if err != nil {
			continue
		}
		inject(in.out, key, cur, uint32(len(hello)), flight)
	}
	return nil
}

// flowTable is the client connections the box follows, by flow.
type flowTable map[flowKey]*flow

// add takes a client segment's payload (fl its numbers) and returns the
// connection and its hello record once it is whole; nil otherwise. A
// segment that begins a TLS record and does not continue the hello so far
// starts the flow afresh (a new connection on the same ports); any other
// segment out of order, a retransmission, or a segment after the hello is
// ignored.
func (flows flowTable) add(key flowKey, fl *flow, payload []byte) (*flow, []byte) {
	cur := flows[key]
	if cur == nil || payload[0] == 0x16 && fl.seq != cur.seq && fl.seq != cur.seq+uint32(len(cur.hello)) {
		if payload[0] != 0x16 {
			return nil, nil // the middle of a stream whose start was not seen
		}
		if len(flows) >= 4096 {
			clear(flows) // a lab sees few connections; bound it all the same
		}
		cur = fl
		flows[key] = cur
	}
	if cur.done || fl.seq != cur.seq+uint32(len(cur.hello)) {
		return nil, nil // a retransmission, or a segment out of order
	}
	cur.hello = append(cur.hello, payload...)
	hello, complete := helloRecord(cur.hello)
	if !complete {
		return nil, nil
	}
	cur.done = true
	return cur, hello
}

// parseSegment reads an IPv4 TCP segment: its flow, the numbers an answer
// needs, and its payload.
func parseSegment(p []byte) (flowKey, *flow, []byte, bool) {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_TCP {
		return flowKey{}, nil, nil, false
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if ihl < 20 || total > len(p) || total < ihl+20 {
		return flowKey{}, nil, nil, false
	}
	src, _ := netip.AddrFromSlice(p[12:16])
	dst, _ := netip.AddrFromSlice(p[16:20])
	t := p[ihl:total]
	off := int(t[12]>>4) * 4
	if off < 20 || off > len(t) {
		return flowKey{}, nil, nil, false
	}
	key := flowKey{netip.AddrPortFrom(src, binary.BigEndian.Uint16(t[0:2])), netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[2:4]))}
	fl := &flow{seq: binary.BigEndian.Uint32(t[4:8]), ack: binary.BigEndian.Uint32(t[8:12])}
	for o := t[20:off]; len(o) > 0; {
		switch o[0] {
		case 0: // end of options
			o = nil
		case 1: // no-op
			o = o[1:]
		default:
			if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
				o = nil
				continue
			}
			if o[0] == 8 && o[1] == 10 {
				fl.tsVal, fl.tsEcr, fl.hasTS = binary.BigEndian.Uint32(o[2:6]), binary.BigEndian.Uint32(o[6:10]), true
			}
			o = o[o[1]:]
		}
	}
	return key, fl, t[off:], true
}

// helloRecord returns the first TLS record of b once it is whole.
func helloRecord(b []byte) ([]byte, bool) {
	if len(b) < 5 {
		return nil, false
	}
	n := 5 + int(binary.BigEndian.Uint16(b[3:5]))
	if len(b) < n {
		return nil, false
	}
	return b[:n], true
}

// serverFlight is what a TLS 1.2 server with the forged certificate sends
// in answer to hello, up to ServerHelloDone, with the server random's
// downgrade sentinel replaced (Go's client would stop at it, before the
// certificate).
func serverFlight(hello []byte, cert *tls.Certificate) ([]byte, error) {
	w := &flightConn{in: bytes.NewReader(hello)}
	srv := tls.Server(w, &tls.Config{Certificates: []tls.Certificate{*cert}, MaxVersion: tls.VersionTLS12})
	srv.Handshake() // fails at EOF, when it waits for the client's key exchange
	flight := w.out.Bytes()
	// record header 5, handshake header 4, version 2: the random is at
	// 11..43, its last 8 bytes the sentinel.
	if len(flight) < 43 || flight[0] != 0x16 || flight[5] != 2 {
		return nil, errors.New("lab injector: no ServerHello")
	}
	if _, err := rand.Read(flight[35:43]); err != nil {
		return nil, err
	}
	return flight, nil
}

// flightConn feeds a tls.Server the ClientHello and keeps what it writes.
type flightConn struct {
	nopConn
	in  io.Reader
	out bytes.Buffer
}

func (c *flightConn) Read(b []byte) (int, error)  { return c.in.Read(b) }
func (c *flightConn) Write(b []byte) (int, error) { return c.out.Write(b) }

// nopConn is a net.Conn that does nothing, for the in-memory TLS parsers.
type nopConn struct{}

func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (nopConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

// injectMSS keeps each injected segment within the veths' MTU.
const injectMSS = 1200

// inject writes payload to the client as the server's next bytes, in
// segments, with the server's address: sequence numbers from the hello's
// acknowledgment, acknowledging the whole hello.
func inject(fd int, key flowKey, fl *flow, helloLen uint32, payload []byte) {
	seq, ack := fl.ack, fl.seq+helloLen
	dst := &unix.SockaddrInet4{Addr: key.client.Addr().As4()}
	for len(payload) > 0 {
		n := min(len(payload), injectMSS)
		pkt := segment(key, seq, ack, fl, payload[:n])
		unix.Sendto(fd, pkt, 0, dst)
		seq += uint32(n)
		payload = payload[n:]
	}
}

// segment builds an IPv4 packet holding one TCP segment from the server to
// the client (the kernel fills in the IP checksum and length of a raw
// IPPROTO_RAW packet).
func segment(key flowKey, seq, ack uint32, fl *flow, data []byte) []byte {
	optLen := 0
	if fl.hasTS {
		optLen = 12
	}
	tcpLen := 20 + optLen + len(data)
	p := make([]byte, 20+tcpLen)
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	src, dst := key.server.Addr().As4(), key.client.Addr().As4()
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:2], key.server.Port())
	binary.BigEndian.PutUint16(t[2:4], key.client.Port())
	binary.BigEndian.PutUint32(t[4:8], seq)
	binary.BigEndian.PutUint32(t[8:12], ack)
	t[12] = byte((20+optLen)/4) << 4
	t[13] = 0x18 // PSH, ACK
	binary.BigEndian.PutUint16(t[14:16], 65535)
	if fl.hasTS {
		o := t[20:32]
		o[0], o[1], o[2], o[3] = 1, 1, 8, 10
		binary.BigEndian.PutUint32(o[4:8], fl.tsEcr) // the server's clock, as the client last saw it
		binary.BigEndian.PutUint32(o[8:12], fl.tsVal)
	}
	copy(t[20+optLen:], data)
	binary.BigEndian.PutUint16(t[16:18], tcpChecksum(src, dst, t))
	return p
}

func tcpChecksum(src, dst [4]byte, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += unix.IPPROTO_TCP + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
