package winstore

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/regf"
)

// Location says whose store it is and who manages it.
type Location string

// The store locations. Group Policy and enterprise stores are pushed by a
// domain administrator; they apply to the whole machine (or user) like the
// plain ones.
const (
	Machine       Location = "machine"              // HKLM\SOFTWARE\Microsoft\SystemCertificates
	MachinePolicy Location = "machine-group-policy" // HKLM\SOFTWARE\Policies\Microsoft\SystemCertificates
	Enterprise    Location = "machine-enterprise"   // HKLM\SOFTWARE\Microsoft\EnterpriseCertificates
	User          Location = "user"                 // HKCU\Software\Microsoft\SystemCertificates
	UserPolicy    Location = "user-group-policy"    // HKCU\Software\Policies\Microsoft\SystemCertificates
)

// Store names as Windows spells them in the registry.
const (
	Root       = "ROOT"
	AuthRoot   = "AuthRoot"
	CA         = "CA"
	Disallowed = "Disallowed"
)

// Store is one certificate store read from a hive or live.
type Store struct {
	Name     string // Root, AuthRoot, CA or Disallowed, as spelled in the hive
	Location Location
	// User is the profile the store belongs to (a folder under Users, or
	// the current user live); empty for machine stores.
	User string
	// Hive is the hive file's path on the volume ("" live); Key is the
	// store's key inside it.
	Hive, Key string
	Entries   []Entry
	Problems  []Problem
}

// IsRoot reports whether the store's certificates are trusted as roots.
func (s *Store) IsRoot() bool {
	return strings.EqualFold(s.Name, Root) || strings.EqualFold(s.Name, AuthRoot)
}

// IsDisallowed reports whether the store lists distrusted certificates.
func (s *Store) IsDisallowed() bool { return strings.EqualFold(s.Name, Disallowed) }

// Entry is one certificate of a store.
type Entry struct {
	Cert *chain.Cert
	// Thumbprint is the SHA-1 of the DER in upper-case hex, as Windows
	// names the certificate's key and as the PowerShell Cert: drive shows it.
	Thumbprint string
	// Distrusted is set when the certificate is in a Disallowed store that
	// applies to this store (see MarkDistrusted), or this is that store.
	Distrusted bool
}

// Problem is a part of a store or hive that could not be read. It does not
// stop reading the rest.
type Problem struct {
	Path string // hive path, and key when known
	Err  error
}

func (p Problem) Error() string { return p.Path + ": " + p.Err.Error() }

// storeKey is where a hive keeps a group of stores.
type storeKey struct {
	path     string
	location Location
	names    []string
}

var machineKeys = []storeKey{
	{`Microsoft\SystemCertificates`, Machine, []string{Root, AuthRoot, CA, Disallowed}},
	{`Policies\Microsoft\SystemCertificates`, MachinePolicy, []string{Root, CA, Disallowed}},
	{`Microsoft\EnterpriseCertificates`, Enterprise, []string{Root, CA, Disallowed}},
}

var userKeys = []storeKey{
	{`Software\Microsoft\SystemCertificates`, User, []string{Root, CA, Disallowed}},
	{`Software\Policies\Microsoft\SystemCertificates`, UserPolicy, []string{Root, CA, Disallowed}},
}

// ReadSoftware reads the machine stores of a SOFTWARE hive; hivePath names
// the hive in Store.Hive and in problems. Stores absent from the hive are
// left out.
func ReadSoftware(h *regf.Hive, hivePath string) []*Store {
	return readStores(h, hivePath, "", machineKeys)
}

// ReadNTUser reads the stores of a user's NTUSER.DAT hive.
func ReadNTUser(h *regf.Hive, hivePath, user string) []*Store {
	return readStores(h, hivePath, user, userKeys)
}

func readStores(h *regf.Hive, hivePath, user string, keys []storeKey) []*Store {
	var out []*Store
	for _, sk := range keys {
		for _, name := range sk.names {
			path := sk.path + `\` + name
			s := &Store{Name: name, Location: sk.location, User: user, Hive: hivePath, Key: path}
			k, err := h.Key(path)
			if err == nil {
				s.Name, s.Key = k.Name, sk.path+`\`+k.Name // as the hive spells it
				k, err = k.Subkey("Certificates")
			}
			switch {
			case errors.Is(err, regf.ErrNotFound):
				continue
			case err != nil:
				s.Problems = append(s.Problems, Problem{Path: hivePath + `:` + path, Err: err})
			default:
				readEntries(s, k)
			}
			out = append(out, s)
		}
	}
	return out
}

// readEntries reads each thumbprint key's Blob value.
func readEntries(s *Store, k *regf.Key) {
	subs, err := k.Subkeys()
	if err != nil {
		s.Problems = append(s.Problems, Problem{Path: s.Hive + `:` + s.Key, Err: err})
		return
	}
	for _, sub := range subs {
		where := s.Hive + `:` + s.Key + `\Certificates\` + sub.Name
		v, err := sub.Value("Blob")
		if err != nil {
			s.Problems = append(s.Problems, Problem{Path: where, Err: err})
			continue
		}
		e, err := entryFromBlob(v.Data)
		if err != nil {
			s.Problems = append(s.Problems, Problem{Path: where, Err: err})
			continue
		}
		if !strings.EqualFold(e.Thumbprint, sub.Name) {
			s.Problems = append(s.Problems, Problem{Path: where, Err: fmt.Errorf("winstore: key is named %s but holds the certificate with thumbprint %s", sub.Name, e.Thumbprint)})
		}
		s.Entries = append(s.Entries, e)
	}
}

func entryFromBlob(blob []byte) (Entry, error) {
	der, err := DecodeBlob(blob)
	if err != nil {
		return Entry{}, err
	}
	return entryFromDER(der)
}

func entryFromDER(der []byte) (Entry, error) {
	c, err := chain.NewCert(append([]byte(nil), der...))
	if err != nil {
		return Entry{}, err
	}
	return Entry{Cert: c, Thumbprint: Thumbprint(c.DER)}, nil
}

// Thumbprint is the SHA-1 of a certificate's DER in upper-case hex: how
// Windows names it in the registry and in the Cert: drive.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// MarkDistrusted sets Entry.Distrusted on every certificate that a
// Disallowed store applying to its store holds: a machine Disallowed store
// (any location) applies to every store, a user's only to that user's.
// The entries of Disallowed stores are marked too.
func MarkDistrusted(stores []*Store) {
	machine := map[chain.Hash]bool{}
	user := map[string]map[chain.Hash]bool{}
	for _, s := range stores {
		if !s.IsDisallowed() {
			continue
		}
		set := machine
		if s.User != "" {
			if user[s.User] == nil {
				user[s.User] = map[chain.Hash]bool{}
			}
			set = user[s.User]
		}
		for _, e := range s.Entries {
			set[e.Cert.SHA256] = true
		}
	}
	for _, s := range stores {
		for i := range s.Entries {
			h := s.Entries[i].Cert.SHA256
			if s.IsDisallowed() || machine[h] || (s.User != "" && user[s.User][h]) {
				s.Entries[i].Distrusted = true
			}
		}
	}
}
