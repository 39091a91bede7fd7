//go:build !linux

package locate

import "errors"

type hopOpts struct {
	TTL     int
	RecvErr int
}

var errPlatform = errors.New("locate: setting the TTL of one write and reading ICMP errors is implemented for Linux only")

func getHopOpts(fd int, v6 bool) (hopOpts, error) { return hopOpts{}, errPlatform }
func setHopOpts(fd int, v6 bool, o hopOpts) error { return errPlatform }
