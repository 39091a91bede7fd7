package regf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// craft builds a hive cell by cell, for shapes no hive writer produces:
// cells are appended to one hive bin and offsets are relative to it.
type craft struct{ bin []byte }

func newCraft() *craft {
	c := &craft{bin: make([]byte, hbinHeader)}
	copy(c.bin, "hbin")
	return c
}

// cell appends an allocated cell holding data and returns its offset.
func (c *craft) cell(data []byte) uint32 {
	off := uint32(len(c.bin))
	n := (4 + len(data) + 7) &^ 7
	cell := make([]byte, n)
	binary.LittleEndian.PutUint32(cell, uint32(-int32(n)))
	copy(cell[4:], data)
	c.bin = append(c.bin, cell...)
	return off
}

func (c *craft) nk(name string, nSub, subList, nVal, valList uint32) uint32 {
	le := binary.LittleEndian
	d := make([]byte, 76+len(name))
	copy(d, "nk")
	le.PutUint16(d[2:], nkCompName)
	le.PutUint32(d[20:], nSub)
	le.PutUint32(d[28:], subList)
	le.PutUint32(d[36:], nVal)
	le.PutUint32(d[40:], valList)
	le.PutUint16(d[72:], uint16(len(name)))
	copy(d[76:], name)
	return c.cell(d)
}

func (c *craft) vk(name string, size, dataOff uint32) uint32 {
	le := binary.LittleEndian
	d := make([]byte, 20+len(name))
	copy(d, "vk")
	le.PutUint16(d[2:], uint16(len(name)))
	le.PutUint32(d[4:], size)
	le.PutUint32(d[8:], dataOff)
	le.PutUint32(d[12:], RegBinary)
	le.PutUint16(d[16:], vkCompName)
	copy(d[20:], name)
	return c.cell(d)
}

// list appends a subkey list (sig "lf", "lh", "li") or, with sig "", a
// value list (bare offsets).
func (c *craft) list(sig string, offs []uint32) uint32 {
	le := binary.LittleEndian
	var d []byte
	stride := 4
	if sig != "" {
		d = append([]byte(sig), 0, 0)
		le.PutUint16(d[2:], uint16(len(offs)))
		if sig != "li" {
			stride = 8
		}
	}
	for _, o := range offs {
		e := make([]byte, stride)
		le.PutUint32(e, o)
		d = append(d, e...)
	}
	return c.cell(d)
}

// hive returns the file: base block, then the bin padded to 4096 bytes.
func (c *craft) hive(root uint32) []byte {
	le := binary.LittleEndian
	size := (len(c.bin) + baseBlock - 1) &^ (baseBlock - 1)
	bin := make([]byte, size)
	copy(bin, c.bin)
	le.PutUint32(bin[8:], uint32(size))
	if free := size - len(c.bin); free > 0 {
		le.PutUint32(bin[len(c.bin):], uint32(free))
	}
	b := make([]byte, baseBlock, baseBlock+size)
	copy(b, "regf")
	le.PutUint32(b[4:], 1)
	le.PutUint32(b[8:], 1)
	le.PutUint32(b[20:], 1)
	le.PutUint32(b[24:], 5)
	le.PutUint32(b[36:], root)
	le.PutUint32(b[40:], uint32(size))
	return append(b, bin...)
}

