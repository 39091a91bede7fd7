package detect

import (
	"strconv"
	"strings"
)

// Browser is what a User-Agent claims.
type Browser struct {
	Family string `json:"family"` // chrome, edge, opera, firefox, safari, ie, or "" when not a browser
	Major  int    `json:"major"`
	OS     string `json:"os"`
	Mobile bool   `json:"mobile"`
	// Stack is the TLS implementation that browser uses on that OS:
	// chromium (BoringSSL), firefox (NSS), safari (Apple's), or "".
	// Every browser on iOS uses Apple's.
	Stack string `json:"tls_stack"`
}

// uaRules are tried in order: a Chromium-based browser names Chrome too,
// and every browser names Safari. Each token is followed by the major version.
var uaRules = []struct {
	family, stack string
	tokens        []string
}{
	{"edge", "chromium", []string{"Edg/", "EdgA/", "EdgiOS/", "Edge/"}},
	{"opera", "chromium", []string{"OPR/"}},
	{"samsung", "chromium", []string{"SamsungBrowser/"}},
	{"ucbrowser", "", []string{"UCBrowser/"}}, // its own engines over the years: judged on mitmengine's records only
	{"silk", "", []string{"Silk/"}},
	{"chrome", "chromium", []string{"Chrome/", "CriOS/"}},
	{"firefox", "firefox", []string{"Firefox/", "FxiOS/"}},
	{"safari", "safari", []string{"Version/"}}, // with "Safari/", checked below
	{"ie", "", []string{"MSIE ", "rv:"}},       // with "Trident/" for rv:
}

// versionAfter returns the number that follows the first token found in ua.
func versionAfter(ua string, tokens []string) (int, bool) {
	for _, t := range tokens {
		i := strings.Index(ua, t)
		if i < 0 {
			continue
		}
		j := i + len(t)
		k := j
		for k < len(ua) && ua[k] >= '0' && ua[k] <= '9' {
			k++
		}
		if k == j {
			continue
		}
		n, err := strconv.Atoi(ua[j:k])
		return n, err == nil
	}
	return 0, false
}

// ParseUA reads the browser, version and OS a User-Agent claims.
func ParseUA(ua string) Browser {
	var b Browser
	switch {
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"), strings.Contains(ua, "iPod"):
		b.OS = "ios"
	case strings.Contains(ua, "Android"):
		b.OS = "android"
	case strings.Contains(ua, "Windows"):
		b.OS = "windows"
	case strings.Contains(ua, "Macintosh"), strings.Contains(ua, "Mac OS X"):
		b.OS = "macos"
	case strings.Contains(ua, "CrOS"):
		b.OS = "chromeos"
	case strings.Contains(ua, "Linux"):
		b.OS = "linux"
	}
	b.Mobile = strings.Contains(ua, "Mobile") || b.OS == "android" || b.OS == "ios"
	if !strings.HasPrefix(ua, "Mozilla/") {
		return b // curl, Go-http-client, python-requests: not a browser
	}
	for _, r := range uaRules {
		switch r.family {
		case "safari":
			if !strings.Contains(ua, "Safari/") {
				continue
			}
		case "ie":
			if !strings.Contains(ua, "MSIE ") && !strings.Contains(ua, "Trident/") {
				continue
			}
		}
		if major, ok := versionAfter(ua, r.tokens); ok {
			b.Family, b.Stack, b.Major = r.family, r.stack, major
			break
		}
	}
	if b.OS == "ios" && b.Family != "" {
		b.Stack = "safari"
	}
	return b
}
