// Package tlshello reads a TLS ClientHello from the first records of a
// connection, bounds-checked everywhere (it is outside input), and computes
// its fingerprints: JA4 and JA4_r (FoxIO), JA3 (Salesforce). It knows
// nothing of browsers or interception; package detect judges what it reads.
package tlshello

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// Limits on input from outside. A ClientHello is at most a few KB; the
// biggest legitimate ones (post-quantum key shares, padding) stay under 8 KB.
const (
	// MaxHandshake bounds the reassembled handshake message.
	MaxHandshake = 1 << 17
	// MaxRecords bounds the records a ClientHello may be split into
	// (a hostile client may send it one byte per record).
	MaxRecords = 1 << 17
)

// Extension is one ClientHello extension, in the order sent. It says where
// its data lies in the handshake message rather than holding a slice of it:
// a hello's extensions are then one small array that the garbage collector
// does not scan, and ClientHello.ExtensionData returns the data.
type Extension struct {
	Type uint16
	// Len is the length of the extension's data.
	Len uint16
	// Offset is where the data starts in ClientHello.Raw.
	Offset uint32
}

// ExtensionData returns the data of the extension e, a part of Raw, or nil
// when Raw does not hold it (a Slim copy).
func (ch *ClientHello) ExtensionData(e Extension) []byte {
	end := int(e.Offset) + int(e.Len)
	if end > len(ch.Raw) {
		return nil
	}
	return ch.Raw[e.Offset:end:end]
}

// ClientHello is a parsed TLS ClientHello.
type ClientHello struct {
	Raw               []byte // the handshake message (type, length, body)
	RecordVersion     uint16
	Version           uint16 // legacy_version
	ECH               bool   // encrypted_client_hello (0xfe0d) present (here, to pack the struct)
	Random            []byte
	SessionID         []byte
	CipherSuites      []uint16
	Compression       []uint8
	Extensions        []Extension
	ServerName        string
	ALPN              []string
	SupportedGroups   []uint16
	PointFormats      []uint8
	SignatureSchemes  []uint16
	SupportedVersions []uint16
	KeyShares         []uint16 // groups of the key shares offered
	PaddingLen        int      // length of the padding extension's data, or -1
}

// ParseError says what is wrong with the bytes and where.
type ParseError struct {
	// Extension is the type of the extension at fault, or -1 when the
	// fault is outside the extensions' data.
	Extension int
	// Offset is the byte offset of the fault: in the handshake message, or
	// in the extension's data when Extension is set.
	Offset int
	Reason string
}

func (e *ParseError) Error() string {
	if e.Extension >= 0 {
		return fmt.Sprintf("tlshello: ClientHello extension %d: %s (at byte %d of its data)", e.Extension, e.Reason, e.Offset)
	}
	return fmt.Sprintf("tlshello: ClientHello: %s (at byte %d)", e.Reason, e.Offset)
}

// perr is a ParseError outside the extensions' data.
func perr(off int, reason string) *ParseError {
	return &ParseError{Extension: -1, Offset: off, Reason: reason}
}

// ErrIncomplete is returned for input that ends before the ClientHello does.
var ErrIncomplete = errors.New("tlshello: ClientHello: incomplete (more records needed)")

// Reassemble takes the raw bytes of the first TLS records of a connection
// and returns the ClientHello handshake message, joining fragments spread
// over several records, and the bytes consumed. It returns ErrIncomplete
// when more bytes are needed.
func Reassemble(data []byte) ([]byte, int, error) {
	// The common case: the whole ClientHello in the first record, no copy.
	if len(data) >= 9 && data[0] == 22 && data[5] == 1 {
		rl := int(binary.BigEndian.Uint16(data[3:]))
		hl := 4 + (int(data[6])<<16 | int(data[7])<<8 | int(data[8]))
		if rl <= maxRecord && hl <= rl && len(data) >= 5+rl {
			return data[5 : 5+hl], 5 + rl, nil
		}
	}
	var r Reassembler
	msg, err := r.Feed(data)
	return msg, r.off, err
}

