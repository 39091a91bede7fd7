package verdict

import (
	"net"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// specialSuffixes are names that never belong to the public DNS (RFC 6761,
// RFC 6762, RFC 8375, and the widely used internal conventions).
var specialSuffixes = []string{"localhost", "local", "internal", "lan", "home.arpa", "test", "example", "invalid", "onion", "intranet", "corp"}

// IsPublicName reports whether name is a domain name under a public suffix
// that anyone could get a certificate for from a public CA: not an IP
// address, not localhost, not a reserved or internal name, not a bare public
// suffix. Only such a name makes an untrusted certificate evidence of
// interception; a private name with a private CA is ordinary.
func IsPublicName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	name = strings.TrimPrefix(name, "*.")
	if name == "" || net.ParseIP(name) != nil || !strings.Contains(name, ".") {
		return false
	}
	for _, s := range specialSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return false
		}
	}
	suffix, icann := publicsuffix.PublicSuffix(name)
	if !icann && !strings.Contains(suffix, ".") {
		return false // no rule matched: an unknown top-level domain
	}
	return suffix != name
}
