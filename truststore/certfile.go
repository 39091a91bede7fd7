package truststore

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/mitmguard/mitmguard/chain"
)

// maxCertsPerFile bounds one bundle; real ones hold about 150.
const maxCertsPerFile = 10000

// ParseCertFile reads the certificates of one file: a PEM bundle (with
// comments, p11-kit object headers, or OpenSSL TRUSTED CERTIFICATE blocks)
// or a single DER certificate. It returns every certificate it could read
// and a problem for each part it could not: garbage between blocks, a block
// that is not a certificate. It never fails as a whole; an unreadable file
// gives no certificates and a problem.
func ParseCertFile(data []byte) ([]*chain.Cert, []error) {
	if !bytes.Contains(data, begin) {
		c, err := chain.NewCert(data)
		if err != nil {
			return nil, []error{errors.New("neither a PEM file nor a DER certificate")}
		}
		return []*chain.Cert{c}, nil
	}
	var certs []*chain.Cert
	var problems []error
	rest := data
	for n := 1; len(rest) > 0; n++ {
		block, after := pem.Decode(rest)
		if block == nil {
			if junk := garbage(rest); junk > 0 {
				problems = append(problems, fmt.Errorf("%d bytes of unreadable data after the last certificate", junk))
			}
			break
		}
		if junk := garbage(rest); junk > 0 { // garbage stops at the first BEGIN line
			problems = append(problems, fmt.Errorf("%d bytes of unreadable data before block %d", junk, n))
		}
		consumed := rest[:len(rest)-len(after)]
		if bytes.Index(consumed, begin) != bytes.LastIndex(consumed, begin) {
			// pem.Decode skipped a block it could not decode.
			problems = append(problems, fmt.Errorf("block %d is not valid PEM (damaged base64 or missing END line)", n))
			n++
		}
		rest = after
		if block.Type != "CERTIFICATE" && block.Type != "TRUSTED CERTIFICATE" && block.Type != "X509 CERTIFICATE" {
			continue // keys, CRLs and the like are not roots
		}
		der := block.Bytes
		if block.Type == "TRUSTED CERTIFICATE" {
			der = firstElement(der) // OpenSSL appends its trust settings
		}
		c, err := chain.NewCert(der)
		if err != nil {
			problems = append(problems, fmt.Errorf("block %d: %v", n, err))
			continue
		}
		if len(certs) == maxCertsPerFile {
			problems = append(problems, fmt.Errorf("more than %d certificates; the rest is ignored", maxCertsPerFile))
			break
		}
		certs = append(certs, c)
	}
	return certs, problems
}

var begin = []byte("-----BEGIN")

// garbage counts the bytes of text before a PEM block that are neither white
// space, comments (#), nor p11-kit object headers ("[p11-kit-object-v1]",
// "key: value"). pem.Decode skips such text silently; a corrupted bundle must
// not.
func garbage(text []byte) int {
	if i := bytes.Index(text, begin); i >= 0 {
		text = text[:i]
	}
	n := 0
	for _, line := range bytes.Split(text, []byte("\n")) {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0, line[0] == '#',
			line[0] == '[' && line[len(line)-1] == ']',
			bytes.Contains(line, []byte(": ")):
			continue
		}
		n += len(line)
	}
	return n
}

// firstElement returns the first DER element of b (the certificate of an
// OpenSSL TRUSTED CERTIFICATE), or b itself when it cannot be read.
func firstElement(b []byte) []byte {
	s := cryptobyte.String(b)
	var el cryptobyte.String
	if !s.ReadASN1Element(&el, asn1.SEQUENCE) {
		return b
	}
	return el
}
