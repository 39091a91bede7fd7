package tlshello

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// JA4 returns the JA4 fingerprint (FoxIO, BSD-3-Clause) and its raw form
// JA4_r: protocol, version, SNI, counts and ALPN, then a hash of the sorted
// cipher suites, then a hash of the sorted extensions (without SNI and ALPN)
// followed by the signature algorithms in order.
func (ch *ClientHello) JA4() (ja4, raw string) {
	var buf [1024]byte
	b, n := ch.appendJA4(buf[:0])
	s := string(b)
	return s[:n], s[n:]
}

// Fingerprints are a ClientHello's JA4, JA4_r, JA3 and the JA3's MD5.
type Fingerprints struct {
	JA4, JA4R, JA3, JA3Hash string
}

// Fingerprints computes the four fingerprints at once, into one string (a
// server computes them for every connection, and each allocation there is
// garbage to collect).
func (ch *ClientHello) Fingerprints() Fingerprints {
	var buf [1024]byte
	b, ja4 := ch.appendJA4(buf[:0])
	raw := len(b)
	b, ja3 := ch.appendJA3(b)
	s := string(b)
	return Fingerprints{JA4: s[:ja4], JA4R: s[ja4:raw], JA3: s[raw:ja3], JA3Hash: s[ja3:]}
}

// appendJA4 appends the JA4 and then the JA4_r, and returns where the
// JA4_r starts.
func (ch *ClientHello) appendJA4(b []byte) ([]byte, int) {
	// Fixed-size buffers keep the work on the stack: a fingerprint per
	// connection must not cost a garbage collection.
	var cs, es, ss [64]uint16
	ciphers, exts, sigs := cs[:0], es[:0], ss[:0]
	for _, c := range ch.CipherSuites {
		if !IsGREASE(c) {
			ciphers = append(ciphers, c)
		}
	}
	nExt, sni := 0, byte('i')
	for _, e := range ch.Extensions {
		if IsGREASE(e.Type) {
			continue
		}
		nExt++
		switch e.Type {
		case 0:
			sni = 'd'
		case 16:
		default:
			exts = append(exts, e.Type)
		}
	}
	for _, s := range ch.SignatureSchemes {
		if !IsGREASE(s) {
			sigs = append(sigs, s)
		}
	}
	slices.Sort(ciphers)
	slices.Sort(exts)
	start := len(b)
	b = append(b, 't')
	b = append(b, ja4Version(ch.MaxVersion())...)
	b = append(b, sni)
	b = appendTwoDigits(b, len(ciphers))
	b = appendTwoDigits(b, nExt)
	b = appendJA4ALPN(b, ch.ALPN)
	prefix := len(b) - start
	// The JA4 is the prefix and two hashes: of the raw form's cipher part
	// and of its extension part, which follow it in b.
	b = append(b, make([]byte, 2*13)...) // room for the hashes
	raw := len(b)
	b = append(b, b[start:start+prefix]...)
	b = append(b, '_')
	c := len(b)
	b = appendHexList(b, ciphers)
	e := len(b)
	b = append(b, '_')
	b = appendHexList(b, exts)
	if len(sigs) > 0 {
		b = appendHexList(append(b, '_'), sigs)
	}
	h := append(b[start+prefix:start+prefix], '_')
	h = appendHash12(h, b[c:e], len(ciphers) == 0)
	appendHash12(append(h, '_'), b[e+1:], len(exts) == 0)
	return b, raw
}

func appendTwoDigits(b []byte, n int) []byte {
	n = min(n, 99)
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// appendHexList appends values as 4-digit lowercase hex, comma separated.
func appendHexList(b []byte, vs []uint16) []byte {
	const digits = "0123456789abcdef"
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15])
	}
	return b
}

// appendHash12 appends the first 12 hex digits of the SHA-256 of s, or
// twelve zeros for an empty list, as JA4 does.
func appendHash12(b, s []byte, empty bool) []byte {
	if empty {
		return append(b, "000000000000"...)
	}
	sum := sha256.Sum256(s)
	var out [12]byte
	hex.Encode(out[:], sum[:6])
	return append(b, out[:]...)
}

func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	}
	return "00"
}

func appendJA4ALPN(b []byte, alpn []string) []byte {
	if len(alpn) == 0 || alpn[0] == "" {
		return append(b, "00"...)
	}
	a := alpn[0]
	alnum := func(b byte) bool {
		return b < 0x80 && (b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z')
	}
	if alnum(a[0]) && alnum(a[len(a)-1]) {
		return append(b, a[0], a[len(a)-1])
	}
	return append(b, "99"...) // as FoxIO's reference implementation does for a non-alphanumeric ALPN
}

// JA3 returns the JA3 string (Salesforce) and its MD5: legacy version,
// cipher suites, extensions, groups and point formats in order, GREASE
// removed, in decimal.
func (ch *ClientHello) JA3() (ja3, hash string) {
	var buf [512]byte
	b, n := ch.appendJA3(buf[:0])
	s := string(b)
	return s[:n], s[n:]
}

// appendJA3 appends the JA3 string and then its MD5 in hex, and returns
// where the MD5 starts.
func (ch *ClientHello) appendJA3(b []byte) ([]byte, int) {
	start := len(b)
	b = appendDecimal(b, ch.Version)
	list := func(vs []uint16) {
		b = append(b, ',')
		first := true
		for _, v := range vs {
			if IsGREASE(v) {
				continue
			}
			if !first {
				b = append(b, '-')
			}
			first = false
			b = appendDecimal(b, v)
		}
	}
	list(ch.CipherSuites)
	b = append(b, ',')
	first := true
	for _, e := range ch.Extensions {
		if IsGREASE(e.Type) {
			continue
		}
		if !first {
			b = append(b, '-')
		}
		first = false
		b = appendDecimal(b, e.Type)
	}
	list(ch.SupportedGroups)
	b = append(b, ',')
	for i, p := range ch.PointFormats {
		if i > 0 {
			b = append(b, '-')
		}
		b = appendDecimal(b, uint16(p))
	}
	sum := md5.Sum(b[start:])
	n := len(b)
	return hex.AppendEncode(b, sum[:]), n
}

// appendDecimal appends v in decimal, digit by digit: a JA3 string holds
// forty 16-bit values, and this costs a fraction of strconv's general path.
func appendDecimal(b []byte, v uint16) []byte {
	switch {
	case v < 10:
		return append(b, byte('0'+v))
	case v < 100:
		return append(b, byte('0'+v/10), byte('0'+v%10))
	case v < 1000:
		return append(b, byte('0'+v/100), byte('0'+v/10%10), byte('0'+v%10))
	case v < 10000:
		return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	return append(b, byte('0'+v/10000), byte('0'+v/1000%10), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}
