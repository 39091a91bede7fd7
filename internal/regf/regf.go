// Package regf reads Windows registry hive files (the "regf" format of
// SOFTWARE, SYSTEM and NTUSER.DAT) from an offline disk image.
//
// A hive taken from someone else's disk is hostile input, so the reader is
// bounded: the file size is capped before anything is read, every cell offset
// is checked against the hive bins found when the hive is opened, lists are
// capped in length, key walks are capped in depth and detect cell offsets that
// loop back, every call has a budget of cells it may read, and all calls on
// one hive share a budget of bytes read (cells can be shared, so a hive of
// a few MB could otherwise make a reader visiting each key read terabytes).
// Nothing is cached and nothing is written: a Hive is safe for concurrent
// use when its io.ReaderAt is.
//
// Only what an audit needs is implemented: keys (nk), subkey lists (lf, lh,
// li, ri), value lists and values (vk) including big data (db). Security
// descriptors, class names and transaction logs are ignored; a hive whose
// header says it was not cleanly written is still read, and Dirty reports it.
package regf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"unicode/utf16"
)

// Limits bound the work done on one hive. The zero value of a field means
// the default from DefaultLimits.
type Limits struct {
	// MaxSize is the largest hive file accepted. Real SOFTWARE hives are
	// tens to a few hundred MB; a 1 GB file is refused.
	MaxSize int64
	// MaxDepth is the deepest key path or walk.
	MaxDepth int
	// MaxList is the most subkeys or values one key may have.
	MaxList int
	// MaxValueSize is the largest value data returned.
	MaxValueSize int
	// MaxCells is the budget of cells one call may read.
	MaxCells int
	// MaxRead is the budget of bytes that all calls on one hive may read
	// together. Cells may be shared (every key of a hostile hive can name
	// the same 4 MB value), so per-call budgets alone let a reader that
	// visits each key read far more than the hive holds.
	MaxRead int64
}