// scanExtensions is how many extensions the repeated-type check scans
// before it keeps a bit set instead.
const scanExtensions = 32

// maxRecord is the largest TLS record a client may send (2^14 plus the
// allowance RFC 8446 gives).
const maxRecord = 1<<14 + 2048

// Reassembler joins the handshake fragments of successive records. It
// remembers what it has consumed, so feeding it a connection's bytes as they
// arrive costs time linear in them, however small the records: a client that
// sends its hello one byte per record cannot make the server's work grow
// with the square of it. The zero value is ready.
type Reassembler struct {
	off     int // bytes consumed: whole records
	records int
	msg     []byte
	want    int // length of the handshake message, 0 until known
}

// Records is the number of records consumed.
func (r *Reassembler) Records() int { return r.records }

// Held is the memory the reassembler holds for the message, in bytes.
func (r *Reassembler) Held() int { return cap(r.msg) }

// Feed consumes the complete records of data past what it consumed before
// (data must extend the bytes of earlier calls) and returns the handshake
// message once it is whole, or ErrIncomplete.
func (r *Reassembler) Feed(data []byte) ([]byte, error) {
	for {
		if r.want > 0 && len(r.msg) >= r.want {
			return r.msg[:r.want], nil
		}
		if r.records > MaxRecords {
			return nil, perr(r.off, "too many records")
		}
		if len(data)-r.off < 5 {
			return nil, ErrIncomplete
		}
		typ, length := data[r.off], int(binary.BigEndian.Uint16(data[r.off+3:]))
		if typ != 22 {
			return nil, perr(r.off, fmt.Sprintf("record type %d, want handshake (22)", typ))
		}
		if length > maxRecord {
			return nil, perr(r.off, fmt.Sprintf("record length %d exceeds the TLS limit", length))
		}
		if len(data)-r.off-5 < length {
			return nil, ErrIncomplete
		}
		r.msg = append(r.msg, data[r.off+5:r.off+5+length]...)
		r.off += 5 + length
		r.records++
		if r.want == 0 && len(r.msg) >= 4 {
			if r.msg[0] != 1 {
				return nil, perr(5, fmt.Sprintf("handshake type %d, want ClientHello (1)", r.msg[0]))
			}
			r.want = 4 + (int(r.msg[1])<<16 | int(r.msg[2])<<8 | int(r.msg[3]))
			if r.want > MaxHandshake {
				return nil, perr(6, fmt.Sprintf("handshake length %d exceeds %d", r.want, MaxHandshake))
			}
		}
		if len(r.msg) > MaxHandshake+maxRecord {
			return nil, perr(r.off, "handshake data exceeds the limit")
		}
	}
}

// Parse parses the raw bytes of the first TLS records of a connection.
func Parse(data []byte) (*ClientHello, error) {
	msg, _, err := Reassemble(data)
	if err != nil {
		return nil, err
	}
	return ParseRecords(data, msg)
}

// ParseRecords parses msg, the message a Reassembler returned for the
// records in data.
func ParseRecords(data, msg []byte) (*ClientHello, error) {
	ch, err := ParseHandshake(msg)
	if err != nil {
		return nil, err
	}
	ch.RecordVersion = binary.BigEndian.Uint16(data[1:3])
	return ch, nil
}

