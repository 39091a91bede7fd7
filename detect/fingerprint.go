package detect

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// JA4 returns the JA4 fingerprint (FoxIO, BSD-3-Clause) and its raw form
// JA4_r: protocol, version, SNI, counts and ALPN, then a hash of the sorted
// cipher suites, then a hash of the sorted extensions (without SNI and ALPN)
// followed by the signature algorithms in order.
func (ch *ClientHello) JA4() (ja4, raw string) {
	var ciphers, exts []string
	for _, c := range ch.CipherSuites {
		if !IsGREASE(c) {
			ciphers = append(ciphers, fmt.Sprintf("%04x", c))
		}
	}
	nExt := 0
	sni := "i"
	for _, e := range ch.Extensions {
		if IsGREASE(e.Type) {
			continue
		}
		nExt++
		switch e.Type {
		case 0:
			sni = "d"
		case 16:
		default:
			exts = append(exts, fmt.Sprintf("%04x", e.Type))
		}
	}
	var sigs []string
	for _, s := range ch.SignatureSchemes {
		if !IsGREASE(s) {
			sigs = append(sigs, fmt.Sprintf("%04x", s))
		}
	}
	sort.Strings(ciphers)
	sort.Strings(exts)
	prefix := fmt.Sprintf("t%s%s%02d%02d%s", ja4Version(ch.MaxVersion()), sni, min(len(ciphers), 99), min(nExt, 99), ja4ALPN(ch.ALPN))
	c := strings.Join(ciphers, ",")
	e := strings.Join(exts, ",")
	if len(sigs) > 0 {
		e += "_" + strings.Join(sigs, ",")
	}
	return prefix + "_" + hash12(c, len(ciphers) == 0) + "_" + hash12(e, len(exts) == 0), prefix + "_" + c + "_" + e
}

func hash12(s string, empty bool) string {
	if empty {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
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

func ja4ALPN(alpn []string) string {
	if len(alpn) == 0 || alpn[0] == "" {
		return "00"
	}
	a := alpn[0]
	alnum := func(b byte) bool { return b < 0x80 && (b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z') }
	if alnum(a[0]) && alnum(a[len(a)-1]) {
		return string([]byte{a[0], a[len(a)-1]})
	}
	return "99" // as FoxIO's reference implementation does for a non-alphanumeric ALPN
}

// JA3 returns the JA3 string (Salesforce) and its MD5: legacy version,
// cipher suites, extensions, groups and point formats in order, GREASE
// removed, in decimal.
func (ch *ClientHello) JA3() (ja3, hash string) {
	join16 := func(vs []uint16) string {
		var out []string
		for _, v := range vs {
			if !IsGREASE(v) {
				out = append(out, strconv.Itoa(int(v)))
			}
		}
		return strings.Join(out, "-")
	}
	pf := make([]string, len(ch.PointFormats))
	for i, p := range ch.PointFormats {
		pf[i] = strconv.Itoa(int(p))
	}
	s := fmt.Sprintf("%d,%s,%s,%s,%s", ch.Version, join16(ch.CipherSuites), join16(ch.ExtensionTypes()), join16(ch.SupportedGroups), strings.Join(pf, "-"))
	sum := md5.Sum([]byte(s))
	return s, hex.EncodeToString(sum[:])
}
