package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Config says what the lab serves and what its middlebox targets. The zero
// value serves DefaultNames and intercepts DefaultTargets.
type Config struct {
	// Names are the names the origin's certificate is valid for.
	Names []string
	// Targets maps an SNI to the middlebox's action; names not in it pass.
	Targets map[string]Action
	// ForgedKeyBits is the size of the forged leaves' RSA keys (default 2048,
	// as the 2019 box used after 19 July 2019).
	ForgedKeyBits int
	// Origin, if set, is a server of the caller's (on loopback) that the
	// middlebox fronts instead of the lab's own origin; OriginRoot is the
	// root its certificate verifies to. The server-side detector's tests put
	// the middlebox in front of a detecting server this way.
	Origin     string
	OriginRoot *x509.Certificate
}

// DefaultNames are served by the origin when Config.Names is empty: some of
// the domains targeted in 2019 and some that were not.
var DefaultNames = []string{
	"facebook.com", "www.facebook.com", "google.com", "www.google.com", "mail.ru", "vk.com", "twitter.com", "ok.ru",
	"en.wikipedia.org", "www.bbc.co.uk", "github.com",
}

// DefaultTargets are the middlebox's targets when Config.Targets is nil.
func DefaultTargets() map[string]Action {
	return map[string]Action{
		"facebook.com": Intercept, "www.facebook.com": Intercept, "google.com": Intercept, "www.google.com": Intercept,
		"mail.ru": Intercept, "vk.com": Intercept, "twitter.com": Reset, "ok.ru": Stall,
	}
}

// OriginCommonName is the common name of the origin's certificate. It names
// none of the names the certificate serves, so that no one reading a chain
// takes the subject's name for the one that matched (a client checks only the
// subject alternative names).
const OriginCommonName = "mitmguard lab origin"

// IncompleteName is served by the origin that omits its intermediate.
const IncompleteName = "incomplete-chain.mitmguard.dev"

// Lab is a running lab. Its fields are read-only.
type Lab struct {
	// PublicRoot is the lab's stand-in for a public root: pass it as an
	// extra public root (check --roots).
	PublicRoot *x509.Certificate
	// PublicCA is the intermediate that issues the origins' certificates.
	PublicCA *x509.Certificate
	// NationalRoot is the interception root; never sent by the middlebox.
	NationalRoot *x509.Certificate
	// SecurityCA is the "Security Certificate" intermediate the middlebox
	// sends with each forged leaf.
	SecurityCA *x509.Certificate
	// OriginAddr serves every name directly; MiddleboxAddr serves the same
	// origin through the middlebox; IncompleteAddr serves IncompleteName
	// without its intermediate; AIAURL is where that intermediate can be had.
	OriginAddr, MiddleboxAddr, IncompleteAddr, AIAURL string
	// Names and Targets are the configuration in force.
	Names   []string
	Targets map[string]Action

	*servers
}

