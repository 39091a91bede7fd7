package check

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
)

// maxAIABytes bounds an issuer download; real ones are under 3 KB.
const maxAIABytes = 64 << 10

// maxAIARedirects bounds the redirects an issuer download follows.
const maxAIARedirects = 3

// aiaFetcher downloads the issuer certificate a chain names in its AIA
// extension. The URL is chosen by whoever made the certificate, possibly the
// forger on the path, so the download is confined: http or https, port 80
// or 443, never to a loopback, private, link-local or otherwise special
// address unless the target itself is at one (a lab or an intranet), and
// within the check's one deadline (the caller's context).
type aiaFetcher struct {
	client *http.Client
	// private allows special addresses: the target itself is at one.
	private bool
	// anyPort allows any port on a loopback address: only tests set it, for
	// their AIA server on an ephemeral port. It is not an option users have.
	anyPort bool
}

// AIARefusedError is an AIA URL the fetcher would not follow.
type AIARefusedError struct {
	URL, Reason string
}

func (e *AIARefusedError) Error() string {
	return fmt.Sprintf("AIA URL %q refused: %s", e.URL, e.Reason)
}

// AIATooLargeError is an issuer download longer than the fetcher reads:
// not an issuer certificate, so it is not parsed (a cut one would only fail
// to parse, with a message that hides why).
type AIATooLargeError struct {
	URL   string // where the body came from (the last URL, after redirects)
	Limit int64  // the most bytes read, maxAIABytes
}

func (e *AIATooLargeError) Error() string {
	return fmt.Sprintf("AIA %s: the response is longer than %d bytes, too long for an issuer certificate; not read", e.URL, e.Limit)
}

func newAIAFetcher(targetIP netip.Addr, anyPort bool) *aiaFetcher {
	f := &aiaFetcher{private: targetIP.IsValid() && special(targetIP), anyPort: anyPort}
	dialer := &net.Dialer{Control: f.control}
	f.client = &http.Client{
		// No proxy from the environment: the address checks are made on the
		// address dialed, which must be the issuer's own.
		Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true, MaxResponseHeaderBytes: 16 << 10},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxAIARedirects { // via holds the first request too
				return errors.New("too many redirects")
			}
			return f.checkURL(req.URL)
		},
	}
	return f
}

// fetch downloads and parses one issuer certificate (DER, or PEM as some
// CAs serve it).
func (f *aiaFetcher) fetch(ctx context.Context, raw string) (*x509.Certificate, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &AIARefusedError{URL: raw, Reason: "not a URL"}
	}
	if err := f.checkURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("AIA %s: %s", raw, resp.Status)
	}
	if resp.ContentLength > maxAIABytes {
		return nil, &AIATooLargeError{URL: resp.Request.URL.String(), Limit: maxAIABytes}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAIABytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxAIABytes {
		return nil, &AIATooLargeError{URL: resp.Request.URL.String(), Limit: maxAIABytes}
	}
	if b, _ := pem.Decode(body); b != nil {
		body = b.Bytes
	}
	return x509.ParseCertificate(body)
}

// checkURL refuses a URL by its scheme, port and, when the host is an
// address, by its address; names are checked again on the address dialed.
func (f *aiaFetcher) checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return &AIARefusedError{URL: u.String(), Reason: "not http or https"}
	}
	if u.User != nil {
		return &AIARefusedError{URL: u.String(), Reason: "carries credentials"}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ip, _ := netip.ParseAddr(u.Hostname())
	if reason := f.refuse(ip, port); reason != "" {
		return &AIARefusedError{URL: u.String(), Reason: reason}
	}
	return nil
}

// control checks the address actually dialed, after name resolution and
// for every redirect.
func (f *aiaFetcher) control(_, address string, _ syscall.RawConn) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if reason := f.refuse(ip, port); reason != "" {
		return &AIARefusedError{URL: address, Reason: reason}
	}
	return nil
}

// refuse says why an address and port may not be fetched from, or "". An
// invalid ip (a name not yet resolved) is judged on its port only.
func (f *aiaFetcher) refuse(ip netip.Addr, port string) string {
	ip = ip.Unmap()
	if port != "80" && port != "443" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || !f.anyPort || !(ip.IsValid() && ip.IsLoopback()) {
			return "port " + port + " (only 80 and 443 are followed)"
		}
	}
	if ip.IsValid() && special(ip) && !f.private {
		return "address " + ip.String() + " is loopback, private or reserved, and the target is not"
	}
	return ""
}

// special reports an address that is not on the public Internet: where an
// AIA URL must not send a check unless the target itself is there.
func special(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() ||
		cgnat.Contains(ip) || benchmarking.Contains(ip) || ip == netip.IPv4Unspecified()
}

var (
	cgnat        = netip.MustParsePrefix("100.64.0.0/10")
	benchmarking = netip.MustParsePrefix("198.18.0.0/15")
)
