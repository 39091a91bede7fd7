package truststore

import (
	"errors"
	"fmt"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/rootfs"
	"github.com/mitmguard/mitmguard/winstore"
)

// Kind names a kind of store.
type Kind string

// The store kinds.
const (
	DebianBundle    Kind = "debian-bundle"
	DebianHashedDir Kind = "debian-hashed-dir"
	DebianLocal     Kind = "debian-local"
	DebianShare     Kind = "debian-share"
	P11KitAnchors   Kind = "p11kit-anchors"
	P11KitBlocklist Kind = "p11kit-blocklist"
	NSS             Kind = "nss"
	Java            Kind = "java"
	Extra           Kind = "extra"
)

// Trust is what a store says about a certificate as a TLS server root.
type Trust string

// The trust states.
const (
	Trusted    Trust = "trusted"    // trusted to issue server certificates
	Distrusted Trust = "distrusted" // explicitly refused
	NoTrust    Trust = "no-trust"   // present, but not trusted as a root (NSS intermediates, unselected Debian files)
)

// Entry is one certificate in a store.
type Entry struct {
	Cert  *chain.Cert
	Trust Trust
	// File is the device path of the file that holds the certificate (for
	// a database or keystore, the database file).
	File string
	// Label is the NSS nickname or Java alias, when the store has one.
	Label string
}

// Store is one store found on the device.
type Store struct {
	Kind Kind
	// Path is the store's path on the device (without the audit root).
	Path string
	// Owner says whose it is: "system", "user root", "Firefox profile x".
	Owner    string
	Entries  []Entry
	Problems []Problem
	// windows is the Windows store this one was made from (nil for the
	// others), kept so that distrust plans on what the audit read.
	windows *winstore.Store
}

// Problem is something in a store that could not be read. It does not stop
// the audit of the rest.
type Problem struct {
	Path string // device path
	Err  error
}

func (p Problem) Error() string { return fmt.Sprintf("%s: %v", p.Path, p.Err) }

func (s *Store) problem(path string, err error) {
	var pe *rootfs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err // the path is said once
	}
	s.Problems = append(s.Problems, Problem{Path: path, Err: err})
}
