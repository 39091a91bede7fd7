// Package winstoretest builds Windows volumes for tests: a folder holding
// Windows/System32/config/SOFTWARE and Users/<name>/NTUSER.DAT hives written
// by the real hivexsh (Debian's libhivex-bin), with certificates placed in
// the stores as Windows serializes them.
package winstoretest

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

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
