package check

import (
	"net"
	"strings"
	"testing"
)

func TestParseTargetForms(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.com/path":             "example.com 443",
		"https://example.com:8443/a?b#c":       "example.com 8443",
		"https://[2001:db8::1]:444/":           "2001:db8::1 444",
		"[::1]":                                "::1 443",
		"::1":                                  "::1 443",
		"HTTPS://Example.com":                  "Example.com 443",
		"https://en.wikipedia.org/wiki/Almaty": "en.wikipedia.org 443",
	} {
		h, p, err := ParseTarget(in)
		if err != nil || h+" "+p != want {
			t.Errorf("%q: %q %q %v, want %s", in, h, p, err, want)
		}
	}
	for in, reason := range map[string]string{
		"[::1":                   "unbalanced brackets",
		"::1]":                   "unbalanced brackets",
		"[::1]:":                 "port must be",
		"http://example.com/":    "only https://",
		"ftp://example.com/":     "only https://",
		"https://user:pw@x.com/": "credentials",
		"https:///path":          "empty host",
		":443":                   "empty host",
		"[]:443":                 "empty host",
		"[nothost]:443":          "not an IPv6 address",
		"1:2:3":                  "not an IPv6 address",
		"https://example.com:0/": "port must be",
		"example.com:65536":      "port must be",
	} {
		_, _, err := ParseTarget(in)
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want %q", in, err, reason)
		}
	}
	for in, want := range map[string]string{"127.0.0.1": "127.0.0.1:443", "::1": "[::1]:443", "[::1]:8443": "[::1]:8443", "host:1": "host:1"} {
		if got, err := ParseConnect(in, "443"); err != nil || got != want {
			t.Errorf("--connect %q: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"", ":443", "[::1", "[]", "a b"} {
		if _, err := ParseConnect(in, "443"); err == nil || !strings.Contains(err.Error(), "--connect") {
			t.Errorf("--connect %q: %v", in, err)
		}
	}
}

// FuzzParseTarget: any input is a target or an InputError; a target's host
// and port join into an address that parses back to the same.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"facebook.com", "[::1]:443", "[::1", "https://x.com/p", "::1", "a:b:c", "https://[fe80::1%25eth0]:8443/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := ParseTarget(s)
		if err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if host == "" || port == "" {
			t.Fatalf("%q: empty host or port", s)
		}
		h2, p2, err := ParseTarget(net.JoinHostPort(host, port))
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("%q: %q %q does not parse back: %q %q %v", s, host, port, h2, p2, err)
		}
	})
}
