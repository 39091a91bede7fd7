package truststore

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/mitmguard/mitmguard/chain"
)

// DefaultJavaPassword is the password every JDK ships cacerts with.
const DefaultJavaPassword = "changeit"

// javaLocations are where Java keeps its system trust store.
var javaLocations = []string{
	"/etc/ssl/certs/java/cacerts",
	"/etc/pki/java/cacerts",
	"/etc/pki/ca-trust/extracted/java/cacerts",
	"/usr/lib/jvm/*/lib/security/cacerts",
	"/usr/lib/jvm/*/jre/lib/security/cacerts",
	"/opt/*/lib/security/cacerts",
}

func readJava(r rootFS) []*Store {
	var stores []*Store
	seen := map[string]bool{}
	for _, pattern := range javaLocations {
		for _, p := range r.glob(pattern) {
			real, err := r.Resolve(p)
			if err == nil && seen[real] {
				continue // the JDK's cacerts is usually a link to the system one
			}
			seen[real] = true
			s := &Store{Kind: Java, Path: p, Owner: "system"}
			if err != nil {
				s.problem(p, err)
				stores = append(stores, s)
				continue
			}
			data, err := r.readFile(p)
			if err != nil {
				s.problem(p, err)
			} else if entries, err := ParseKeystore(data, DefaultJavaPassword); err != nil {
				s.problem(p, err)
			} else {
				for _, e := range entries {
					s.Entries = append(s.Entries, Entry{Cert: e.Cert, Trust: Trusted, File: p, Label: e.Alias})
				}
			}
			stores = append(stores, s)
		}
	}
	return stores
}

// KeystoreEntry is one trusted certificate of a Java keystore.
type KeystoreEntry struct {
	Alias string
	Cert  *chain.Cert
}

// ParseKeystore reads the trusted certificates of a Java keystore, JKS or
// PKCS#12. For JKS the integrity digest is checked with the password.
func ParseKeystore(data []byte, password string) ([]KeystoreEntry, error) {
	if len(data) >= 4 && binary.BigEndian.Uint32(data) == jksMagic {
		return parseJKS(data, password)
	}
	certs, err := pkcs12.DecodeTrustStore(data, password)
	if err != nil {
		return nil, fmt.Errorf("neither a JKS nor a readable PKCS#12 keystore: %w", err)
	}
	var out []KeystoreEntry
	for i, x := range certs {
		out = append(out, KeystoreEntry{Alias: fmt.Sprintf("#%d %s", i+1, x.Subject.CommonName), Cert: chain.FromX509(x)})
	}
	return out, nil
}

const (
	jksMagic         = 0xfeedfeed
	jksTagPrivateKey = 1
	jksTagTrusted    = 2
	jksMaxEntries    = 100000
)

// jks is a bounds-checked reader over a keystore in memory: every length in
// the file is checked against what is left before anything is allocated.
type jks struct {
	b   []byte
	off int
	err error
}

func (j *jks) next(n int) []byte {
	if j.err != nil {
		return nil
	}
	if n < 0 || n > len(j.b)-j.off {
		j.err = fmt.Errorf("truncated at byte %d (wanted %d more)", j.off, n)
		return nil
	}
	out := j.b[j.off : j.off+n]
	j.off += n
	return out
}

func (j *jks) u16() int {
	b := j.next(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func (j *jks) u32() int {
	b := j.next(4)
	if b == nil {
		return 0
	}
	v := binary.BigEndian.Uint32(b)
	if v > 1<<30 {
		j.err = fmt.Errorf("implausible length %d at byte %d", v, j.off-4)
		return 0
	}
	return int(v)
}

func (j *jks) utf() string { return string(j.next(j.u16())) }

// parseJKS reads the format Java's sun.security.provider.JavaKeyStore writes:
// magic, version (1 or 2), count, entries, then a SHA-1 digest over the
// password (UTF-16BE), "Mighty Aphrodite" and everything before it.
func parseJKS(data []byte, password string) ([]KeystoreEntry, error) {
	j := &jks{b: data}
	j.next(4)
	version := j.u32()
	if j.err == nil && version != 1 && version != 2 {
		return nil, fmt.Errorf("jks: unknown version %d", version)
	}
	count := j.u32()
	if count > jksMaxEntries {
		return nil, fmt.Errorf("jks: %d entries", count)
	}
	var out []KeystoreEntry
	for i := 0; i < count && j.err == nil; i++ {
		tag := j.u32()
		alias := j.utf()
		j.next(8) // creation time
		switch tag {
		case jksTagTrusted:
			if version == 2 {
				j.utf() // certificate type, "X.509"
			}
			der := j.next(j.u32())
			if j.err != nil {
				break
			}
			c, err := chain.NewCert(der)
			if err != nil {
				return out, fmt.Errorf("jks: alias %q: %v", alias, err)
			}
			out = append(out, KeystoreEntry{Alias: alias, Cert: c})
		case jksTagPrivateKey:
			j.next(j.u32()) // the encrypted key
			n := j.u32()
			for k := 0; k < n && j.err == nil; k++ {
				if version == 2 {
					j.utf()
				}
				j.next(j.u32())
			}
		default:
			return out, fmt.Errorf("jks: entry %d has unknown tag %d", i+1, tag)
		}
	}
	if j.err != nil {
		return out, fmt.Errorf("jks: %w", j.err)
	}
	body := data[:j.off]
	digest := j.next(20)
	if j.err != nil {
		return out, errors.New("jks: truncated before its integrity digest")
	}
	if !jksDigestOK(body, digest, password) {
		return out, errors.New("jks: integrity digest does not match (corrupted, or not the default password)")
	}
	return out, nil
}

func jksDigestOK(body, digest []byte, password string) bool {
	h := sha1.New()
	for _, r := range utf16.Encode([]rune(password)) {
		h.Write([]byte{byte(r >> 8), byte(r)})
	}
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(body)
	return string(h.Sum(nil)) == string(digest)
}
