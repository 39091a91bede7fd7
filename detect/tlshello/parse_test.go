package tlshello

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/mitmguard/mitmguard/detect/internal/hellotest"
)

func vectorBytes(t testing.TB) []byte {
	return hellotest.Hellos(t, "testdata/ja4/vectors.jsonl")[0]
}

func TestHostileClientHellos(t *testing.T) {
	good := vectorBytes(t)
	msg := good[5:]
	want, _ := mustParse(t, good).JA4()

	// Split over 100+ one-byte records: still the same ClientHello.
	split := hellotest.Records(msg, 1)
	ch, err := Parse(split)
	if err != nil {
		t.Fatalf("one-byte records: %v", err)
	}
	if got, _ := ch.JA4(); got != want {
		t.Errorf("one-byte records give %s, want %s", got, want)
	}

	// A 64 KB extension: parsed, in bounded memory, over 5 records.
	body := append([]byte{}, msg[4:]...)
	extLenOff := len(body) - extensionsLen(t, body) - 2
	const bigLen = 64000
	binary.BigEndian.PutUint16(body[extLenOff:], uint16(extensionsLen(t, body)+4+bigLen))
	body = append(body, 0xab, 0xcd, byte(bigLen>>8), byte(bigLen&0xff))
	body = append(body, make([]byte, bigLen)...)
	big := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	ch, err = Parse(hellotest.Records(big, 1<<14))
	runtime.ReadMemStats(&m1)
	if err != nil || len(ch.ExtensionData(ch.Extensions[len(ch.Extensions)-1])) != bigLen {
		t.Errorf("64 KB extension: %v", err)
	}
	if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes for a %d-byte hello", grew, len(big))
	}

	cases := map[string][]byte{
		"empty":              nil,
		"truncated header":   good[:3],
		"truncated record":   good[:len(good)-10],
		"not handshake":      append([]byte{23}, good[1:]...),
		"not a ClientHello":  append(append([]byte{}, good[:5]...), append([]byte{2}, good[6:]...)...),
		"handshake too long": hellotest.Records([]byte{1, 0xff, 0xff, 0xff}, 4),
		"record too long":    {22, 3, 1, 0xff, 0xff},
		"length lies short":  lie(msg, -7),
		"length lies long":   lie(msg, +7),
	}
	for name, in := range cases {
		_, err := Parse(in)
		var pe *ParseError
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.As(err, &pe) && !errors.Is(err, ErrIncomplete) {
			t.Errorf("%s: error %v is neither a *ParseError nor ErrIncomplete", name, err)
		} else if msg := err.Error(); !strings.HasPrefix(msg, "tlshello: ClientHello: ") || strings.Count(msg, "tlshello:") != 1 {
			t.Errorf("%s: want one \"tlshello:\" prefix, got %q", name, msg)
		}
	}
}

func mustParse(t *testing.T, b []byte) *ClientHello {
	ch, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// lie changes a cipher-suites length by d bytes without changing the data.
func lie(msg []byte, d int) []byte {
	m := append([]byte{}, msg...)
	off := 4 + 2 + 32
	off += 1 + int(m[off])
	n := int(binary.BigEndian.Uint16(m[off:])) + d
	binary.BigEndian.PutUint16(m[off:], uint16(n))
	return hellotest.Records(m, 1<<14)
}

// extensionsLen reads the extensions length of a ClientHello body.
func extensionsLen(t *testing.T, body []byte) int {
	off := 2 + 32
	off += 1 + int(body[off])
	off += 2 + int(binary.BigEndian.Uint16(body[off:]))
	off += 1 + int(body[off])
	return int(binary.BigEndian.Uint16(body[off:]))
}

// FuzzParse: any bytes give a ClientHello or an error, never a panic, and a
// ClientHello that parses gives fingerprints.
func FuzzParse(f *testing.F) {
	for _, v := range ja4Vectors(f) {
		b, _ := hex.DecodeString(v.ClientHelloHex)
		f.Add(b)
		f.Add(hellotest.Records(b[5:], 7))
	}
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := Parse(data)
		if err != nil {
			return
		}
		ch.JA4()
		ch.JA3()
		checkParsed(t, ch)
	})
}

