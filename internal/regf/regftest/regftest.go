// Package regftest builds registry hives for tests with the real tool,
// hivexsh from Debian's libhivex-bin, so the reader is tested on bytes a
// hive writer other than our own produced.
//
// hivexsh edits an existing hive but cannot create one, and libhivex-bin
// ships no template (the hivex source's images/minimal is not packaged), so
// Empty writes the smallest valid hive by hand: the 4096-byte base block and
// one 4096-byte hive bin holding the root key (nk), the security descriptor
// cell (sk) hivexsh copies to new keys, and a free cell for the rest.
package regftest

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/testtool"
)

// Empty returns a hive holding only its root key, named rootName.
func Empty(rootName string) []byte {
	le := binary.LittleEndian
	b := make([]byte, 8192)
	copy(b, "regf")
	le.PutUint32(b[4:], 1)  // primary sequence
	le.PutUint32(b[8:], 1)  // secondary sequence: equal, so clean
	le.PutUint32(b[20:], 1) // major version
	le.PutUint32(b[24:], 5) // minor version (Windows XP and later use 3 or 5)
	le.PutUint32(b[28:], 0) // primary file
	le.PutUint32(b[32:], 1) // direct memory load
	const nkOff = 0x20
	le.PutUint32(b[36:], nkOff) // root cell, relative to the first bin
	le.PutUint32(b[40:], 4096)  // hive bins size
	le.PutUint32(b[44:], 1)     // clustering factor
	var sum uint32
	for i := 0; i < 508; i += 4 {
		sum ^= le.Uint32(b[i:])
	}
	le.PutUint32(b[508:], sum)

	bin := b[4096:]
	copy(bin, "hbin")
	le.PutUint32(bin[4:], 0)
	le.PutUint32(bin[8:], 4096)

	// Root key.
	nkLen := (4 + 76 + len(rootName) + 7) &^ 7
	nk := bin[nkOff:]
	le.PutUint32(nk, uint32(-int32(nkLen)))
	nk = nk[4:]
	copy(nk, "nk")
	le.PutUint16(nk[2:], 0x2c) // hive entry | no delete | compressed name
	le.PutUint32(nk[16:], 0)   // parent
	le.PutUint32(nk[28:], 0xffffffff)
	le.PutUint32(nk[32:], 0xffffffff)
	le.PutUint32(nk[40:], 0xffffffff)
	skOff := nkOff + nkLen
	le.PutUint32(nk[44:], uint32(skOff))
	le.PutUint32(nk[48:], 0xffffffff)
	le.PutUint16(nk[72:], uint16(len(rootName)))
	copy(nk[76:], rootName)

	// Security descriptor: self-relative, no owner, group or ACLs.
	const sdLen = 20
	skLen := (4 + 20 + sdLen + 7) &^ 7
	sk := bin[skOff:]
	le.PutUint32(sk, uint32(-int32(skLen)))
	sk = sk[4:]
	copy(sk, "sk")
	le.PutUint32(sk[4:], uint32(skOff)) // flink: itself
	le.PutUint32(sk[8:], uint32(skOff)) // blink: itself
	le.PutUint32(sk[12:], 1)            // reference count
	le.PutUint32(sk[16:], sdLen)
	sk[20] = 1                    // revision
	le.PutUint16(sk[22:], 0x8000) // SE_SELF_RELATIVE
	freeOff := skOff + skLen
	le.PutUint32(bin[freeOff:], uint32(4096-freeOff)) // free cell: positive size
	return b
}

// Hive writes an empty hive, runs the hivexsh script on it (the commands
// of hivexsh(1): add, cd, setval ...; a final commit is appended) and
// returns the hive file's path. The test is skipped (failed under CI) when
// hivexsh is missing.
func Hive(t testing.TB, rootName, script string) string {
	t.Helper()
	hivexsh := testtool.Need(t, "hivexsh", "libhivex-bin")
	path := filepath.Join(t.TempDir(), rootName)
	if err := os.WriteFile(path, Empty(rootName), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(hivexsh, "-w", path)
	cmd.Stdin = strings.NewReader(script + "\ncommit\n")
	if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "hivexsh:") {
		if len(script) > 2000 {
			script = script[:2000] + "..."
		}
		t.Fatalf("hivexsh: %v\n%s\nscript:\n%s", err, out, script)
	}
	return path
}

// Binary formats data as a hivexsh setval value of type REG_BINARY. hivexsh
// reads lines of about 8 kB at most, so data is limited to about 2.5 kB.
func Binary(data []byte) string {
	h := hex.EncodeToString(data)
	var sb strings.Builder
	sb.WriteString("hex:3:")
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// LoopKey returns a copy of hive in which the first subkey of every key
// named name (ASCII, compressed) is that key itself: a cycle of cell
// offsets, as a hostile hive may hold. The test fails when no such key
// with subkeys is found.
func LoopKey(t testing.TB, hive []byte, name string) []byte {
	t.Helper()
	le := binary.LittleEndian
	out := append([]byte(nil), hive...)
	const base = 4096 // cell offsets are relative to the first hive bin
	n := 0
	for off := base; off+4+80 <= len(out); off += 8 {
		nk := out[off+4:]
		if string(nk[:2]) != "nk" || int(le.Uint16(nk[72:])) != len(name) || len(nk) < 76+len(name) || string(nk[76:76+len(name)]) != name {
			continue
		}
		list := le.Uint32(nk[28:])
		if le.Uint32(nk[20:]) == 0 || int64(list)+base+12 > int64(len(out)) {
			continue
		}
		le.PutUint32(out[base+int(list)+8:], uint32(off-base)) // first entry of the lf/lh list
		n++
	}
	if n == 0 {
		t.Fatalf("no key %q with subkeys in the hive", name)
	}
	return out
}
