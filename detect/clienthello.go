package detect

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	Offset int
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("detect: ClientHello: %s (at byte %d)", e.Reason, e.Offset)
}

// ErrIncomplete is returned for input that ends before the ClientHello does.
var ErrIncomplete = errors.New("detect: ClientHello: incomplete (more records needed)")

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
	var r reassembler
	msg, err := r.feed(data)
	return msg, r.off, err
}

// maxRecord is the largest TLS record a client may send (2^14 plus the
// allowance RFC 8446 gives).
const maxRecord = 1<<14 + 2048

// reassembler joins the handshake fragments of successive records. It
// remembers what it has consumed, so feeding it a connection's bytes as they
// arrive costs time linear in them, however small the records: a client that
// sends its hello one byte per record cannot make the server's work grow
// with the square of it.
type reassembler struct {
	off     int // bytes consumed: whole records
	records int
	msg     []byte
	want    int // length of the handshake message, 0 until known
}

// feed consumes the complete records of data past what it consumed before;
// data must extend the bytes of earlier calls.
func (r *reassembler) feed(data []byte) ([]byte, error) {
	for {
		if r.want > 0 && len(r.msg) >= r.want {
			return r.msg[:r.want], nil
		}
		if r.records > MaxRecords {
			return nil, &ParseError{r.off, "too many records"}
		}
		if len(data)-r.off < 5 {
			return nil, ErrIncomplete
		}
		typ, length := data[r.off], int(binary.BigEndian.Uint16(data[r.off+3:]))
		if typ != 22 {
			return nil, &ParseError{r.off, fmt.Sprintf("record type %d, want handshake (22)", typ)}
		}
		if length > maxRecord {
			return nil, &ParseError{r.off, fmt.Sprintf("record length %d exceeds the TLS limit", length)}
		}
		if len(data)-r.off-5 < length {
			return nil, ErrIncomplete
		}
		r.msg = append(r.msg, data[r.off+5:r.off+5+length]...)
		r.off += 5 + length
		r.records++
		if r.want == 0 && len(r.msg) >= 4 {
			if r.msg[0] != 1 {
				return nil, &ParseError{5, fmt.Sprintf("handshake type %d, want ClientHello (1)", r.msg[0])}
			}
			r.want = 4 + (int(r.msg[1])<<16 | int(r.msg[2])<<8 | int(r.msg[3]))
			if r.want > MaxHandshake {
				return nil, &ParseError{6, fmt.Sprintf("handshake length %d exceeds %d", r.want, MaxHandshake)}
			}
		}
		if len(r.msg) > MaxHandshake+maxRecord {
			return nil, &ParseError{r.off, "handshake data exceeds the limit"}
		}
	}
}

// Parse parses the raw bytes of the first TLS records of a connection.
func Parse(data []byte) (*ClientHello, error) {
	msg, _, err := Reassemble(data)
	if err != nil {
		return nil, err
	}
	return parseRecords(data, msg)
}

// parseRecords parses the reassembled message of the records in data.
func parseRecords(data, msg []byte) (*ClientHello, error) {
	ch, err := ParseHandshake(msg)
	if err != nil {
		return nil, err
	}
	ch.RecordVersion = binary.BigEndian.Uint16(data[1:3])
	return ch, nil
}

// reader is a bounds-checked cursor; the first failure sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(reason string) {
	if r.err == nil {
		r.err = &ParseError{r.off, reason}
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(what + " runs past the end")
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out
}