// ParseHandshake parses a ClientHello handshake message (type 1, 3-byte
// length, body). It never panics, whatever the bytes. Like the TLS stacks of
// browsers' servers (crypto/tls, BoringSSL, NSS), it refuses a hello with a
// repeated extension, a list of 16-bit values of odd length, or bytes left
// over inside an extension.
func ParseHandshake(msg []byte) (*ClientHello, error) {
	in := cryptobyte.String(msg)
	at := func() int { return len(msg) - len(in) }
	var typ uint8
	var body cryptobyte.String
	if !in.ReadUint8(&typ) || typ != 1 {
		return nil, perr(0, "not a ClientHello")
	}
	if !in.ReadUint24LengthPrefixed(&body) || !in.Empty() {
		return nil, perr(1, fmt.Sprintf("handshake length does not fit the %d bytes given", len(msg)-4))
	}
	in = body
	// Filled on the stack and copied to the heap once, whole: while the
	// garbage collector marks, each pointer stored into a heap object
	// costs a write barrier.
	local := ClientHello{Raw: msg, PaddingLen: -1}
	ch := &local
	var random, sid, cs, comp, exts cryptobyte.String
	switch {
	case !in.ReadUint16(&ch.Version):
		return nil, perr(at(), "version runs past the end")
	case !in.ReadBytes((*[]byte)(&random), 32):
		return nil, perr(at(), "random runs past the end")
	case !in.ReadUint8LengthPrefixed(&sid):
		return nil, perr(at(), "session id runs past the end")
	case !in.ReadUint16LengthPrefixed(&cs):
		return nil, perr(at(), "cipher suites run past the end")
	case len(cs)%2 != 0:
		return nil, perr(at(), "odd cipher suites length")
	case !in.ReadUint8LengthPrefixed(&comp):
		return nil, perr(at(), "compression methods run past the end")
	}
	ch.Random, ch.SessionID, ch.Compression = random, sid, comp
	if in.Empty() {
		ch.CipherSuites = u16s(cs)
		return onHeap(ch), nil // no extensions: a TLS 1.0-era hello
	}
	if !in.ReadUint16LengthPrefixed(&exts) {
		return nil, perr(at(), "extensions run past the end")
	}
	if !in.Empty() {
		return nil, perr(at(), "data after the extensions")
	}
	var p parser
	end := p.size(ch, msg, cs, exts)
	// Repeated types: a scan over the usual ~20 extensions; past that (a
	// hostile hello may carry 16K empty ones) a bit set of the 2^16 types,
	// so the check stays linear in the hello's length.
	var seen *[1 << 10]uint64
	for i, e := range ch.Extensions {
		t := e.Type
		if seen == nil && i >= scanExtensions {
			seen = new([1 << 10]uint64)
			for _, e := range ch.Extensions[:i] {
				seen[e.Type>>6] |= 1 << (e.Type & 63)
			}
		}
		twice := false
		if seen != nil {
			twice = seen[t>>6]&(1<<(t&63)) != 0
			seen[t>>6] |= 1 << (t & 63)
		} else {
			twice = slices.ContainsFunc(ch.Extensions[:i], func(e Extension) bool { return e.Type == t })
		}
		if twice {
			return nil, &ParseError{Extension: int(t), Reason: "sent twice"}
		}
		if err := p.extension(ch, t, msg[e.Offset:int(e.Offset)+int(e.Len)]); err != nil {
			return nil, err
		}
	}
	if rest := len(exts) - end; rest > 0 {
		// The fault is where reading the extension's type and then its
		// length-prefixed data stops, as cryptobyte reads them.
		read := 0
		if rest >= 2 {
			read = min(rest, 4) &^ 1
		}
		return nil, perr(len(msg)-rest+read, "extension runs past the end")
	}
	return onHeap(ch), nil
}

func onHeap(ch *ClientHello) *ClientHello {
	out := new(ClientHello)
	*out = *ch
	return out
}

// parser holds what ParseHandshake sized in a first pass over the
// extensions, so that a hello costs a handful of allocations whatever its
// lists: one array for the extensions, one for every 16-bit list (cipher
// suites, groups, signature schemes, versions, key share groups), one
// string for the server name and the ALPN protocols, one slice of those.
type parser struct {
	u16 []uint16 // the 16-bit lists, one after the other
	// text is the data of the server_name extension followed by that of
	// the ALPN extension; names are substrings of it.
	text      string
	alpnAt    int // where the ALPN extension's data starts in text
	alpnCount int // protocols in the ALPN list
}

