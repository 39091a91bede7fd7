package detect

import (
	"regexp"
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

var uaRules = []struct {
	family, stack string
	re            *regexp.Regexp
}{
	{"edge", "chromium", regexp.MustCompile(`\bEdg(?:e|A|iOS)?/(\d+)`)},
	{"opera", "chromium", regexp.MustCompile(`\bOPR/(\d+)`)},
	{"samsung", "chromium", regexp.MustCompile(`\bSamsungBrowser/(\d+)`)},
	{"chrome", "chromium", regexp.MustCompile(`\b(?:Chrome|CriOS)/(\d+)`)},
	{"firefox", "firefox", regexp.MustCompile(`\b(?:Firefox|FxiOS)/(\d+)`)},
	{"safari", "safari", regexp.MustCompile(`\bVersion/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/`)},
	{"ie", "", regexp.MustCompile(`\b(?:MSIE |Trident/.*rv:)(\d+)`)},
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
		if m := r.re.FindStringSubmatch(ua); m != nil {
			b.Family, b.Stack = r.family, r.stack
			b.Major, _ = strconv.Atoi(m[1])
			break
		}
	}
	if b.OS == "ios" && b.Family != "" {
		b.Stack = "safari"
	}
	return b
}
