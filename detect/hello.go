package detect

import "github.com/mitmguard/mitmguard/detect/tlshello"

// The ClientHello reader and its fingerprints live in package tlshello;
// these names keep detect's API whole for callers that judge hellos.

// ClientHello is a parsed TLS ClientHello (see tlshello.ClientHello).
type ClientHello = tlshello.ClientHello

// Extension is one ClientHello extension, in the order sent.
type Extension = tlshello.Extension

// ParseError says what is wrong with the bytes and where.
type ParseError = tlshello.ParseError

// ErrIncomplete is returned for input that ends before the ClientHello does.
var ErrIncomplete = tlshello.ErrIncomplete

// Limits on input from outside (see tlshello).
const (
	MaxHandshake = tlshello.MaxHandshake
	MaxRecords   = tlshello.MaxRecords
)

// Parse parses the raw bytes of the first TLS records of a connection.
func Parse(data []byte) (*ClientHello, error) { return tlshello.Parse(data) }

// IsGREASE reports a GREASE value (RFC 8701).
func IsGREASE(v uint16) bool { return tlshello.IsGREASE(v) }