// size reads the framing of the extensions (exts, the end of msg): it
// records each whole extension in ch.Extensions and returns where the
// whole ones end (len(exts) unless the last runs past the end). It counts
// the values of their lists (bounded by the bytes given; the second pass
// validates), allocates for them, and reads the cipher suites. Reading the
// framing here, by index, spares the second pass two cursor reads per
// extension (pointer stores that cost write barriers while the garbage
// collector marks); the second pass reads each extension's content with
// cryptobyte.
func (p *parser) size(ch *ClientHello, msg, cs, exts []byte) (end int) {
	n, values := 0, len(cs)/2
	var sni, alpn []byte
	for off := 0; off+4 <= len(exts); n++ {
		t, l := binary.BigEndian.Uint16(exts[off:]), int(binary.BigEndian.Uint16(exts[off+2:]))
		if off+4+l > len(exts) {
			break
		}
		data := exts[off+4 : off+4+l]
		off += 4 + l
		end = off
		switch t {
		case 10, 13: // supported_groups, signature_algorithms
			values += max(l-2, 0) / 2
		case 43: // supported_versions
			values += max(l-1, 0) / 2
		case 51: // key_share: 2-byte group, 2-byte length, key
			for k := 2; k+4 <= l; k += 4 + int(binary.BigEndian.Uint16(data[k+2:])) {
				values++
			}
		case 0:
			if sni == nil {
				sni = data
			}
		case 16:
			if alpn == nil {
				alpn = data
				for k := 2; k < l; k += 1 + int(data[k]) {
					p.alpnCount++
				}
			}
		}
	}
	ch.Extensions = make([]Extension, n)
	base := len(msg) - len(exts)
	for i, off := 0, 0; i < n; i++ {
		l := binary.BigEndian.Uint16(exts[off+2:])
		ch.Extensions[i] = Extension{Type: binary.BigEndian.Uint16(exts[off:]), Len: l, Offset: uint32(base + off + 4)}
		off += 4 + int(l)
	}
	p.u16 = make([]uint16, 0, values)
	ch.CipherSuites = p.list(cs)
	if sni != nil || alpn != nil {
		p.text, p.alpnAt = string(sni)+string(alpn), len(sni)
	}
	return end
}

// list appends the big-endian 16-bit values of b to the parser's array and
// returns them (capped, so appending to one list cannot overwrite the next).
func (p *parser) list(b []byte) []uint16 {
	start := len(p.u16)
	for i := 0; i+1 < len(b); i += 2 {
		p.u16 = append(p.u16, binary.BigEndian.Uint16(b[i:]))
	}
	return p.u16[start:len(p.u16):len(p.u16)]
}

func u16s(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return out
}

// readU16List reads a length-prefixed list of 16-bit values (lenBytes 1 or
// 2), refusing an odd length.
func (p *parser) readU16List(in *cryptobyte.String, lenBytes int) ([]uint16, bool) {
	var l cryptobyte.String
	ok := false
	if lenBytes == 1 {
		ok = in.ReadUint8LengthPrefixed(&l)
	} else {
		ok = in.ReadUint16LengthPrefixed(&l)
	}
	if !ok || len(l)%2 != 0 {
		return nil, false
	}
	return p.list(l), true
}

