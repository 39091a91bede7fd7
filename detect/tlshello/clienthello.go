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

// Extension is one ClientHello extension, in the order sent.
type Extension struct {
	Type uint16
	Data []byte
}

// ClientHello is a parsed TLS ClientHello.
type ClientHello struct {
	Raw               []byte // the handshake message (type, length, body)
	RecordVersion     uint16
	Version           uint16 // legacy_version
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
	ECH               bool     // encrypted_client_hello (0xfe0d) present
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
	ch := &ClientHello{Raw: msg, PaddingLen: -1}
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
	ch.CipherSuites = u16s(cs)
	if in.Empty() {
		return ch, nil // no extensions: a TLS 1.0-era hello
	}
	if !in.ReadUint16LengthPrefixed(&exts) {
		return nil, perr(at(), "extensions run past the end")
	}
	if !in.Empty() {
		return nil, perr(at(), "data after the extensions")
	}
	// Count first, so the slice is allocated once (a hello has ~15-20).
	n := 0
	for off := 0; off+4 <= len(exts); n++ {
		off += 4 + int(binary.BigEndian.Uint16(exts[off+2:]))
	}
	ch.Extensions = make([]Extension, 0, n)
	// Repeated types: a scan over the usual ~20 extensions; past that (a
	// hostile hello may carry 16K empty ones) a bit set of the 2^16 types,
	// so the check stays linear in the hello's length.
	var seen *[1 << 10]uint64
	for !exts.Empty() {
		var t uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&t) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, perr(len(msg)-len(exts), "extension runs past the end")
		}
		if seen == nil && len(ch.Extensions) >= scanExtensions {
			seen = new([1 << 10]uint64)
			for _, e := range ch.Extensions {
				seen[e.Type>>6] |= 1 << (e.Type & 63)
			}
		}
		twice := false
		if seen != nil {
			twice = seen[t>>6]&(1<<(t&63)) != 0
			seen[t>>6] |= 1 << (t & 63)
		} else {
			twice = slices.ContainsFunc(ch.Extensions, func(e Extension) bool { return e.Type == t })
		}
		if twice {
			return nil, &ParseError{Extension: int(t), Reason: "sent twice"}
		}
		ch.Extensions = append(ch.Extensions, Extension{Type: t, Data: data})
		if err := ch.parseExtension(t, data); err != nil {
			return nil, err
		}
	}
	return ch, nil
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
func readU16List(in *cryptobyte.String, lenBytes int) ([]uint16, bool) {
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
	return u16s(l), true
}

// parseExtension reads the extensions the fingerprints and the check use.
// Each must fill its data exactly.
func (ch *ClientHello) parseExtension(typ uint16, data []byte) error {
	in := cryptobyte.String(data)
	fail := func(reason string) error {
		return &ParseError{Extension: int(typ), Offset: len(data) - len(in), Reason: reason}
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
				ch.ServerName = string(name)
			}
		}
	case 16: // ALPN
		var protos cryptobyte.String
		if !in.ReadUint16LengthPrefixed(&protos) {
			return fail("ALPN list runs past the end")
		}
		for !protos.Empty() {
			var p cryptobyte.String
			if !protos.ReadUint8LengthPrefixed(&p) {
				return fail("ALPN protocol runs past the end")
			}
			ch.ALPN = append(ch.ALPN, string(p))
		}
	case 10: // supported_groups
		if ch.SupportedGroups, ok = readU16List(&in, 2); !ok {
			return fail("supported groups: odd length or past the end")
		}
	case 11: // ec_point_formats
		var pf cryptobyte.String
		if !in.ReadUint8LengthPrefixed(&pf) {
			return fail("point formats run past the end")
		}
		ch.PointFormats = pf
	case 13: // signature_algorithms
		if ch.SignatureSchemes, ok = readU16List(&in, 2); !ok {
			return fail("signature algorithms: odd length or past the end")
		}
	case 43: // supported_versions
		if ch.SupportedVersions, ok = readU16List(&in, 1); !ok {
			return fail("supported versions: odd length or past the end")
		}
	case 51: // key_share
		var shares cryptobyte.String
		if !in.ReadUint16LengthPrefixed(&shares) {
			return fail("key shares run past the end")
		}
		for !shares.Empty() {
			var g uint16
			var key cryptobyte.String
			if !shares.ReadUint16(&g) || !shares.ReadUint16LengthPrefixed(&key) {
				return fail("key share runs past the end")
			}
			ch.KeyShares = append(ch.KeyShares, g)
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
// the extensions' data (for a server that keeps it for a connection's life).
func (ch *ClientHello) Slim() *ClientHello {
	s := *ch
	s.Raw, s.Random, s.SessionID = nil, nil, nil
	s.Compression = slices.Clone(ch.Compression)
	s.PointFormats = slices.Clone(ch.PointFormats)
	s.Extensions = make([]Extension, len(ch.Extensions))
	for i, e := range ch.Extensions {
		s.Extensions[i].Type = e.Type
	}
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
