package measure

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// The traits of a forged certificate, compared with the server's own. The
// 2019 Kazakh box showed all of them (DESIGN.md, the IMC 2020 paper).
const (
	TraitCopiedNames        = "copied-names"          // Subject and SAN equal to the real certificate's
	TraitOtherKey           = "other-key"             // ... on another key
	TraitValidityShifted    = "validity-shifted"      // notBefore/notAfter moved by whole hours
	TraitExtensionsStripped = "extensions-stripped"   // key usage, EKU, basic constraints gone
	TraitRSAExponent3       = "rsa-e3"                // RSA public exponent 3
	TraitSerialKept         = "serial-high-bits-kept" // the serial but for its low 33 bits
)

// Traits compares a test leaf with the control's leaf and lists the
// forger's traits it shows. The result is empty when either is missing.
func Traits(test, real *x509.Certificate) []string {
	if test == nil || real == nil || bytes.Equal(test.Raw, real.Raw) {
		return nil
	}
	var out []string
	if bytes.Equal(test.RawSubject, real.RawSubject) && slices.Equal(test.DNSNames, real.DNSNames) {
		out = append(out, TraitCopiedNames)
	}
	if !bytes.Equal(test.RawSubjectPublicKeyInfo, real.RawSubjectPublicKeyInfo) {
		out = append(out, TraitOtherKey)
	}
	if d := real.NotBefore.Sub(test.NotBefore); d != 0 && d%time.Hour == 0 && real.NotAfter.Sub(test.NotAfter) == d {
		out = append(out, fmt.Sprintf("%s:%s", TraitValidityShifted, d))
	}
	if has := func(c *x509.Certificate) int {
		n := 0
		if c.KeyUsage != 0 {
			n++
		}
		if len(c.ExtKeyUsage) > 0 {
			n++
		}
		if c.BasicConstraintsValid {
			n++
		}
		return n
	}; has(test) == 0 && has(real) > 0 {
		out = append(out, TraitExtensionsStripped)
	}
	if k, ok := test.PublicKey.(*rsa.PublicKey); ok && k.E == 3 {
		out = append(out, TraitRSAExponent3)
	}
	if test.SerialNumber != nil && real.SerialNumber != nil && test.SerialNumber.Cmp(real.SerialNumber) != 0 &&
		new(big.Int).Rsh(test.SerialNumber, 33).Cmp(new(big.Int).Rsh(real.SerialNumber, 33)) == 0 && real.SerialNumber.BitLen() > 40 {
		out = append(out, TraitSerialKept)
	}
	return out
}

// forged reports traits that only a forger explains: the real certificate's
// names on another key, plus at least one of the box's habits.
func forged(traits []string) bool {
	if !slices.Contains(traits, TraitCopiedNames) || !slices.Contains(traits, TraitOtherKey) {
		return false
	}
	for _, t := range traits {
		switch {
		case t == TraitExtensionsStripped, t == TraitRSAExponent3, t == TraitSerialKept,
			len(t) > len(TraitValidityShifted) && t[:len(TraitValidityShifted)] == TraitValidityShifted:
			return true
		}
	}
	return false
}
