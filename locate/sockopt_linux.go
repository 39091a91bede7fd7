package locate

import (
	"golang.org/x/sys/unix"
)

// hopOpts are the socket options locate changes: the TTL (IPv6: unicast
// hop limit), and whether ICMP errors are reported on the socket
// (IP_RECVERR), which makes an expired segment fail the connection's next
// read with EHOSTUNREACH instead of being retried in silence.
type hopOpts struct {
	TTL     int
	RecvErr int
}

func levelNames(v6 bool) (level, ttl, recverr int) {
	if v6 {
		return unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, unix.IPV6_RECVERR
	}
	return unix.IPPROTO_IP, unix.IP_TTL, unix.IP_RECVERR
}

func getHopOpts(fd int, v6 bool) (hopOpts, error) {
	level, ttl, recverr := levelNames(v6)
	var o hopOpts
	var err error
	if o.TTL, err = unix.GetsockoptInt(fd, level, ttl); err != nil {
		return o, err
	}
	o.RecvErr, err = unix.GetsockoptInt(fd, level, recverr)
	return o, err
}

func setHopOpts(fd int, v6 bool, o hopOpts) error {
	level, ttl, recverr := levelNames(v6)
	if err := unix.SetsockoptInt(fd, level, ttl, o.TTL); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, level, recverr, o.RecvErr)
}
