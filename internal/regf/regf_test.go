package regf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/regf/regftest"
)

func openBytes(t testing.TB, b []byte) *Hive {
	t.Helper()
	h, err := Open(bytes.NewReader(b), int64(len(b)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleScript makes Software\Microsoft\SystemCertificates\ROOT\Certificates
// with two thumbprint keys, a big value, and a key with many subkeys.
func sampleScript(big []byte) string {
	var s strings.Builder
	s.WriteString("add Microsoft\ncd Microsoft\nadd SystemCertificates\ncd SystemCertificates\n")
	s.WriteString("add ROOT\ncd ROOT\nadd Certificates\ncd Certificates\n")
	s.WriteString("add AAAA\nadd BBBB\ncd AAAA\nsetval 2\nBlob\nhex:3:01,02,03\nCount\ndword:0x00000007\n")
	s.WriteString("cd ..\\BBBB\nsetval 1\nBlob\n" + regftest.Binary(big) + "\n")
	s.WriteString("cd \\\nadd Many\ncd Many\n")
	for i := range 300 {
		fmt.Fprintf(&s, "add k%03d\n", i)
	}
	return s.String()
}

func bigValue() []byte {
	big := make([]byte, 2500) // hivexsh reads lines of at most ~8 kB
	for i := range big {
		big[i] = byte(i * 7)
	}
	return big
}

func TestReadHivexHive(t *testing.T) {
	big := bigValue()
	h := openBytes(t, readFile(t, regftest.Hive(t, "SOFTWARE", sampleScript(big))))
	root, err := h.Root()
	if err != nil || root.Name != "SOFTWARE" {
		t.Fatalf("root %v %v", root, err)
	}
	// Case-insensitive path, with and without leading separator.
	k, err := h.Key(`\microsoft\SYSTEMCERTIFICATES\root\certificates`)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := k.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range subs {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "AAAA,BBBB" {
		t.Fatalf("subkeys %v", names)
	}
	a, err := k.Subkey("aaaa")
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Value("blob")
	if err != nil || v.Type != RegBinary || !bytes.Equal(v.Data, []byte{1, 2, 3}) {
		t.Fatalf("Blob %+v %v", v, err)
	}
	v, err = a.Value("Count")
	if err != nil || v.Type != RegDWORD || binary.LittleEndian.Uint32(v.Data) != 7 {
		t.Fatalf("Count %+v %v", v, err)
	}
	b, _ := k.Subkey("BBBB")
	v, err = b.Value("Blob")
	if err != nil || !bytes.Equal(v.Data, big) {
		t.Fatalf("big value: %d bytes, %v", len(v.Data), err)
	}
	many, err := h.Key("Many")
	if err != nil {
		t.Fatal(err)
	}
	subs, err = many.Subkeys()
	if err != nil || len(subs) != 300 || subs[299].Name != "k299" {
		t.Fatalf("Many: %d subkeys, %v", len(subs), err)
	}
	_, err = h.Key(`Microsoft\Nope`)
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) || nf.Path != `Microsoft\Nope` {
		t.Fatalf("missing key: %v", err)
	}
	n := 0
	if err := root.Walk(func(string, *Key) error { n++; return nil }); err != nil || n != 1+4+2+1+300 {
		t.Fatalf("walk: %d keys, %v", n, err)
	}
}

func TestMaxCellsLimit(t *testing.T) {
	b := readFile(t, regftest.Hive(t, "SOFTWARE", sampleScript(nil)))
	h, err := Open(bytes.NewReader(b), int64(len(b)), Limits{MaxCells: 50})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := h.Root()
	var le *LimitError
	if err := root.Walk(func(string, *Key) error { return nil }); !errors.As(err, &le) || le.What != "cells" {
		t.Fatalf("walk with 50 cells: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	b := readFile(t, regftest.Hive(t, "SOFTWARE", sampleScript(nil)))
	for _, n := range []int{0, 100, 4096, 4100, len(b) - 4096, len(b) - 1} {
		_, err := Open(bytes.NewReader(b[:n]), int64(n), Limits{})
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Errorf("hive cut to %d bytes: %v, want a CorruptError", n, err)
		}
	}
}

func TestOversize(t *testing.T) {
	// A sparse 1 GB file: refused from its size, before any read.
	path := filepath.Join(t.TempDir(), "SOFTWARE")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	_, err = Open(f, fi.Size(), Limits{})
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Size != 1<<30 {
		t.Fatalf("1 GB hive: %v", err)
	}
	if !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("unclear message: %v", err)
	}
}

// patch overwrites the uint32 at off (relative to the first bin).
func patch(b []byte, off uint32, v uint32) {
	binary.LittleEndian.PutUint32(b[baseBlock+int(off):], v)
}

func TestCyclicHive(t *testing.T) {
	orig := readFile(t, regftest.Hive(t, "SOFTWARE", "add A\ncd A\nadd B\ncd B\nadd C"))
	h := openBytes(t, orig)
	a, _ := h.Key("A")
	b, _ := h.Key(`A\B`)

	// B's subkey list now leads back to A: A\B\A\B... must stop.
	cyc := bytes.Clone(orig)
	patch(cyc, b.subList+4+4, a.off) // first entry of B's lf/lh list
	h = openBytes(t, cyc)
	var ce *CycleError
	if _, err := h.Key(`A\B\A\B\A`); !errors.As(err, &ce) {
		t.Fatalf("path through the loop: %v", err)
	}
	root, _ := h.Root()
	if err := root.Walk(func(string, *Key) error { return nil }); !errors.As(err, &ce) {
		t.Fatalf("walk through the loop: %v", err)
	}

	// A key listing itself as its subkey.
	self := bytes.Clone(orig)
	patch(self, a.subList+4+4, a.off)
	h = openBytes(t, self)
	a, _ = h.Key("A")
	if _, err := a.Subkeys(); !errors.As(err, &ce) {
		t.Fatalf("self loop: %v", err)
	}

	// A subkey offset outside every hive bin, and one not 8-aligned.
	for _, bad := range []uint32{0x7ffffff8, 0x10, 0x24} {
		out := bytes.Clone(orig)
		patch(out, a.subList+4+4, bad)
		h = openBytes(t, out)
		var cor *CorruptError
		if _, err := h.Key(`A\B`); !errors.As(err, &cor) {
			t.Fatalf("subkey at %#x: %v", bad, err)
		}
	}
}

func TestEmptyHive(t *testing.T) {
	h := openBytes(t, regftest.Empty("ROOT"))
	root, err := h.Root()
	if err != nil || root.Name != "ROOT" || h.Dirty() {
		t.Fatalf("%v %v", root, err)
	}
	if s, err := root.Subkeys(); err != nil || len(s) != 0 {
		t.Fatalf("%v %v", s, err)
	}
}

// FuzzOpen opens arbitrary bytes as a hive and reads everything in it:
// whatever the bytes, the reader returns an error or data within its
// limits, and never panics or loops.
func FuzzOpen(f *testing.F) {
	f.Add(regftest.Empty("ROOT"))
	if b, err := os.ReadFile("testdata/sample.hive"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Open(bytes.NewReader(b), int64(len(b)), Limits{MaxCells: 20000})
		if err != nil {
			return
		}
		root, err := h.Root()
		if err != nil {
			return
		}
		_ = root.Walk(func(_ string, k *Key) error {
			vals, _ := k.Values()
			for _, v := range vals {
				if len(v.Data) > DefaultLimits().MaxValueSize {
					t.Fatalf("value of %d bytes", len(v.Data))
				}
			}
			return nil
		})
		_, _ = h.Key(`Microsoft\SystemCertificates\ROOT\Certificates`)
	})
}
