// Package winstoretest builds Windows volumes for tests: a folder holding
// Windows/System32/config/SOFTWARE and Users/<name>/NTUSER.DAT hives written
// by the real hivexsh (Debian's libhivex-bin), with certificates placed in
// the stores as Windows serializes them.
package winstoretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/regf/regftest"
)

// Placement puts a certificate in the store whose key (below the hive's
// root) is Key, e.g. `Microsoft\SystemCertificates\ROOT`.
type Placement struct {
	Key string
	DER []byte
}

// Spec describes a volume: the machine SOFTWARE hive's placements and each
// user's NTUSER.DAT placements.
type Spec struct {
	Machine []Placement
	Users   map[string][]Placement
}

// Volume writes the volume under a new temporary folder and returns it.
// Folder names are written in mixed case, as a mount may show them.
func Volume(t testing.TB, spec Spec) string {
	t.Helper()
	dir := t.TempDir()
	write(t, regftest.Hive(t, "SOFTWARE", Script(spec.Machine)), filepath.Join(dir, "Windows", "system32", "CONFIG", "SOFTWARE"))
	names := make([]string, 0, len(spec.Users))
	for u := range spec.Users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		write(t, regftest.Hive(t, "NTUSER.DAT", Script(spec.Users[u])), filepath.Join(dir, "Users", u, "ntuser.dat"))
	}
	return dir
}

func write(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Script is the hivexsh script that places the certificates: each under
// <Key>\Certificates\<thumbprint> in a Blob value.
func Script(ps []Placement) string {
	var s strings.Builder
	made := map[string]bool{}
	for _, p := range ps {
		sum := sha1.Sum(p.DER)
		thumb := strings.ToUpper(fmt.Sprintf("%x", sum))
		path := ""
		s.WriteString("cd \\\n")
		for _, n := range append(strings.Split(p.Key, `\`), "Certificates", thumb) {
			path += `\` + strings.ToLower(n)
			if !made[path] {
				fmt.Fprintf(&s, "add %s\n", n)
				made[path] = true
			}
			fmt.Fprintf(&s, "cd %s\n", n)
		}
		fmt.Fprintf(&s, "setval 1\nBlob\n%s\n", regftest.Binary(Blob(p.DER)))
	}
	return s.String()
}

// Blob serializes a certificate as Windows does in a store's Blob value:
// property records (ID, reserved 1, length, data) with the SHA-1 and MD5
// hash properties before the certificate itself (CERT_CERT_PROP_ID, 32).
func Blob(der []byte) []byte {
	sha := sha1.Sum(der)
	md := md5.Sum(der)
	var b []byte
	for _, p := range []struct {
		id   uint32
		data []byte
	}{{3, sha[:]}, {4, md[:]}, {32, der}} {
		b = binary.LittleEndian.AppendUint32(b, p.id)
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.data)))
		b = append(b, p.data...)
	}
	return b
}

// The store keys of the volume.
const (
	MachineRoot       = `Microsoft\SystemCertificates\ROOT`
	MachineDisallowed = `Microsoft\SystemCertificates\Disallowed`
	PolicyRoot        = `Policies\Microsoft\SystemCertificates\Root`
	UserRoot          = `Software\Microsoft\SystemCertificates\Root`
)

// Kazakh is a Windows volume as a Kazakh user's PC may be after 2019-2024:
// Qaznet (kz-2019-qaznet) in the machine's ROOT, ISCA (kz-2021-isca) in
// user Aigerim's Root, a corporate root pushed by Group Policy, and the ISCA
// CA (kz-2020-isca-ca) in the machine's ROOT and already in Disallowed.
type Kazakh struct {
	Dir                        string
	Qaznet, ISCA, ISCACA, Corp []byte
}

// NewKazakh writes the Kazakh volume with hivexsh.
func NewKazakh(t testing.TB) Kazakh {
	t.Helper()
	k := Kazakh{Qaznet: blocked(t, "kz-2019-qaznet"), ISCA: blocked(t, "kz-2021-isca"), ISCACA: blocked(t, "kz-2020-isca-ca"), Corp: PrivateRoot(t, "Example Corp Root")}
	k.Dir = Volume(t, Spec{
		Machine: []Placement{
			{Key: MachineRoot, DER: k.Qaznet},
			{Key: MachineRoot, DER: k.ISCACA},
			{Key: MachineDisallowed, DER: k.ISCACA},
			{Key: PolicyRoot, DER: k.Corp},
		},
		Users: map[string][]Placement{"Aigerim": {{Key: UserRoot, DER: k.ISCA}}},
	})
	return k
}

func blocked(t testing.TB, id string) []byte {
	t.Helper()
	e := blocklist.Embedded().ByID(id)
	if e == nil {
		t.Fatalf("no blocklist entry %s", id)
	}
	return e.Cert().DER
}

// PrivateRoot is a new self-signed CA such as a company pushes by Group
// Policy: on no list and outside the public root program.
func PrivateRoot(t testing.TB, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(7),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	d, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
