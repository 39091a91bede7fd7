package winstore

import (
	"encoding/binary"
	"fmt"
)

// Property IDs of a serialized certificate blob (wincrypt.h).
const (
	propSHA1Hash = 3  // CERT_SHA1_HASH_PROP_ID
	propCert     = 32 // CERT_CERT_PROP_ID: the certificate's DER
)

// maxBlobProps bounds the records of one blob; real blobs have a handful.
const maxBlobProps = 256

// BlobError says why a serialized certificate blob could not be decoded;
// Offset is the byte offset in the blob of the record at fault.
type BlobError struct {
	Offset int
	Reason string
}

func (e *BlobError) Error() string {
	return fmt.Sprintf("winstore: certificate blob at byte %d: %s", e.Offset, e.Reason)
}

// DecodeBlob returns the certificate DER held in a serialized certificate
// blob: records of (uint32 property ID, uint32 reserved, uint32 length,
// data), little-endian, one of which is CERT_CERT_PROP_ID. The DER is a
// sub-slice of b.
func DecodeBlob(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	var der []byte
	for off, n := 0, 0; off < len(b); n++ {
		if n == maxBlobProps {
			return nil, &BlobError{Offset: off, Reason: fmt.Sprintf("more than %d properties", maxBlobProps)}
		}
		if len(b)-off < 12 {
			return nil, &BlobError{Offset: off, Reason: "truncated property header"}
		}
		id, size := le.Uint32(b[off:]), le.Uint32(b[off+8:])
		if uint64(size) > uint64(len(b)-off-12) {
			return nil, &BlobError{Offset: off, Reason: fmt.Sprintf("property %d of %d bytes overruns the blob", id, size)}
		}
		data := b[off+12 : off+12+int(size)]
		if id == propCert {
			if der != nil {
				return nil, &BlobError{Offset: off, Reason: "two certificates in one blob"}
			}
			der = data
		}
		off += 12 + int(size)
	}
	if der == nil {
		return nil, &BlobError{Offset: len(b), Reason: "no certificate property"}
	}
	return der, nil
}
