package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/atomicfile"
)

// A hop lab is a path with routers on it, made of Linux network namespaces
// the lab creates itself:
//
//	client ── router 1 ── router 2 ── … ── router N ── origin
//
// joined by veth pairs with private and documentation addresses
// (10.77.i.0/24 and 2001:db8:77:i::/64 for the link after router i) that
// exist only inside those namespaces. Routers forward, and so answer an
// expiring packet with ICMP time-exceeded from the address facing the
// client, 10.77.(k-1).2 (2001:db8:77:(k-1)::2) for router k. The lab middlebox can sit on
// one router as a transparent interceptor (nftables redirects port 443 to
// it); another router can reset ClientHellos. The origin and the middlebox
// are child processes started with `ip netns exec`: a process inside a
// namespace has every thread, socket and dial in it, where a setns on one
// locked thread would leave the middlebox's own dials to the origin (made on
// other goroutines, other threads) outside; and the existing middlebox code
// runs there unchanged. Children exit when their standard input closes, so
// they end with the lab even when the lab is killed.

// MaxRouters bounds a hop lab (one /24 per link, and within the 30 hops
// locate tries by default with room to spare).
const MaxRouters = 64

// HopsConfig describes a hop lab.
type HopsConfig struct {
	// Prefix starts every namespace's name (PREFIX-c, PREFIX-r1 …,
	// PREFIX-o): tests give each lab its own so that parallel labs do not
	// collide, and remove leftovers of theirs first.
	Prefix string
	// Routers is the number of routers, 1..MaxRouters.
	Routers int
	// BoxAt is the router (1-based) the middlebox sits on; 0: no box.
	BoxAt int
	// Inject makes the box one that does not terminate TCP: it reads the
	// ClientHello off the wire and injects a forged answer into the
	// client's connection with the origin (inject.go). Linux, IPv4.
	Inject bool
	// ResetAt is a router that answers every ClientHello to port 443 with
	// a TCP reset, as an SNI filter does; 0: none.
	ResetAt int
	// Dir receives hops.json and the lab's roots (public-root.pem to pass
	// as --roots, national-root.pem for --blocklist).
	Dir string
	// Command runs this program's ServeHopRole with the role's arguments
	// appended: the lab starts it in a namespace for the origin and the box
	// (mitmguard: [executable, "lab", "hop-serve"]).
	Command []string
	// Stderr receives the children's error output (nil: discarded, but
	// kept for the error of a child that fails to start).
	Stderr io.Writer
}

// Hops is a running hop lab; its exported fields are what hops.json holds.
type Hops struct {
	// ClientNetns is the namespace to run the client in (ip netns exec).
	ClientNetns string `json:"client_netns"`
	// Server is the origin's IP:port, as the client dials it.
	Server string `json:"server"`
	// Routers are the routers' addresses as the client sees them in
	// time-exceeded messages, in hop order.
	Routers []string `json:"routers"`
	// Server6 and Routers6 are the same over IPv6.
	Server6  string   `json:"server6"`
	Routers6 []string `json:"routers6"`
	// BoxAt and ResetAt are as configured (0: none); Inject, whether the
	// box injects into the origin's stream rather than terminating TCP.
	BoxAt   int  `json:"box_at"`
	ResetAt int  `json:"reset_at"`
	Inject  bool `json:"inject,omitempty"`
	// Namespaces are every namespace the lab made, removed on Close.
	Namespaces []string `json:"namespaces"`
	// Names are the names the origin serves; Targets, the names the box
	// intercepts, resets or stalls.
	Names   []string          `json:"names"`
	Targets map[string]string `json:"targets,omitempty"`

	children []*child
}

// UnavailableError says why a hop lab cannot run here.
type UnavailableError struct{ Reason string }

func (e *UnavailableError) Error() string {
	return "lab --hops needs root on Linux with iproute2 and nftables: " + e.Reason
}

var prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

func (c HopsConfig) validate() error {
	switch {
	case !prefixRE.MatchString(c.Prefix):
		return fmt.Errorf("lab: namespace prefix %q: want 1-31 of a-z, 0-9, -", c.Prefix)
	case c.Routers < 1 || c.Routers > MaxRouters:
		return fmt.Errorf("lab: --hops %d: want 1..%d routers", c.Routers, MaxRouters)
	case c.BoxAt < 0 || c.BoxAt > c.Routers:
		return fmt.Errorf("lab: --box-at %d: want 0 (no box) or a router 1..%d", c.BoxAt, c.Routers)
	case c.ResetAt < 0 || c.ResetAt > c.Routers:
		return fmt.Errorf("lab: --reset-at %d: want 0 (none) or a router 1..%d", c.ResetAt, c.Routers)
	case c.Dir == "":
		return errors.New("lab: a hop lab needs a folder for hops.json")
	case len(c.Command) == 0:
		return errors.New("lab: a hop lab needs the command that serves its roles")
	}
	return nil
}

