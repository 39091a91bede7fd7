//go:build windows

package winstore

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"os/user"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// maxLiveCerts bounds the certificates read from one live store.
const maxLiveCerts = 100000

const encoding = windows.X509_ASN_ENCODING | windows.PKCS_7_ASN_ENCODING

// ReadLive reads the certificate stores of the running Windows through
// CryptoAPI: the local machine's (which include what Group Policy and
// enterprise enrolment pushed) and the current user's, then marks the
// distrusted certificates. A store that cannot be opened is a Problem.
func ReadLive(ctx context.Context) ([]*Store, error) {
	name := "current user"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	var out []*Store
	for _, loc := range []Location{Machine, User} {
		for _, n := range []string{"Root", AuthRoot, CA, Disallowed} {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s := &Store{Name: n, Location: loc, Key: CertDrive(loc, n)}
			if loc == User {
				s.User = name
			}
			if err := readLiveStore(s); err != nil {
				s.Problems = append(s.Problems, Problem{Path: s.Key, Err: err})
			}
			out = append(out, s)
		}
	}
	MarkDistrusted(out)
	return out, nil
}

func openStore(loc Location, name string, flags uint32) (windows.Handle, error) {
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return 0, err
	}
	where := uint32(windows.CERT_SYSTEM_STORE_LOCAL_MACHINE)
	if loc == User {
		where = windows.CERT_SYSTEM_STORE_CURRENT_USER
	}
	h, err := windows.CertOpenStore(windows.CERT_STORE_PROV_SYSTEM, 0, 0, where|flags, uintptr(unsafe.Pointer(n)))
	if err != nil {
		return 0, fmt.Errorf("winstore: opening %s: %w", CertDrive(loc, name), err)
	}
	return h, nil
}

func readLiveStore(s *Store) error {
	h, err := openStore(s.Location, s.Name, windows.CERT_STORE_READONLY_FLAG|windows.CERT_STORE_OPEN_EXISTING_FLAG)
	if err != nil {
		return err
	}
	defer windows.CertCloseStore(h, 0)
	var c *windows.CertContext
	for n := 0; ; n++ {
		c, err = windows.CertEnumCertificatesInStore(h, c)
		if c == nil {
			if notFound(err) {
				return nil // the end of the store
			}
			return fmt.Errorf("winstore: reading %s: %w", s.Key, err)
		}
		if n == maxLiveCerts {
			windows.CertFreeCertificateContext(c)
			return fmt.Errorf("winstore: more than %d certificates in %s", maxLiveCerts, s.Key)
		}
		der := append([]byte(nil), unsafe.Slice(c.EncodedCert, c.Length)...)
		e, err := entryFromDER(der)
		if err != nil {
			s.Problems = append(s.Problems, Problem{Path: s.Key, Err: err})
			continue
		}
		s.Entries = append(s.Entries, e)
	}
}

// Apply carries out the plan's steps through CryptoAPI, in order, and
// returns the steps done: when it fails part way, Undo of a Plan holding
// those steps puts the stores back. Adding a certificate already there and
// removing one already gone succeed.
func Apply(ctx context.Context, p *Plan) ([]Step, error) {
	var done []Step
	for _, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		store, ok := CanonicalStore(s.Store)
		if !ok {
			return done, fmt.Errorf("winstore: unknown store %q", s.Store)
		}
		if err := applyStep(s, store); err != nil {
			return done, err
		}
		done = append(done, s)
	}
	return done, nil
}

func applyStep(s Step, store string) error {
	h, err := openStore(s.Location, store, 0)
	if err != nil {
		return err
	}
	defer windows.CertCloseStore(h, 0)
	der := s.Cert.DER
	if len(der) == 0 {
		return errors.New("winstore: empty certificate")
	}
	switch s.Action {
	case Add:
		c, err := windows.CertCreateCertificateContext(encoding, &der[0], uint32(len(der)))
		if err != nil {
			return fmt.Errorf("winstore: %s: %w", s.Thumbprint(), err)
		}
		defer windows.CertFreeCertificateContext(c)
		if err := windows.CertAddCertificateContextToStore(h, c, windows.CERT_STORE_ADD_USE_EXISTING, nil); err != nil {
			return fmt.Errorf("winstore: adding %s to %s: %w", s.Thumbprint(), CertDrive(s.Location, store), err)
		}
	case Remove:
		sum := sha1.Sum(der)
		blob := windows.CryptHashBlob{Size: uint32(len(sum)), Data: &sum[0]}
		c, err := windows.CertFindCertificateInStore(h, encoding, 0, windows.CERT_FIND_SHA1_HASH, unsafe.Pointer(&blob), nil)
		if c == nil {
			if notFound(err) {
				return nil // already gone
			}
			return fmt.Errorf("winstore: finding %s in %s: %w", s.Thumbprint(), CertDrive(s.Location, store), err)
		}
		// CertDeleteCertificateFromStore frees the context, even on failure.
		if err := windows.CertDeleteCertificateFromStore(c); err != nil {
			return fmt.Errorf("winstore: removing %s from %s: %w", s.Thumbprint(), CertDrive(s.Location, store), err)
		}
	default:
		return fmt.Errorf("winstore: unknown action %q", s.Action)
	}
	return nil
}

// notFound reports CryptoAPI's "no (more) such certificate".
func notFound(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.Errno(windows.CRYPT_E_NOT_FOUND) || errno == windows.ERROR_NO_MORE_FILES)
}
