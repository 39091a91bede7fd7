package guard

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"

	"github.com/mitmguard/mitmguard/blocklist"
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
	seen := map[[32]byte]bool{}
	found := false
	add := func(data []byte) {
		for len(data) > 0 {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				return
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil || block.Type != "CERTIFICATE" {
				continue
			}
			sum := sha256.Sum256(c.Raw)
			if seen[sum] {
				continue
			}
			seen[sum] = true
			if e := list.Lookup(sha256.Sum256(c.RawSubjectPublicKeyInfo)); e != nil {
				removed = append(removed, e)
				continue
			}
			pool.AddCert(c)
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