// CanRunHops returns an *UnavailableError when this machine cannot run a
// hop lab: not Linux, not root, or ip/nft missing.
func CanRunHops() error {
	if runtime.GOOS != "linux" {
		return &UnavailableError{"network namespaces are a Linux feature (this is " + runtime.GOOS + ")"}
	}
	if os.Geteuid() != 0 {
		return &UnavailableError{"creating network namespaces needs root (run it with sudo)"}
	}
	for _, p := range [][2]string{{"ip", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(p[0]); err != nil {
			return &UnavailableError{fmt.Sprintf("%s is not installed (Debian package %s)", p[0], p[1])}
		}
	}
	return nil
}

// linkNet is the /24 of the link after router i (link 0: client to
// router 1; link N: router N to the origin).
func linkNet(i int) string { return fmt.Sprintf("10.77.%d", i) }

// linkNet6 is the link's /64, in the documentation range.
func linkNet6(i int) string { return fmt.Sprintf("2001:db8:77:%x", i) }

// HopPort is the port the origin serves and the interceptor captures.
const HopPort = 443

// StartHops builds the namespaces, starts the origin and the box, writes
// hops.json, and returns the running lab. Close it (on every path, Ctrl-C
// included) to remove everything it made.
func StartHops(ctx context.Context, cfg HopsConfig) (h *Hops, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := CanRunHops(); err != nil {
		return nil, err
	}
	if err := RemoveHopNamespaces(cfg.Prefix); err != nil {
		return nil, err
	}
	n := cfg.Routers
	h = &Hops{
		ClientNetns: cfg.Prefix + "-c", BoxAt: cfg.BoxAt, ResetAt: cfg.ResetAt, Inject: cfg.Inject && cfg.BoxAt > 0,
		Server:  net.JoinHostPort(linkNet(n)+".2", fmt.Sprint(HopPort)),
		Server6: net.JoinHostPort(linkNet6(n)+"::2", fmt.Sprint(HopPort)),
		Names:   DefaultNames, Targets: map[string]string{},
	}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	// Node 0 is the client, 1..n the routers, n+1 the origin.
	nodes := []string{h.ClientNetns}
	for k := 1; k <= n; k++ {
		nodes = append(nodes, fmt.Sprintf("%s-r%d", cfg.Prefix, k))
	}
	nodes = append(nodes, cfg.Prefix+"-o")
	for _, ns := range nodes {
		// Recorded before it is made: an ip that ctx kills may have made
		// it already, and Close must still remove it.
		h.Namespaces = append(h.Namespaces, ns)
		if err := ipCmd(ctx, "netns", "add", ns); err != nil {
			return h, &UnavailableError{"cannot create a network namespace: " + err.Error()}
		}
		if err := ipCmd(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
			return h, err
		}
	}
	// Link i joins node i ("east", .1) to node i+1 ("west", .2). Each end
	// is made inside its namespace: nothing appears in the host's.
	for i := 0; i <= n; i++ {
		if err := ipCmd(ctx, "link", "add", "name", "east", "netns", nodes[i], "type", "veth", "peer", "name", "west", "netns", nodes[i+1]); err != nil {
			return h, err
		}
	}
	// Addresses and routes, IPv4 and IPv6: towards the origin by default;
	// back through the upstream neighbour for every link before it (the
	// client's, for replies and time-exceeded; the others, for the box's
	// own connection to the origin).
	for k := 0; k <= n+1; k++ {
		var b strings.Builder
		if k <= n {
			fmt.Fprintf(&b, "addr add %s.1/24 dev east\naddr add %s::1/64 dev east nodad\nlink set east up\n", linkNet(k), linkNet6(k))
			fmt.Fprintf(&b, "route add default via %s.2\nroute add default via %s::2\n", linkNet(k), linkNet6(k))
		}
		if k >= 1 {
			fmt.Fprintf(&b, "addr add %s.2/24 dev west\naddr add %s::2/64 dev west nodad\nlink set west up\n", linkNet(k-1), linkNet6(k-1))
		}
		if k == n+1 {
			fmt.Fprintf(&b, "route add default via %s.1\nroute add default via %s::1\n", linkNet(n), linkNet6(n))
		}
		for j := 0; j < k-1; j++ {
			fmt.Fprintf(&b, "route add %s.0/24 via %s.1\nroute add %s::/64 via %s::1\n", linkNet(j), linkNet(k-1), linkNet6(j), linkNet6(k-1))
		}
		if err := ipBatch(ctx, nodes[k], b.String()); err != nil {
			return h, err
		}
		if k >= 1 && k <= n {
			if err := ipCmd(ctx, "netns", "exec", nodes[k], "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
				return h, err
			}
			h.Routers = append(h.Routers, linkNet(k-1)+".2")
			h.Routers6 = append(h.Routers6, netip.MustParseAddr(linkNet6(k-1)+"::2").String()) // as ICMPv6 shows it
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return h, err
	}
	if _, err := h.start(ctx, cfg, nodes[n+1], "origin", cfg.Dir); err != nil {
		return h, err
	}
	if h.Inject {
		if _, err := h.start(ctx, cfg, nodes[cfg.BoxAt], "injector", cfg.Dir, h.Server); err != nil {
			return h, err
		}
		for name, a := range DefaultTargets() {
			h.Targets[name] = a.String()
		}
		// A segment to port 443 whose TTL ends here is dropped without a
		// time-exceeded: the box answers the hello it carries, as a box in
		// the path would, and the client hears the box, not the router.
		rule := fmt.Sprintf(`table inet mitmguard_lab {
	chain quiet {
		type filter hook prerouting priority filter;
		iifname "west" ip ttl 1 tcp dport %d drop
	}
}
`, HopPort)
		if err := nft(ctx, nodes[cfg.BoxAt], rule); err != nil {
			return h, err
		}
	} else if cfg.BoxAt > 0 {
		port, err := h.start(ctx, cfg, nodes[cfg.BoxAt], "box", cfg.Dir, h.Server)
		if err != nil {
			return h, err
		}
		for name, a := range DefaultTargets() {
			h.Targets[name] = a.String()
		}
		rule := fmt.Sprintf(`table inet mitmguard_lab {
	chain pre {
		type nat hook prerouting priority dstnat;
		iifname "west" tcp dport %d redirect to :%s
	}
}
`, HopPort, port)
		if err := nft(ctx, nodes[cfg.BoxAt], rule); err != nil {
			return h, err
		}
	}
	if cfg.ResetAt > 0 {
		// On the ClientHello (the first payload byte of a segment is 0x16,
		// a TLS handshake record), not on the SYN: an SNI filter lets the
		// connection open and resets it when it reads the name, and a reset
		// SYN would fail every attempt's full-TTL connect instead of
		// answering at one hop. Prerouting, so the hello that arrives with
		// TTL 1 is seen before forwarding would expire it, as the box is.
		rule := fmt.Sprintf(`table inet mitmguard_lab {
	chain sni_filter {
		type filter hook prerouting priority filter;
		iifname "west" tcp dport %d @ih,0,8 0x16 reject with tcp reset
	}
}
`, HopPort)
		if err := nft(ctx, nodes[cfg.ResetAt], rule); err != nil {
			return h, err
		}
	}
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return h, err
	}
	return h, atomicfile.Write(filepath.Join(cfg.Dir, "hops.json"), append(data, '\n'), 0o644, nil)
}

// Close stops the children and removes every namespace, and with them
// their veths and nftables rules.
func (h *Hops) Close() error {
	var errs []error
	for _, c := range h.children {
		errs = append(errs, c.stop())
	}
	for _, ns := range h.Namespaces {
		if err := ipCmd(context.Background(), "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	h.children, h.Namespaces = nil, nil
	return errors.Join(errs...)
}

// RemoveHopNamespaces deletes the namespaces a hop lab with this prefix
// left behind (a lab that was killed cannot tidy up).
func RemoveHopNamespaces(prefix string) error {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range ents {
		if IsHopNamespace(prefix, e.Name()) {
			errs = append(errs, ipCmd(context.Background(), "netns", "del", e.Name()))
		}
	}
	return errors.Join(errs...)
}

var nodeRE = regexp.MustCompile(`^(c|o|r[0-9]+)$`)

// IsHopNamespace reports whether name is one a hop lab with prefix makes.
func IsHopNamespace(prefix, name string) bool {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	return ok && nodeRE.MatchString(rest)
}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ipBatch runs ip's commands, one a line, in namespace ns.
func ipBatch(ctx context.Context, ns, lines string) error {
	cmd := exec.CommandContext(ctx, "ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(lines)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n %s -batch: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
}

func nft(ctx context.Context, ns, rules string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft in %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
}

// child is a role process in a namespace.
type child struct {
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{} // closed when the child has been waited for
}

// childStart bounds how long a role may take to be ready (it makes an RSA
// key).
const childStart = 30 * time.Second

// start runs a role in ns and waits for its "ready VALUE" line.
func (h *Hops) start(ctx context.Context, cfg HopsConfig, ns string, role ...string) (string, error) {
	args := append([]string{"netns", "exec", ns}, cfg.Command...)
	cmd := exec.Command("ip", append(args, role...)...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	if cfg.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&errBuf, cfg.Stderr)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	h.children = append(h.children, c)
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(io.LimitReader(stdout, 4096))
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(c.done)
	}()
	t := time.NewTimer(childStart)
	defer t.Stop()
	select {
	case l, ok := <-line:
		if v, found := strings.CutPrefix(l, "ready "); ok && found {
			return v, nil
		}
		<-c.done
		return "", fmt.Errorf("lab: the %s in %s did not start: %s", role[0], ns, bytes.TrimSpace(errBuf.Bytes()))
	case <-t.C:
		return "", fmt.Errorf("lab: the %s in %s was not ready after %v", role[0], ns, childStart)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stop closes the child's input, which ends it, and kills it if it lingers.
func (c *child) stop() error {
	c.stdin.Close()
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("lab: a child (pid %d) did not stop and was killed", c.cmd.Process.Pid)
	}
}

// ServeHopRole is a hop lab's child, run by HopsConfig.Command in a
// namespace. args is "origin DIR" or "box DIR ORIGIN". It prints one line,
// "ready VALUE" (for the box, its port), then serves until stdin closes or
// ctx ends.
func ServeHopRole(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) < 2 {
		return errors.New("lab hop-serve: want origin DIR or box DIR ORIGIN")
	}
	now := time.Now()
	p, err := newPKI(now)
	if err != nil {
		return err
	}
	s := newServers()
	defer s.close()
	dir := args[1]
	var ready string
	var failed chan error // the injector stopped reading the wire; nil for the other roles
	switch {
	case args[0] == "origin" && len(args) == 2:
		leaf, key, err := p.publicCA.issueLeaf(OriginCommonName, DefaultNames, "", now)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", HopPort))
		if err != nil {
			return err
		}
		cfg := &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw, p.publicCA.cert.Raw}, PrivateKey: key, Leaf: leaf}},
			NextProtos:   []string{"http/1.1"},
		}
		s.serve(tls.NewListener(ln, cfg), &http.Server{TLSConfig: cfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from the hop lab origin (you asked for %s)\n", r.Host)
		})})
		if err := os.WriteFile(filepath.Join(dir, "public-root.pem"), PEM(p.publicRoot.cert), 0o644); err != nil {
			return err
		}
		ready = ln.Addr().String()
	case args[0] == "box" && len(args) == 3:
		root, err := readRoot(filepath.Join(dir, "public-root.pem"))
		if err != nil {
			return err
		}
		f := newForger(p.security, 2048)
		if _, err := f.key(DefaultNames[0]); err != nil { // now, not in the first handshake
			return err
		}
		addr, err := s.startMiddlebox("", args[2], DefaultTargets(), f, root)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "national-root.pem"), PEM(p.national.cert), 0o644); err != nil {
			return err
		}
		_, ready, _ = net.SplitHostPort(addr)
	case args[0] == "injector" && len(args) == 3:
		root, err := readRoot(filepath.Join(dir, "public-root.pem"))
		if err != nil {
			return err
		}
		real, err := originLeaf(ctx, args[2], root)
		if err != nil {
			return err
		}
		in, err := openInjector("west", DefaultTargets(), newForger(p.security, 2048), real)
		if err != nil {
			return err
		}
		defer in.close()
		ictx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { stop(); <-done }()
		failed = make(chan error, 1)
		go func() {
			if err := in.run(ictx); err != nil {
				failed <- fmt.Errorf("lab injector: %w", err)
			}
			close(done)
		}()
		if err := os.WriteFile(filepath.Join(dir, "national-root.pem"), PEM(p.national.cert), 0o644); err != nil {
			return err
		}
		ready = "injector"
	default:
		return fmt.Errorf("lab hop-serve: unknown role %q", args)
	}
	if _, err := fmt.Fprintf(stdout, "ready %s\n", ready); err != nil {
		return err
	}
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	case err := <-failed: // a box that no longer forges must not pass for one
		return err
	}
	return nil
}

// originLeaf is the origin's own certificate, which the injector's
// forgeries copy as the 2019 box's did.
func originLeaf(ctx context.Context, origin string, root *x509.Certificate) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, childStart)
	defer cancel()
	pool := x509.NewCertPool()
	pool.AddCert(root)
	d := tls.Dialer{Config: &tls.Config{ServerName: DefaultNames[0], RootCAs: pool}}
	c, err := d.DialContext(ctx, "tcp", origin)
	if err != nil {
		return nil, fmt.Errorf("lab injector: the origin: %w", err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

func readRoot(name string) (*x509.Certificate, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := chain.ReadPEM(f)
	if err != nil {
		return nil, err
	}
	if len(c) != 1 || c[0].X509 == nil {
		return nil, fmt.Errorf("%s: want one certificate", name)
	}
	return c[0].X509, nil
}
