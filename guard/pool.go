package guard

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
)

// Where Go's crypto/x509 looks for the system roots on Linux and the BSDs;
// SSL_CERT_FILE and SSL_CERT_DIR override them, as they do for Go.
var (
	systemFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	systemDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// SystemPool returns the system's trusted roots minus every root whose key is
// on the blocklist, and the entries it left out. It is for programs that
// want the device's store (with a company's private CA, say) but not the
// interception roots installed in it. The guard's own check still applies
// on top; this removes the roots before they can anchor anything.
func SystemPool(opts Options) (*x509.CertPool, []*blocklist.Entry, error) {
	list := opts.list()
	files, dirs := systemFiles, systemDirs
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		dirs = filepath.SplitList(d)
	}
	pool := x509.NewCertPool()
	var removed []*blocklist.Entry
	seen := map[chain.Hash]bool{}
	found := false
	add := func(data []byte) {
		for cert, err := range chain.PEMCertificates(data) {
			// As Go's own reader does, skip what crypto/x509 refuses and
			// OpenSSL TRUSTED CERTIFICATE blocks (their settings may reject).
			if err != nil || cert.X509 == nil || cert.TrustSettings != nil {
				continue
			}
			if seen[cert.SHA256] {
				continue
			}
			seen[cert.SHA256] = true
			if e := list.Lookup(cert.SPKI); e != nil {
				removed = append(removed, e)
				continue
			}
			pool.AddCert(cert.X509)
		}
	}
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			add(data)
			found = true
			break // Go, too, reads only the first bundle it finds
		}
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if data, err := os.ReadFile(filepath.Join(d, e.Name())); err == nil {
				add(data)
				found = true
			}
		}
	}
	if !found {
		return nil, nil, errors.New("guard: no system root store found")
	}
	return pool, removed, nil
}