// Start starts a lab on 127.0.0.1. Close it when done.
func Start(cfg Config) (l *Lab, err error) {
	if cfg.Names == nil {
		cfg.Names = DefaultNames
	}
	if cfg.Targets == nil {
		cfg.Targets = DefaultTargets()
	}
	if cfg.ForgedKeyBits == 0 {
		cfg.ForgedKeyBits = 2048
	}
	now := time.Now()
	pki, err := newPKI(now)
	if err != nil {
		return nil, err
	}
	publicRoot, publicCA, national, security := pki.publicRoot, pki.publicCA, pki.national, pki.security
	l = &Lab{
		PublicRoot: publicRoot.cert, PublicCA: publicCA.cert, NationalRoot: national.cert, SecurityCA: security.cert,
		Names: cfg.Names, Targets: cfg.Targets, servers: newServers(),
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()

	aiaLn, err := listen("127.0.0.1")
	if err != nil {
		return nil, err
	}
	l.AIAURL = fmt.Sprintf("http://%s/public-ca.crt", aiaLn.Addr())
	l.serve(aiaLn, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/public-ca.crt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(publicCA.cert.Raw)
	})})

	leaf, key, err := publicCA.issueLeaf(OriginCommonName, cfg.Names, l.AIAURL, now)
	if err != nil {
		return nil, err
	}
	if l.OriginAddr, err = l.serveTLS("127.0.0.1", tls.Certificate{Certificate: [][]byte{leaf.Raw, publicCA.cert.Raw}, PrivateKey: key, Leaf: leaf}); err != nil {
		return nil, err
	}

	ileaf, ikey, err := publicCA.issueLeaf(IncompleteName, []string{IncompleteName}, l.AIAURL, now)
	if err != nil {
		return nil, err
	}
	if l.IncompleteAddr, err = l.serveTLS("127.0.0.1", tls.Certificate{Certificate: [][]byte{ileaf.Raw}, PrivateKey: ikey, Leaf: ileaf}); err != nil {
		return nil, err
	}

	origin, originRoot := l.OriginAddr, publicRoot.cert
	f := newForger(security, cfg.ForgedKeyBits)
	if cfg.Origin != "" {
		origin, originRoot = cfg.Origin, cfg.OriginRoot
	} else if intercepts(cfg.Targets) {
		// Make the per-host RSA key now, not inside the first handshake a
		// test has put a timeout on.
		if _, err := f.key(leaf.DNSNames[0]); err != nil {
			return nil, err
		}
	}
	l.MiddleboxAddr, err = l.startMiddlebox("127.0.0.1", origin, cfg.Targets, f, originRoot)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func listen(ip string) (net.Listener, error) { return net.Listen("tcp", net.JoinHostPort(ip, "0")) }

// servers runs the lab's listeners and ends them all on close.
type servers struct {
	ctx    context.Context
	cancel context.CancelFunc
	http   []*http.Server
	mbs    []*middlebox
	wg     sync.WaitGroup
}

func newServers() *servers {
	ctx, cancel := context.WithCancel(context.Background())
	return &servers{ctx: ctx, cancel: cancel}
}

// serve runs an HTTP server on ln until close.
func (s *servers) serve(ln net.Listener, srv *http.Server) {
	srv.ReadHeaderTimeout = 10 * time.Second
	s.http = append(s.http, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		srv.Serve(ln)
	}()
}

// serveTLS runs an HTTPS origin on ip with the certificate and returns its
// address. Each response names the origin, so a test can tell it reached it.
func (s *servers) serveTLS(ip string, cert tls.Certificate) (string, error) {
	ln, err := listen(ip)
	if err != nil {
		return "", err
	}
	name := cert.Leaf.DNSNames[0]
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from the lab origin of %s (you asked for %s)\n", name, r.Host)
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
	}
	s.serve(tls.NewListener(ln, srv.TLSConfig), srv)
	return ln.Addr().String(), nil
}

// startMiddlebox puts a middlebox on ip in front of origin.
func (s *servers) startMiddlebox(ip, origin string, targets map[string]Action, f *forger, originRoot *x509.Certificate) (string, error) {
	ln, err := listen(ip)
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	pool.AddCert(originRoot)
	mb := &middlebox{
		ln: ln, origin: origin, targets: targets, forger: f,
		originRoots: pool, ctx: s.ctx, conns: map[net.Conn]bool{},
	}
	s.mbs = append(s.mbs, mb)
	mb.wg.Add(1)
	go mb.serve()
	return ln.Addr().String(), nil
}

// close stops every server and waits for their goroutines.
func (s *servers) close() error {
	s.cancel()
	for _, mb := range s.mbs {
		mb.close()
	}
	var errs []error
	for _, srv := range s.http {
		if err := srv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// PublicPool returns a pool with the lab public root.
func (l *Lab) PublicPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(l.PublicRoot)
	return p
}

// Close stops every server and waits for their goroutines.
func (l *Lab) Close() error { return l.servers.close() }

// WriteFiles writes the lab's roots as PEM into dir: public-root.pem (to pass
// as --roots) and national-root.pem (to pass as --blocklist).
func (l *Lab) WriteFiles(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "public-root.pem"), PEM(l.PublicRoot), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "national-root.pem"), PEM(l.NationalRoot), 0o644)
}

func intercepts(targets map[string]Action) bool {
	for _, a := range targets {
		if a == Intercept {
			return true
		}
	}
	return false
}