// allocs returns the bytes allocated while f runs.
func allocs(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A key whose values all point at one large data cell: looking up one
// value reads that value's data only, not every value's copy of it.
func TestSharedValueData(t *testing.T) {
	const n, size = 1024, 64 << 10
	c := newCraft()
	data := c.cell(make([]byte, size))
	vks := make([]uint32, n)
	for i := range vks {
		vks[i] = c.vk("Other", size, data)
	}
	vks[n-1] = c.vk("Blob", 3, data)
	root := c.nk("ROOT", 0, noCell, n, c.list("", vks))
	h := openBytes(t, c.hive(root))
	k, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	var v Value
	got := allocs(func() { v, err = k.Value("blob") })
	if err != nil || len(v.Data) != 3 {
		t.Fatalf("Blob: %d bytes, %v", len(v.Data), err)
	}
	if got > 4*size {
		t.Fatalf("looking up one value allocated %d bytes (%d values share one %d-byte data cell)", got, n, size)
	}
}

// Every call on a hive draws on one budget of bytes read: a hive whose
// many keys share one huge value cannot make a reader that visits each
// key read far more than the hive holds.
func TestHiveReadBudget(t *testing.T) {
	const n, size = 256, 1 << 20
	c := newCraft()
	data := c.cell(make([]byte, size))
	vals := c.list("", []uint32{c.vk("Blob", size, data)})
	subs := make([]uint32, n)
	for i := range subs {
		subs[i] = c.nk("k", 0, noCell, 1, vals)
	}
	root := c.nk("ROOT", n, c.list("li", subs), 0, noCell)
	b := c.hive(root)
	h, err := Open(bytes.NewReader(b), int64(len(b)), Limits{MaxRead: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := h.Root()
	keys, err := k.Subkeys()
	if err != nil || len(keys) != n {
		t.Fatalf("%d subkeys, %v", len(keys), err)
	}
	var le *LimitError
	read := 0
	for _, s := range keys {
		v, err := s.Value("Blob")
		if errors.As(err, &le) && le.What == "bytes read" {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		read += len(v.Data)
	}
	if le == nil || read > 32<<20 {
		t.Fatalf("read %d bytes of values from a %d-byte hive with a 32 MB budget: %v", read, len(b), le)
	}
}

// Small cells cost a read each: a hive whose keys share one list of many
// tiny values is charged at least minCellCharge per cell read, so its
// budget of bytes also bounds the reads (a 530 KB hive of 4,096 keys
// sharing 4,096 values took 86 s to spend 256 MB 24 bytes at a time).
func TestSmallCellsCharged(t *testing.T) {
	const n = 512
	c := newCraft()
	data := c.cell([]byte("abc"))
	vks := make([]uint32, n)
	for i := range vks {
		vks[i] = c.vk("x", 3, data)
	}
	vals := c.list("", vks)
	subs := make([]uint32, n)
	for i := range subs {
		subs[i] = c.nk("k", 0, noCell, n, vals)
	}
	b := c.hive(c.nk("ROOT", n, c.list("li", subs), 0, noCell))
	const budget = 1 << 20
	h, err := Open(bytes.NewReader(b), int64(len(b)), Limits{MaxRead: budget})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := h.Root()
	keys, err := k.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, s := range keys {
		_, err := s.Value("Blob")
		var le *LimitError
		if errors.As(err, &le) {
			break
		}
		calls++
	}
	if most := budget/minCellCharge/n + 1; calls > most {
		t.Fatalf("%d look-ups of %d cells each within a %d-byte budget, want at most %d", calls, n, budget, most)
	}
}

// Two subkeys whose names match alike (a hostile hive: Windows never
// writes them) are refused, not resolved to the first: Windows looks names
// up by its own search of the sorted list and may find the other one, so
// an audit taking the first could read an empty decoy store while Windows
// trusts what the other holds.
func TestDuplicateNamesRefused(t *testing.T) {
	c := newCraft()
	decoy, real := c.nk("ROOT", 0, noCell, 0, noCell), c.nk("Root", 0, noCell, 0, noCell)
	parent := c.nk("SystemCertificates", 2, c.list("lf", []uint32{decoy, real}), 0, noCell)
	root := c.nk("SOFTWARE", 1, c.list("lf", []uint32{parent}), 0, noCell)
	h := openBytes(t, c.hive(root))
	var ce *CorruptError
	if _, err := h.Key(`SystemCertificates\root`); !errors.As(err, &ce) {
		t.Fatalf("Key: %v", err)
	}
	p, err := h.Key("SystemCertificates")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Subkey("ROOT"); !errors.As(err, &ce) {
		t.Fatalf("Subkey: %v", err)
	}
}

// Two values whose names match alike are refused by a look-up, as two such
// subkeys are: a hostile hive could otherwise hide the certificate Windows
// reads behind a decoy Blob that the first match would return. A listing
// still returns both (nothing hides there).
func TestDuplicateValueNamesRefused(t *testing.T) {
	c := newCraft()
	decoy := c.vk("Blob", 0x80000000|4, binary.LittleEndian.Uint32([]byte("fake")))
	real := c.vk("BLOB", 0x80000000|4, binary.LittleEndian.Uint32([]byte("real")))
	other := c.vk("Other", 0x80000000|1, 'x')
	root := c.nk("ABCD", 0, noCell, 3, c.list("", []uint32{decoy, other, real}))
	h := openBytes(t, c.hive(root))
	k, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if v, err := k.Value("blob"); !errors.As(err, &ce) {
		t.Fatalf("Value = %q, %v; want a CorruptError", v.Data, err)
	}
	if v, err := k.Value("other"); err != nil || string(v.Data) != "x" {
		t.Fatalf("Value(other) = %q, %v", v.Data, err)
	}
	vals, err := k.Values()
	if err != nil || len(vals) != 3 {
		t.Fatalf("Values = %d values, %v; want all 3", len(vals), err)
	}
}