// checkParsed checks what the two passes of ParseHandshake built against
// the message itself: the extensions tile the end of Raw, each list is
// capped, and the server name, ALPN protocols and key share groups are what
// a plain reading of their extension's data gives.
func checkParsed(t *testing.T, ch *ClientHello) {
	t.Helper()
	end := len(ch.Raw)
	if n := len(ch.Extensions); n > 0 {
		end = int(ch.Extensions[0].Offset) - 4
	}
	var sni, alpn, shares []byte
	for i, e := range ch.Extensions {
		d := ch.ExtensionData(e)
		if d == nil || len(d) != int(e.Len) || int(e.Offset) != end+4 || binary.BigEndian.Uint16(ch.Raw[end:]) != e.Type ||
			binary.BigEndian.Uint16(ch.Raw[end+2:]) != e.Len {
			t.Fatalf("extension %d %+v does not follow the one before (ending at %d) in the %d-byte message", i, e, end, len(ch.Raw))
		}
		end += 4 + len(d)
		switch e.Type {
		case 0:
			sni = d
		case 16:
			alpn = d
		case 51:
			shares = d
		}
	}
	if end != len(ch.Raw) {
		t.Fatalf("the extensions end at %d of %d bytes", end, len(ch.Raw))
	}
	for _, l := range [][]uint16{ch.CipherSuites, ch.SupportedGroups, ch.SignatureSchemes, ch.SupportedVersions, ch.KeyShares} {
		if cap(l) != len(l) {
			t.Fatalf("a list of %d values has room for %d", len(l), cap(l))
		}
	}
	name := ""
	if sni != nil {
		in, list := cryptobyte.String(sni), cryptobyte.String(nil)
		in.ReadUint16LengthPrefixed(&list)
		for !list.Empty() {
			var kind uint8
			var h cryptobyte.String
			list.ReadUint8(&kind)
			list.ReadUint16LengthPrefixed(&h)
			if kind == 0 && name == "" {
				name = string(h)
			}
		}
	}
	var protos []string
	if alpn != nil {
		in, list := cryptobyte.String(alpn), cryptobyte.String(nil)
		in.ReadUint16LengthPrefixed(&list)
		for !list.Empty() {
			var p cryptobyte.String
			list.ReadUint8LengthPrefixed(&p)
			protos = append(protos, string(p))
		}
	}
	var groups []uint16
	if shares != nil {
		in, list := cryptobyte.String(shares), cryptobyte.String(nil)
		in.ReadUint16LengthPrefixed(&list)
		for !list.Empty() {
			var g uint16
			var key cryptobyte.String
			list.ReadUint16(&g)
			list.ReadUint16LengthPrefixed(&key)
			groups = append(groups, g)
		}
	}
	if ch.ServerName != name || !slices.Equal(ch.ALPN, protos) || !slices.Equal(ch.KeyShares, groups) {
		t.Fatalf("parsed name %q, ALPN %q, key shares %x; the extensions say %q, %q, %x", ch.ServerName, ch.ALPN, ch.KeyShares, name, protos, groups)
	}
}

// ext is an extension to build a hello with.
type ext struct {
	typ  uint16
	data []byte
}

// helloWith builds a ClientHello record with the given extensions (type,
// data) after a minimal body.
func helloWith(exts ...ext) []byte {
	var b cryptobyte.Builder
	b.AddUint8(1)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(0x1301); b.AddUint16(0xc02b) })
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range exts {
				b.AddUint16(e.typ)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.data) })
			}
		})
	})
	return hellotest.Records(b.BytesOrPanic(), 1<<14)
}

// Hellos that browsers' servers refuse (issue 9 item 13) are refused, each
// with the package's one "tlshello:" prefix, naming the extension at fault.
func TestParseRefusesMalformedLists(t *testing.T) {
	if _, err := Parse(helloWith(ext{43, []byte{4, 3, 4, 3, 3}}, ext{13, []byte{0, 2, 4, 3}})); err != nil {
		t.Fatalf("well-formed hello refused: %v", err)
	}
	cases := map[string]struct {
		hello []byte
		ext   int
	}{
		"odd supported_versions":     {helloWith(ext{43, []byte{3, 3, 4, 3}}), 43},
		"odd signature_algorithms":   {helloWith(ext{13, []byte{0, 3, 4, 3, 8}}), 13},
		"odd supported_groups":       {helloWith(ext{10, []byte{0, 1, 0x1d}}), 10},
		"duplicate extension":        {helloWith(ext{23, nil}, ext{0xff01, []byte{0}}, ext{23, nil}), 23},
		"duplicate GREASE extension": {helloWith(ext{0x0a0a, nil}, ext{0x0a0a, nil}), 0x0a0a},
		"bytes after the versions":   {helloWith(ext{43, []byte{2, 3, 4, 9}}), 43},
	}
	for name, c := range cases {
		_, err := Parse(c.hello)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a *ParseError", name, err)
			continue
		}
		if pe.Extension != c.ext {
			t.Errorf("%s: extension %d at fault, want %d", name, pe.Extension, c.ext)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "tlshello: ClientHello extension ") || strings.Count(msg, "tlshello:") != 1 || strings.Contains(msg, "detect:") {
			t.Errorf("%s: want one \"tlshello:\" prefix, got %q", name, msg)
		}
	}
}

