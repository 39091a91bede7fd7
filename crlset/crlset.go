// Package crlset reads and writes Chrome's CRLSet format, the list Chrome
// updates between releases to block certificates and keys, and where it
// marks known interception roots: a little-endian uint16 header length, a
// JSON header (with BlockedSPKIs, KnownInterceptionSPKIs and
// BlockedInterceptionSPKIs as base64 SHA-256 of SubjectPublicKeyInfo), then
// records of an issuer SPKI hash, a little-endian uint32 serial count and
// length-prefixed serials. mitmguard writes its blocklist in this format and
// reads Chrome's to compare the interception keys with its own.
package crlset

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Limits on a CRLSet read from outside (Chrome's are about 250 KB).
const (
	MaxSize    = 16 << 20
	MaxSerials = 1 << 20
)

// Header is the JSON header.
type Header struct {
	Version                  int                 `json:"Version"`
	ContentType              string              `json:"ContentType"`
	Sequence                 int64               `json:"Sequence"`
	DeltaFrom                int64               `json:"DeltaFrom"`
	NumParents               int                 `json:"NumParents"`
	BlockedSPKIs             []string            `json:"BlockedSPKIs"`
	KnownInterceptionSPKIs   []string            `json:"KnownInterceptionSPKIs,omitempty"`
	BlockedInterceptionSPKIs []string            `json:"BlockedInterceptionSPKIs,omitempty"`
	NotAfter                 int64               `json:"NotAfter,omitempty"`
	LimitedSubjects          map[string][]string `json:"LimitedSubjects,omitempty"`
}

// Parent is the serials revoked under one issuer key.
type Parent struct {
	SPKIHash [32]byte
	Serials  [][]byte
}

// CRLSet is a parsed CRLSet.
type CRLSet struct {
	Header  Header
	Parents []Parent
}

// Error says what is wrong with a CRLSet and where.
type Error struct {
	Offset int
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("crlset: %s (at byte %d)", e.Reason, e.Offset) }

// Parse reads a CRLSet. It never panics and allocates no more than the input
// justifies.
func Parse(data []byte) (*CRLSet, error) {
	if len(data) > MaxSize {
		return nil, &Error{0, "larger than the limit"}
	}
	in := cryptobyte.String(data)
	var hl uint16
	if !readUint16LE(&in, &hl) {
		return nil, &Error{0, "too short for a header length"}
	}
	var header []byte
	if !in.ReadBytes(&header, int(hl)) {
		return nil, &Error{2, fmt.Sprintf("header length %d runs past the end", hl)}
	}
	c := &CRLSet{}
	dec := json.NewDecoder(bytes.NewReader(header))
	if err := dec.Decode(&c.Header); err != nil {
		return nil, &Error{2, "header: " + err.Error()}
	}
	if c.Header.ContentType != "CRLSet" {
		return nil, &Error{2, fmt.Sprintf("content type %q, want CRLSet", c.Header.ContentType)}
	}
	for _, list := range [][]string{c.Header.BlockedSPKIs, c.Header.KnownInterceptionSPKIs, c.Header.BlockedInterceptionSPKIs} {
		for _, s := range list {
			if b, err := base64.StdEncoding.DecodeString(s); err != nil || len(b) != 32 {
				return nil, &Error{2, fmt.Sprintf("SPKI hash %q is not base64 of 32 bytes", s)}
			}
		}
	}
	serials := 0
	for !in.Empty() {
		off := len(data) - len(in)
		var p Parent
		var spki []byte
		var n uint32
		if !in.ReadBytes(&spki, 32) || !readUint32LE(&in, &n) {
			return nil, &Error{off, "truncated parent record"}
		}
		copy(p.SPKIHash[:], spki)
		// Each serial takes at least its length byte.
		if int64(n) > int64(len(in)) || serials+int(n) > MaxSerials {
			return nil, &Error{off + 32, fmt.Sprintf("serial count %d does not fit", n)}
		}
		serials += int(n)
		p.Serials = make([][]byte, 0, n)
		for range n {
			off := len(data) - len(in)
			var serial cryptobyte.String
			if !in.ReadUint8LengthPrefixed(&serial) {
				return nil, &Error{off, "serial runs past the end"}
			}
			p.Serials = append(p.Serials, serial)
		}
		c.Parents = append(c.Parents, p)
	}
	if c.Header.NumParents != len(c.Parents) {
		return nil, &Error{len(data), fmt.Sprintf("header says %d parents, found %d", c.Header.NumParents, len(c.Parents))}
	}
	return c, nil
}

// readUint16LE and readUint32LE read the format's little-endian integers
// (cryptobyte reads big-endian ones).
func readUint16LE(s *cryptobyte.String, out *uint16) bool {
	var b []byte
	if !s.ReadBytes(&b, 2) {
		return false
	}
	*out = binary.LittleEndian.Uint16(b)
	return true
}

func readUint32LE(s *cryptobyte.String, out *uint32) bool {
	var b []byte
	if !s.ReadBytes(&b, 4) {
		return false
	}
	*out = binary.LittleEndian.Uint32(b)
	return true
}

// MaxHeaderSize is the longest JSON header the format can carry: its length
// is a uint16. At 47 bytes per key in the header, a CRLSet holds about
// 1,390 blocked or interception keys at most.
const MaxHeaderSize = 0xffff

// HeaderTooLongError is a CRLSet whose header does not fit the format.
type HeaderTooLongError struct {
	Size int // bytes the header would take
	Keys int // keys listed in it
}

func (e *HeaderTooLongError) Error() string {
	return fmt.Sprintf("crlset: the header would take %d bytes for %d keys; the CRLSet format holds at most %d bytes (about %d keys)",
		e.Size, e.Keys, MaxHeaderSize, MaxHeaderSize/47)
}

// Marshal writes the CRLSet. A header longer than the format allows is a
// *HeaderTooLongError, never a length that wraps.
func (c *CRLSet) Marshal() ([]byte, error) {
	h := c.Header
	h.NumParents = len(c.Parents)
	if h.ContentType == "" {
		h.ContentType = "CRLSet"
	}
	if h.BlockedSPKIs == nil {
		h.BlockedSPKIs = []string{}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(hj) > MaxHeaderSize {
		return nil, &HeaderTooLongError{Size: len(hj), Keys: len(h.BlockedSPKIs) + len(h.KnownInterceptionSPKIs) + len(h.BlockedInterceptionSPKIs)}
	}
	out := binary.LittleEndian.AppendUint16(nil, uint16(len(hj)))
	out = append(out, hj...)
	for _, p := range c.Parents {
		out = append(out, p.SPKIHash[:]...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p.Serials)))
		for _, s := range p.Serials {
			if len(s) > 255 {
				return nil, errors.New("crlset: serial longer than 255 bytes")
			}
			out = append(out, byte(len(s)))
			out = append(out, s...)
		}
	}
	return out, nil
}

// InterceptionSPKIs returns the SHA-256 hashes (hex) of every key the CRLSet
// marks as interception, blocked or not, and whether each is blocked.
func (c *CRLSet) InterceptionSPKIs() map[string]bool {
	out := map[string]bool{}
	add := func(list []string, blocked bool) {
		for _, s := range list {
			b, _ := base64.StdEncoding.DecodeString(s)
			out[fmt.Sprintf("%x", b)] = out[fmt.Sprintf("%x", b)] || blocked
		}
	}
	add(c.Header.KnownInterceptionSPKIs, false)
	add(c.Header.BlockedInterceptionSPKIs, true)
	return out
}
