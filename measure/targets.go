package measure

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
)

// DefaultExcluded are the special-purpose ranges a scan never probes
// (RFC 6890 and its successors), except loopback, which is where the lab
// lives: private networks, carrier-grade NAT, link-local, documentation,
// benchmarking, multicast and reserved space.
var DefaultExcluded = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
	"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
	"::/128", "::ffff:0:0/96", "64:ff9b::/96", "100::/64", "2001::/23", "2001:db8::/32",
	"fc00::/7", "fe80::/10", "ff00::/8",
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// MaxExpansion bounds the addresses one CIDR line expands to (a /16).
const MaxExpansion = 1 << 16

// LineError is a line of a hosts file that cannot be used.
type LineError struct {
	Line   int
	Text   string
	Reason string
}

func (e *LineError) Error() string {
	return fmt.Sprintf("hosts line %d %q: %s", e.Line, e.Text, e.Reason)
}

// ReadHosts streams the hosts of r, one per line (IP, IP:PORT, [IPv6]:PORT,
// or a CIDR, optionally with :PORT after it; # starts a comment), as
// "IP:PORT" strings, skipping excluded addresses. It stops at the first bad
// line and returns its error; it never holds more than one line's expansion
// at a time.
func ReadHosts(ctx context.Context, r io.Reader, exclude []netip.Prefix, out chan<- string) (skipped int, err error) {
	err = scanLines(r, func(n int, line string) error {
		prefix, port, err := parseHostLine(line)
		if err != nil {
			return &LineError{Line: n, Text: line, Reason: err.Error()}
		}
		if bits := prefix.Addr().BitLen() - prefix.Bits(); bits > 16 {
			return &LineError{Line: n, Text: line, Reason: fmt.Sprintf("a /%d is larger than a /%d; split it", prefix.Bits(), prefix.Addr().BitLen()-16)}
		}
		for a := prefix.Masked().Addr(); a.IsValid() && prefix.Contains(a); a = a.Next() {
			if Excluded(a, exclude) {
				skipped++
				continue
			}
			select {
			case out <- netip.AddrPortFrom(a, port).String():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	if le := (*LineError)(nil); err != nil && !errors.As(err, &le) && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("hosts: %w", err)
	}
	return skipped, err
}

func parseHostLine(line string) (netip.Prefix, uint16, error) {
	port := uint16(443)
	addr := line
	if h, p, err := net.SplitHostPort(line); err == nil {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
			return netip.Prefix{}, 0, fmt.Errorf("port must be 1-65535")
		}
		addr, port = h, uint16(n)
	}
	if strings.Contains(addr, "/") {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return netip.Prefix{}, 0, fmt.Errorf("not a CIDR")
		}
		return p, port, nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, 0, fmt.Errorf("not an IP address (names are not resolved: give addresses)")
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), port, nil
}

// Excluded reports whether a scan must not dial a: it lies in one of the
// exclude networks, or no TLS handshake can be made with it whatever the
// networks allowed (--allow-special 0.0.0.0/0 included): a multicast
// address, the limited broadcast 255.255.255.255 or the unspecified
// address, in any form. A TCP connection to a group or to every host of a
// link is meaningless, and 0.0.0.0 would reach this machine.
func Excluded(a netip.Addr, exclude []netip.Prefix) bool {
	if u := a.Unmap(); u.IsMulticast() || u.IsUnspecified() || u == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	for _, p := range exclude {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ReadExclusions reads a file of networks (CIDR or single addresses, one per
// line, # comments).
func ReadExclusions(r io.Reader) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := scanLines(r, func(n int, line string) error {
		if a, err := netip.ParseAddr(line); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			return nil
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			return &LineError{Line: n, Text: line, Reason: "not an address or CIDR"}
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// scanLines calls fn for each line of r that is not empty once trimmed and
// stripped of a # comment, with its 1-based number.
func scanLines(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// ReadDomains reads test or control SNIs, one per line (# comments).
func ReadDomains(r io.Reader) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	err := scanLines(r, func(n int, line string) error {
		line = strings.ToLower(strings.TrimSuffix(line, "."))
		if strings.ContainsAny(line, " /:@") || len(line) > 253 {
			return &LineError{Line: n, Text: line, Reason: "not a domain name"}
		}
		if !seen[line] {
			seen[line] = true
			out = append(out, line)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no domain names")
	}
	return out, nil
}