// manyExtensions is a hello with n empty extensions of distinct types and,
// when dup >= 0, extension dup's type sent again at the end.
func manyExtensions(n, dup int) []byte {
	exts := make([]ext, 0, n+1)
	for i := range n {
		exts = append(exts, ext{typ: uint16(0x1000 + i)})
	}
	if dup >= 0 {
		exts = append(exts, ext{typ: uint16(0x1000 + dup)})
	}
	return helloWith(exts...)
}

// A hello with thousands of extensions (past the scanned few, where the
// check keeps a bit set) still has its repeated type found, whichever
// extension it repeats, and parses when none repeats.
func TestParseRepeatedAmongManyExtensions(t *testing.T) {
	for _, n := range []int{scanExtensions - 1, scanExtensions, scanExtensions + 1, 16000} {
		if ch, err := Parse(manyExtensions(n, -1)); err != nil || len(ch.Extensions) != n {
			t.Fatalf("%d distinct extensions: %v", n, err)
		}
		for _, dup := range []int{0, min(scanExtensions, n) - 1, n - 1} {
			_, err := Parse(manyExtensions(n, dup))
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Extension != 0x1000+dup || pe.Reason != "sent twice" {
				t.Errorf("%d extensions, #%d repeated: %v", n, dup, err)
			}
		}
	}
}

// BenchmarkParseManyExtensions: a hostile 64 KB hello of 16000 empty
// extensions costs time linear in its length (ns/ext stays near the cost
// of reading one extension), not the square of the extension count.
func BenchmarkParseManyExtensions(b *testing.B) {
	const n = 16000
	raw := manyExtensions(n, -1)
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/ext")
}

// ExtensionData returns each extension's own bytes, also for a hello split
// over one-byte records (reassembled), and nothing from a Slim copy.
func TestExtensionData(t *testing.T) {
	want := []ext{{23, nil}, {0xff01, []byte{0}}, {0x1234, []byte{1, 2, 3}}, {43, []byte{2, 3, 4}}}
	rec := helloWith(want...)
	for name, in := range map[string][]byte{"one record": rec, "one-byte records": hellotest.Records(rec[5:], 1)} {
		ch, err := Parse(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ch.Extensions) != len(want) {
			t.Fatalf("%s: %d extensions, want %d", name, len(ch.Extensions), len(want))
		}
		for i, e := range ch.Extensions {
			if got := ch.ExtensionData(e); e.Type != want[i].typ || string(got) != string(want[i].data) || int(e.Len) != len(got) {
				t.Errorf("%s: extension %d is %#04x %x, want %#04x %x", name, i, e.Type, got, want[i].typ, want[i].data)
			}
		}
		s := ch.Slim()
		for _, e := range s.Extensions {
			if d := s.ExtensionData(e); d != nil {
				t.Errorf("%s: a Slim copy still gives extension %#04x's data %x", name, e.Type, d)
			}
		}
	}
}

// The 16-bit lists share one array, each capped: appending to one does not
// write over the next.
func TestListsDoNotOverlap(t *testing.T) {
	ch := mustParse(t, vectorBytes(t))
	groups := slices.Clone(ch.SupportedGroups)
	sigs := slices.Clone(ch.SignatureSchemes)
	_ = append(ch.CipherSuites, 0xffff, 0xffff, 0xffff)
	_ = append(ch.SupportedGroups, 0xffff, 0xffff, 0xffff)
	if !slices.Equal(groups, ch.SupportedGroups) || !slices.Equal(sigs, ch.SignatureSchemes) {
		t.Errorf("appending to a list changed another: groups %x (was %x), signatures %x (was %x)", ch.SupportedGroups, groups, ch.SignatureSchemes, sigs)
	}
}