func (r *reader) u8(what string) int {
	b := r.bytes(1, what)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16(what string) int {
	b := r.bytes(2, what)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func u16s(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return out
}

// ParseHandshake parses a ClientHello handshake message (type 1, 3-byte
// length, body). It never panics, whatever the bytes.
func ParseHandshake(msg []byte) (*ClientHello, error) {
	r := &reader{b: msg}
	if r.u8("handshake type") != 1 {
		return nil, &ParseError{0, "not a ClientHello"}
	}
	n := r.u8("length")<<16 | r.u16("length")
	if r.err == nil && n != len(msg)-4 {
		return nil, &ParseError{1, fmt.Sprintf("handshake length %d, have %d bytes", n, len(msg)-4)}
	}
	ch := &ClientHello{Raw: msg, PaddingLen: -1}
	ch.Version = uint16(r.u16("version"))
	ch.Random = r.bytes(32, "random")
	ch.SessionID = r.bytes(r.u8("session id length"), "session id")
	cs := r.bytes(r.u16("cipher suites length"), "cipher suites")
	if len(cs)%2 != 0 {
		r.fail("odd cipher suites length")
	}
	ch.CipherSuites = u16s(cs)
	ch.Compression = r.bytes(r.u8("compression methods length"), "compression methods")
	if r.err != nil {
		return nil, r.err
	}
	if r.off == len(msg) {
		return ch, nil // no extensions: a TLS 1.0-era hello
	}
	exts := &reader{b: r.bytes(r.u16("extensions length"), "extensions"), off: 0}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(msg) {
		return nil, &ParseError{r.off, "data after the extensions"}
	}
	// Count first, so the slice is allocated once (a hello has ~15-20).
	n = 0
	for off := 0; off+4 <= len(exts.b); n++ {
		off += 4 + int(binary.BigEndian.Uint16(exts.b[off+2:]))
	}
	ch.Extensions = make([]Extension, 0, n)
	for exts.off < len(exts.b) && exts.err == nil {
		typ := uint16(exts.u16("extension type"))
		data := exts.bytes(exts.u16("extension length"), "extension data")
		if exts.err != nil {
			break
		}
		ch.Extensions = append(ch.Extensions, Extension{Type: typ, Data: data})
		if err := ch.parseExtension(typ, data); err != nil {
			return nil, err
		}
	}
	if exts.err != nil {
		return nil, exts.err
	}
	return ch, nil
}

// vec reads a vector with a 1- or 2-byte length prefix.
func (r *reader) vec(lenBytes int, what string) []byte {
	n := r.u8(what)
	if lenBytes == 2 {
		n = n<<8 | r.u8(what)
	}
	return r.bytes(n, what)
}

func (ch *ClientHello) parseExtension(typ uint16, data []byte) error {
	r := reader{b: data}
	switch typ {
	case 0: // server_name
		names := reader{b: r.vec(2, "server name list")}
		for names.off < len(names.b) && names.err == nil {
			kind := names.u8("name type")
			name := names.bytes(names.u16("name length"), "host name")
			if kind == 0 && ch.ServerName == "" {
				ch.ServerName = string(name)
			}
		}
		r.err = firstErr(r.err, names.err)
	case 16: // ALPN
		protos := reader{b: r.vec(2, "ALPN list")}
		for protos.off < len(protos.b) && protos.err == nil {
			if p := protos.bytes(protos.u8("protocol length"), "protocol"); protos.err == nil {
				ch.ALPN = append(ch.ALPN, string(p))
			}
		}
		r.err = firstErr(r.err, protos.err)
	case 10: // supported_groups
		ch.SupportedGroups = u16s(r.vec(2, "supported groups"))
	case 11: // ec_point_formats
		ch.PointFormats = r.vec(1, "point formats")
	case 13: // signature_algorithms
		ch.SignatureSchemes = u16s(r.vec(2, "signature algorithms"))
	case 43: // supported_versions
		ch.SupportedVersions = u16s(r.vec(1, "supported versions"))
	case 51: // key_share
		shares := reader{b: r.vec(2, "key shares")}
		for shares.off < len(shares.b) && shares.err == nil {
			g := shares.u16("key share group")
			shares.bytes(shares.u16("key share length"), "key share")
			if shares.err == nil {
				ch.KeyShares = append(ch.KeyShares, uint16(g))
			}
		}
		r.err = firstErr(r.err, shares.err)
	case 21: // padding
		ch.PaddingLen = len(data)
	case 0xfe0d:
		ch.ECH = true
	}
	if r.err != nil {
		return fmt.Errorf("detect: ClientHello: extension %d: %w", typ, r.err)
	}
	return nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
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