// extension reads the extensions the fingerprints and the check use.
// Each must fill its data exactly.
func (p *parser) extension(ch *ClientHello, typ uint16, data []byte) error {
	in := cryptobyte.String(data)
	fail := func(reason string) error {
		return &ParseError{Extension: int(typ), Offset: len(data) - len(in), Reason: reason}
	}
	// substring returns b, a part of data, from text, whose part at base
	// is data (the first server_name and ALPN extensions are).
	substring := func(base int, b []byte) string {
		at := base + cap(data) - cap(b)
		return p.text[at : at+len(b)]
	}
	ok := true
	switch typ {
	case 0: // server_name
		var names cryptobyte.String
		if !in.ReadUint16LengthPrefixed(&names) {
			return fail("server name list runs past the end")
		}
		for !names.Empty() {
			var kind uint8
			var name cryptobyte.String
			if !names.ReadUint8(&kind) || !names.ReadUint16LengthPrefixed(&name) {
				return fail("host name runs past the end")
			}
			if kind == 0 && ch.ServerName == "" {
				ch.ServerName = substring(0, name)
			}
		}
	case 16: // ALPN
		var protos cryptobyte.String
		if !in.ReadUint16LengthPrefixed(&protos) {
			return fail("ALPN list runs past the end")
		}
		for !protos.Empty() {
			var pr cryptobyte.String
			if !protos.ReadUint8LengthPrefixed(&pr) {
				return fail("ALPN protocol runs past the end")
			}
			if ch.ALPN == nil {
				ch.ALPN = make([]string, 0, p.alpnCount)
			}
			ch.ALPN = append(ch.ALPN, substring(p.alpnAt, pr))
		}
	case 10: // supported_groups
		if ch.SupportedGroups, ok = p.readU16List(&in, 2); !ok {
			return fail("supported groups: odd length or past the end")
		}
	case 11: // ec_point_formats
		var pf cryptobyte.String
		if !in.ReadUint8LengthPrefixed(&pf) {
			return fail("point formats run past the end")
		}
		ch.PointFormats = pf
	case 13: // signature_algorithms
		if ch.SignatureSchemes, ok = p.readU16List(&in, 2); !ok {
			return fail("signature algorithms: odd length or past the end")
		}
	case 43: // supported_versions
		if ch.SupportedVersions, ok = p.readU16List(&in, 1); !ok {
			return fail("supported versions: odd length or past the end")
		}
	case 51: // key_share
		var shares cryptobyte.String
		if !in.ReadUint16LengthPrefixed(&shares) {
			return fail("key shares run past the end")
		}
		start := len(p.u16)
		for !shares.Empty() {
			var g uint16
			var key cryptobyte.String
			if !shares.ReadUint16(&g) || !shares.ReadUint16LengthPrefixed(&key) {
				return fail("key share runs past the end")
			}
			p.u16 = append(p.u16, g)
		}
		if len(p.u16) > start {
			ch.KeyShares = p.u16[start:len(p.u16):len(p.u16)]
		}
	case 21: // padding
		ch.PaddingLen = len(data)
		in = nil
	case 0xfe0d:
		ch.ECH = true
		in = nil
	default:
		in = nil // not read
	}
	if !in.Empty() {
		return fail("data after its content")
	}
	return nil
}

// Slim returns a copy of ch that keeps no byte of the message: the lists
// the fingerprints and a judgement read, without Raw, Random, SessionID and
// so the extensions' data (for a server that keeps it for a connection's
// life).
func (ch *ClientHello) Slim() *ClientHello {
	s := *ch
	s.Raw, s.Random, s.SessionID = nil, nil, nil
	s.Compression = slices.Clone(ch.Compression)
	s.PointFormats = slices.Clone(ch.PointFormats)
	return &s
}

// IsGREASE reports a GREASE value (RFC 8701): 0x?a?a with equal bytes.
func IsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// MaxVersion is the highest TLS version the client offers.
func (ch *ClientHello) MaxVersion() uint16 {
	best := ch.Version
	for _, v := range ch.SupportedVersions {
		if !IsGREASE(v) && v > best {
			best = v
		}
	}
	return best
}

// ExtensionTypes lists the extension types in order.
func (ch *ClientHello) ExtensionTypes() []uint16 {
	out := make([]uint16, len(ch.Extensions))
	for i, e := range ch.Extensions {
		out[i] = e.Type
	}
	return out
}