// DefaultLimits are generous for real hives and small enough that a hostile
// hive cannot make an audit run for long or allocate much.
func DefaultLimits() Limits {
	return Limits{
		MaxSize:      512 << 20,
		MaxDepth:     64,
		MaxList:      1 << 16,
		MaxValueSize: 4 << 20,
		MaxCells:     1 << 20,
		MaxRead:      256 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSize <= 0 {
		l.MaxSize = d.MaxSize
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxList <= 0 {
		l.MaxList = d.MaxList
	}
	if l.MaxValueSize <= 0 {
		l.MaxValueSize = d.MaxValueSize
	}
	if l.MaxCells <= 0 {
		l.MaxCells = d.MaxCells
	}
	if l.MaxRead <= 0 {
		l.MaxRead = d.MaxRead
	}
	return l
}

// TooLargeError refuses a hive bigger than Limits.MaxSize before reading it.
type TooLargeError struct {
	Size, Max int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("regf: hive is %d bytes, larger than the %d-byte limit", e.Size, e.Max)
}

// CorruptError says where a hive breaks the format: Offset is the file
// offset of the offending structure.
type CorruptError struct {
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("regf: corrupt hive at file offset %#x: %s", e.Offset, e.Reason)
}

// CycleError reports a key or list cell reached twice in one walk: the hive
// links back on itself, which a valid hive never does.
type CycleError struct {
	Offset int64
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("regf: cell at file offset %#x is reached twice: the hive loops", e.Offset)
}

// LimitError reports a bound of Limits that the hive exceeded.
type LimitError struct {
	What  string // "depth", "subkeys", "values", "value size", "cells", "bytes read"
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("regf: hive exceeds the %s limit of %d", e.What, e.Limit)
}

// ErrNotFound is returned (wrapped in a NotFoundError) for a missing key or value.
var ErrNotFound = errors.New("regf: not found")

// NotFoundError names the key path or value that does not exist.
type NotFoundError struct {
	Path string
}

func (e *NotFoundError) Error() string { return "regf: " + e.Path + ": not found" }

// Unwrap lets errors.Is(err, ErrNotFound) match.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

const (
	baseBlock  = 4096
	hbinHeader = 32
	noCell     = 0xffffffff
	// bigDataMax is the most data a value keeps in one cell before hives
	// of version 1.4 and later split it into a db record's segments.
	bigDataMax = 16344
	// minCellCharge is the least a cell read costs of the MaxRead budget:
	// a read of a tiny cell costs system calls, not bytes, and a hostile
	// hive can make every read a tiny cell. A real audit reads some tens of
	// thousands of cells per hive, well within the budget.
	minCellCharge = 1024
)

type bin struct{ start, end uint32 } // relative to the first bin

// Hive is an opened hive file.
type Hive struct {
	r     io.ReaderAt
	lim   Limits
	bins  []bin
	root  uint32
	minor uint32
	dirty bool
	read  atomic.Int64 // bytes read by all calls, against lim.MaxRead
}

// Open checks the header and indexes the hive bins of the size bytes of r.
func Open(r io.ReaderAt, size int64, lim Limits) (*Hive, error) {
	lim = lim.withDefaults()
	if size > lim.MaxSize {
		return nil, &TooLargeError{Size: size, Max: lim.MaxSize}
	}
	if size < baseBlock+hbinHeader {
		return nil, &CorruptError{Offset: 0, Reason: fmt.Sprintf("file of %d bytes is too short for a hive", size)}
	}
	hdr := make([]byte, 512)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("regf: reading header: %w", err)
	}
	if string(hdr[:4]) != "regf" {
		return nil, &CorruptError{Offset: 0, Reason: "no regf signature"}
	}
	le := binary.LittleEndian
	if major := le.Uint32(hdr[20:]); major != 1 {
		return nil, &CorruptError{Offset: 20, Reason: fmt.Sprintf("major version %d, want 1", major)}
	}
	h := &Hive{r: r, lim: lim, root: le.Uint32(hdr[36:]), minor: le.Uint32(hdr[24:])}
	h.dirty = le.Uint32(hdr[4:]) != le.Uint32(hdr[8:])
	binsSize := int64(le.Uint32(hdr[40:]))
	if binsSize > size-baseBlock {
		return nil, &CorruptError{Offset: 40, Reason: fmt.Sprintf("header says %d bytes of hive bins, the file holds %d: truncated", binsSize, size-baseBlock)}
	}
	if err := h.indexBins(binsSize); err != nil {
		return nil, err
	}
	return h, nil
}

// indexBins walks the chain of hbin headers, each at the offset the last
// one's size leads to, so that cell offsets can be checked against them.
func (h *Hive) indexBins(total int64) error {
	var hb [hbinHeader]byte
	le := binary.LittleEndian
	for off := int64(0); off < total; {
		if _, err := h.r.ReadAt(hb[:], baseBlock+off); err != nil {
			return &CorruptError{Offset: baseBlock + off, Reason: "hive bin header unreadable: " + err.Error()}
		}
		if string(hb[:4]) != "hbin" {
			return &CorruptError{Offset: baseBlock + off, Reason: "no hbin signature"}
		}
		if int64(le.Uint32(hb[4:])) != off {
			return &CorruptError{Offset: baseBlock + off + 4, Reason: "hive bin says it is somewhere else"}
		}
		sz := int64(le.Uint32(hb[8:]))
		if sz < baseBlock || sz%baseBlock != 0 || off+sz > total {
			return &CorruptError{Offset: baseBlock + off + 8, Reason: fmt.Sprintf("hive bin size %d", sz)}
		}
		h.bins = append(h.bins, bin{start: uint32(off), end: uint32(off + sz)})
		off += sz
	}
	if len(h.bins) == 0 {
		return &CorruptError{Offset: 40, Reason: "no hive bins"}
	}
	return nil
}

// BytesRead is how much of the hive's MaxRead budget its calls have spent.
func (h *Hive) BytesRead() int64 { return h.read.Load() }

// Dirty reports a header whose sequence numbers differ: Windows did not
// finish writing the hive, and recent changes may still sit in the
// transaction logs (.LOG1, .LOG2) that this reader does not replay.
func (h *Hive) Dirty() bool { return h.dirty }

// walk is the state of one call: its cell budget and the cells seen.
type walk struct {
	h     *Hive
	cells int
	seen  map[uint32]bool
}

func (h *Hive) newWalk() *walk { return &walk{h: h, seen: map[uint32]bool{}} }

// visit records a key or list cell and fails when it was reached before.
func (w *walk) visit(off uint32) error {
	if w.seen[off] {
		return &CycleError{Offset: baseBlock + int64(off)}
	}
	w.seen[off] = true
	return nil
}

func (w *walk) corrupt(off uint32, format string, args ...any) error {
	return &CorruptError{Offset: baseBlock + int64(off), Reason: fmt.Sprintf(format, args...)}
}

// cell reads the allocated cell at off (relative to the first bin), after
// checking that it lies whole inside one hive bin.
func (w *walk) cell(off uint32) ([]byte, error) {
	w.cells++
	if w.cells > w.h.lim.MaxCells {
		return nil, &LimitError{What: "cells", Limit: int64(w.h.lim.MaxCells)}
	}
	if off%8 != 0 {
		return nil, w.corrupt(off, "cell offset %#x is not 8-aligned", off)
	}
	i := sort.Search(len(w.h.bins), func(i int) bool { return w.h.bins[i].end > off })
	if i == len(w.h.bins) || off < w.h.bins[i].start+hbinHeader {
		return nil, w.corrupt(off, "cell offset %#x is outside the hive bins", off)
	}
	b := w.h.bins[i]
	var sz [4]byte
	if _, err := w.h.r.ReadAt(sz[:], baseBlock+int64(off)); err != nil {
		return nil, w.corrupt(off, "cell unreadable: %v", err)
	}
	n := int32(binary.LittleEndian.Uint32(sz[:]))
	if n >= 0 {
		return nil, w.corrupt(off, "cell is free, not allocated")
	}
	size := -int64(n)
	if size < 8 || int64(off)+size > int64(b.end) {
		return nil, w.corrupt(off, "cell size %d crosses its hive bin", size)
	}
	if size-4 > int64(w.h.lim.MaxValueSize)+64 {
		return nil, &LimitError{What: "value size", Limit: int64(w.h.lim.MaxValueSize)}
	}
	if w.h.read.Add(max(size, minCellCharge)) > w.h.lim.MaxRead {
		return nil, &LimitError{What: "bytes read", Limit: w.h.lim.MaxRead}
	}
	data := make([]byte, size-4)
	if _, err := w.h.r.ReadAt(data, baseBlock+int64(off)+4); err != nil {
		return nil, w.corrupt(off, "cell unreadable: %v", err)
	}
	return data, nil
}

// Key is one registry key.
type Key struct {
	h    *Hive
	off  uint32
	Name string
	// nk fields used to reach subkeys and values
	nSub, subList, nVal, valList uint32
}

const (
	nkCompName = 0x0020
	vkCompName = 0x0001
)

func (w *walk) key(off uint32) (*Key, error) {
	c, err := w.cell(off)
	if err != nil {
		return nil, err
	}
	if len(c) < 76 || string(c[:2]) != "nk" {
		return nil, w.corrupt(off, "not a key (nk) cell")
	}
	le := binary.LittleEndian
	nameLen := int(le.Uint16(c[72:]))
	if 76+nameLen > len(c) {
		return nil, w.corrupt(off, "key name of %d bytes overruns its cell", nameLen)
	}
	k := &Key{
		h: w.h, off: off,
		Name:    decodeName(c[76:76+nameLen], le.Uint16(c[2:])&nkCompName != 0),
		nSub:    le.Uint32(c[20:]),
		subList: le.Uint32(c[28:]),
		nVal:    le.Uint32(c[36:]),
		valList: le.Uint32(c[40:]),
	}
	return k, nil
}

// decodeName decodes a key or value name: Latin-1 when the compressed flag
// is set, else UTF-16LE.
func decodeName(b []byte, compressed bool) string {
	if compressed {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// Root returns the hive's root key.
func (h *Hive) Root() (*Key, error) { return h.newWalk().key(h.root) }

// Key finds the key at path below the root: names separated by
// backslashes, compared case-insensitively as Windows does.
func (h *Hive) Key(path string) (*Key, error) {
	w := h.newWalk()
	k, err := w.key(h.root)
	if err != nil {
		return nil, err
	}
	if err := w.visit(h.root); err != nil {
		return nil, err
	}
	var parts []string
	for _, p := range strings.Split(path, `\`) {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) > h.lim.MaxDepth {
		return nil, &LimitError{What: "depth", Limit: int64(h.lim.MaxDepth)}
	}
	for i, p := range parts {
		sub, err := w.subkeys(k)
		if err != nil {
			return nil, err
		}
		next, err := named(k, sub, p)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, &NotFoundError{Path: strings.Join(parts[:i+1], `\`)}
		}
		if err := w.visit(next.off); err != nil {
			return nil, err
		}
		k = next
	}
	return k, nil
}

// Subkeys lists the key's subkeys in the hive's order.
func (k *Key) Subkeys() ([]*Key, error) {
	w := k.h.newWalk()
	if err := w.visit(k.off); err != nil {
		return nil, err
	}
	return w.subkeys(k)
}

func (w *walk) subkeys(k *Key) ([]*Key, error) {
	if k.nSub == 0 {
		return nil, nil
	}
	if int(k.nSub) > w.h.lim.MaxList || k.nSub > 1<<30 {
		return nil, &LimitError{What: "subkeys", Limit: int64(w.h.lim.MaxList)}
	}
	offs, err := w.subkeyOffsets(k.subList, true)
	if err != nil {
		return nil, err
	}
	if len(offs) != int(k.nSub) {
		return nil, w.corrupt(k.off, "key says %d subkeys, its list holds %d", k.nSub, len(offs))
	}
	keys := make([]*Key, 0, len(offs))
	seen := make(map[uint32]bool, len(offs))
	for _, o := range offs {
		if o == k.off || seen[o] {
			return nil, &CycleError{Offset: baseBlock + int64(o)}
		}
		seen[o] = true
		s, err := w.key(o)
		if err != nil {
			return nil, err
		}
		keys = append(keys, s)
	}
	return keys, nil
}

// subkeyOffsets reads a subkey list: lf and lh (offset and hash pairs), li
// (offsets) or, when top is true, ri (offsets of further lists, one level).
func (w *walk) subkeyOffsets(off uint32, top bool) ([]uint32, error) {
	c, err := w.cell(off)
	if err != nil {
		return nil, err
	}
	if len(c) < 4 {
		return nil, w.corrupt(off, "subkey list too short")
	}
	le := binary.LittleEndian
	n := int(le.Uint16(c[2:]))
	stride := 8
	switch sig := string(c[:2]); {
	case sig == "lf" || sig == "lh":
	case sig == "li":
		stride = 4
	case sig == "ri" && top:
		stride = 4
	default:
		return nil, w.corrupt(off, "not a subkey list: %q", sig)
	}
	if 4+n*stride > len(c) {
		return nil, w.corrupt(off, "subkey list of %d entries overruns its cell", n)
	}
	var out []uint32
	for i := 0; i < n; i++ {
		o := le.Uint32(c[4+i*stride:])
		if string(c[:2]) != "ri" {
			out = append(out, o)
			continue
		}
		if err := w.visit(o); err != nil {
			return nil, err
		}
		sub, err := w.subkeyOffsets(o, false)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
		if len(out) > w.h.lim.MaxList {
			return nil, &LimitError{What: "subkeys", Limit: int64(w.h.lim.MaxList)}
		}
	}
	return out, nil
}

// Subkey returns the direct subkey called name (case-insensitive).
func (k *Key) Subkey(name string) (*Key, error) {
	subs, err := k.Subkeys()
	if err != nil {
		return nil, err
	}
	s, err := named(k, subs, name)
	if err == nil && s == nil {
		err = &NotFoundError{Path: k.Name + `\` + name}
	}
	return s, err
}

// named returns the subkey of k called name (case-insensitive), nil when
// there is none. Two that match are refused: a hive Windows wrote never
// has them, and which one Windows would find depends on its own search.
func named(k *Key, subs []*Key, name string) (*Key, error) {
	var found *Key
	for _, s := range subs {
		if !strings.EqualFold(s.Name, name) {
			continue
		}
		if found != nil {
			return nil, &CorruptError{Offset: baseBlock + int64(s.off), Reason: fmt.Sprintf("key %q has two subkeys named %q", k.Name, name)}
		}
		found = s
	}
	return found, nil
}

// Value types the certificate stores use; others are returned as they are.
const (
	RegSZ     = 1
	RegBinary = 3
	RegDWORD  = 4
)

// Value is one value of a key with its data.
type Value struct {
	Name string // "" for the key's default value
	Type uint32
	Data []byte
}

// Values lists the key's values with their data.
func (k *Key) Values() ([]Value, error) {
	return k.values(func(string) bool { return true }, false)
}

// Value returns the value called name (case-insensitive). Only that
// value's data is read. Two values of that name are refused, as two
// subkeys of one name are (named): Windows never writes them, and a first
// match could be a decoy in front of the value Windows reads.
func (k *Key) Value(name string) (Value, error) {
	vals, err := k.values(func(n string) bool { return strings.EqualFold(n, name) }, true)
	if err != nil {
		return Value{}, err
	}
	if len(vals) == 0 {
		return Value{}, &NotFoundError{Path: k.Name + `\` + name}
	}
	return vals[0], nil
}

// values reads the key's value list and the data of the values whose name
// match accepts; with unique, a second one is a CorruptError.
func (k *Key) values(match func(string) bool, unique bool) ([]Value, error) {
	if k.nVal == 0 {
		return nil, nil
	}
	w := k.h.newWalk()
	if int(k.nVal) > w.h.lim.MaxList || k.nVal > 1<<30 {
		return nil, &LimitError{What: "values", Limit: int64(w.h.lim.MaxList)}
	}
	c, err := w.cell(k.valList)
	if err != nil {
		return nil, err
	}
	if int(k.nVal)*4 > len(c) {
		return nil, w.corrupt(k.valList, "value list of %d entries overruns its cell", k.nVal)
	}
	var vals []Value
	for i := 0; i < int(k.nVal); i++ {
		o := binary.LittleEndian.Uint32(c[4*i:])
		if err := w.visit(o); err != nil {
			return nil, err
		}
		v, err := w.value(o, match)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		if unique && len(vals) > 0 {
			return nil, w.corrupt(o, "key %q has two values named %q", k.Name, v.Name)
		}
		vals = append(vals, *v)
	}
	return vals, nil
}

// value reads the value (vk) cell at off and, when match accepts its name,
// its data; it returns nil for a value match rejects.
func (w *walk) value(off uint32, match func(string) bool) (*Value, error) {
	c, err := w.cell(off)
	if err != nil {
		return nil, err
	}
	if len(c) < 20 || string(c[:2]) != "vk" {
		return nil, w.corrupt(off, "not a value (vk) cell")
	}
	le := binary.LittleEndian
	nameLen := int(le.Uint16(c[2:]))
	if 20+nameLen > len(c) {
		return nil, w.corrupt(off, "value name of %d bytes overruns its cell", nameLen)
	}
	v := &Value{
		Name: decodeName(c[20:20+nameLen], le.Uint16(c[16:])&vkCompName != 0),
		Type: le.Uint32(c[12:]),
	}
	if !match(v.Name) {
		return nil, nil
	}
	size := le.Uint32(c[4:])
	dataOff := le.Uint32(c[8:])
	if size&0x80000000 != 0 { // resident: the data sits in the offset field
		n := size & 0x7fffffff
		if n > 4 {
			return nil, w.corrupt(off, "resident value of %d bytes", n)
		}
		v.Data = append([]byte(nil), c[8:8+n]...)
		return v, nil
	}
	if size == 0 {
		return v, nil
	}
	if int64(size) > int64(w.h.lim.MaxValueSize) {
		return nil, &LimitError{What: "value size", Limit: int64(w.h.lim.MaxValueSize)}
	}
	d, err := w.cell(dataOff)
	if err != nil {
		return nil, err
	}
	if size > bigDataMax && w.h.minor >= 4 && len(d) >= 8 && string(d[:2]) == "db" {
		if v.Data, err = w.bigData(dataOff, d, int(size)); err != nil {
			return nil, err
		}
		return v, nil
	}
	if int(size) > len(d) {
		return nil, w.corrupt(dataOff, "value data of %d bytes overruns its cell", size)
	}
	v.Data = d[:size]
	return v, nil
}

// bigData joins the segments of a db record.
func (w *walk) bigData(off uint32, db []byte, size int) ([]byte, error) {
	le := binary.LittleEndian
	n := int(le.Uint16(db[2:]))
	if n == 0 || (n-1)*bigDataMax >= size || n*bigDataMax < size {
		return nil, w.corrupt(off, "big data of %d bytes in %d segments", size, n)
	}
	list, err := w.cell(le.Uint32(db[4:]))
	if err != nil {
		return nil, err
	}
	if n*4 > len(list) {
		return nil, w.corrupt(off, "big data segment list overruns its cell")
	}
	out := make([]byte, 0, size)
	for i := 0; i < n; i++ {
		seg, err := w.cell(le.Uint32(list[4*i:]))
		if err != nil {
			return nil, err
		}
		want := min(bigDataMax, size-len(out))
		if len(seg) < want {
			return nil, w.corrupt(off, "big data segment %d is short", i)
		}
		out = append(out, seg[:want]...)
	}
	return out, nil
}

// WalkFunc is called for each key of a Walk with its backslash-joined path
// below the walk's start.
type WalkFunc func(path string, k *Key) error

// Walk visits k and every key below it, depth first, within the hive's
// depth limit and cell budget, failing on a key reached twice.
func (k *Key) Walk(fn WalkFunc) error {
	w := k.h.newWalk()
	return w.walkKey("", k, 0, fn)
}

func (w *walk) walkKey(path string, k *Key, depth int, fn WalkFunc) error {
	if depth > w.h.lim.MaxDepth {
		return &LimitError{What: "depth", Limit: int64(w.h.lim.MaxDepth)}
	}
	if err := w.visit(k.off); err != nil {
		return err
	}
	if err := fn(path, k); err != nil {
		return err
	}
	subs, err := w.subkeys(k)
	if err != nil {
		return err
	}
	for _, s := range subs {
		p := s.Name
		if path != "" {
			p = path + `\` + s.Name
		}
		if err := w.walkKey(p, s, depth+1, fn); err != nil {
			return err
		}
	}
	return nil
}
