package detect

import (
	"strconv"
	"strings"
)

// Browser is what a User-Agent claims.
type Browser struct {
	// Family is chrome, edge, opera, firefox, safari, ie, edge-legacy
	// (EdgeHTML, 12-18), android (the pre-Chrome Android browser), samsung,
	// ucbrowser, silk, or "" when not a browser.
	Family string `json:"family"`
	Major  int    `json:"major"`
	OS     string `json:"os"`
	// IOSMajor is the iOS major version on iOS, where every browser uses
	// Apple's TLS stack of that version.
	IOSMajor int `json:"ios_major,omitempty"`
	// OSVersion is the OS version as [major, minor] (Windows NT 6.1 is
	// [6 1]), minor -1 when not given; [0 -1] when unknown.
	OSVersion [2]int `json:"-"`
	Mobile    bool   `json:"mobile"`
	// Stack is the TLS implementation that browser uses on that OS:
	// chromium (BoringSSL), firefox (NSS), safari (Apple's), schannel
	// (Windows', for IE and EdgeHTML), or "".
	// Every browser on iOS uses Apple's.
	Stack string `json:"tls_stack"`
}

// uaRules are tried in order: a Chromium-based browser names Chrome too,
// and every browser names Safari. Each token is followed by the major version.
// A rule with needs applies only to a User-Agent that contains it: one scan
// rules out the tokens that start with it (most User-Agents name no Edge).
var uaRules = []struct {
	family, stack string
	tokens        []string
	needs         string
}{
	{"edge", "chromium", []string{"Edg/", "EdgA/", "EdgiOS/"}, "Edg"},
	{"edge-legacy", "schannel", []string{"Edge/"}, "Edg"}, // EdgeHTML 12-18 on Windows' own stack
	{"opera", "chromium", []string{"OPR/"}, ""},
	{"samsung", "chromium", []string{"SamsungBrowser/"}, ""},
	{"ucbrowser", "", []string{"UCBrowser/"}, ""}, // its own engines over the years: judged on mitmengine's records only
	{"silk", "", []string{"Silk/"}, ""},
	{"chrome", "chromium", []string{"Chrome/", "CriOS/"}, ""},
	{"firefox", "firefox", []string{"Firefox/", "FxiOS/"}, ""},
	{"android", "", []string{"Version/"}, ""},                // Android's own browser before Chrome: "Android" and "Version/", checked below
	{"safari", "safari", []string{"Version/"}, ""},           // with "Safari/", checked below
	{"ie", "schannel", []string{"MSIE ", "rv:"}, ""},         // with "Trident/" for rv:
	{"opera-presto", "", []string{"Version/", "Opera/"}, ""}, // Opera 9-12 ("Opera/9.80 ... Version/12.16"), its own stack
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
	// "iP" and "Mac" first: one scan each rules out the names they start.
	iP, mac := containsIP(ua), strings.Contains(ua, "Mac")
	switch {
	case iP && (strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad") || strings.Contains(ua, "iPod")):
		b.OS = "ios"
	case strings.Contains(ua, "Android"):
		b.OS = "android"
	case strings.Contains(ua, "Windows"):
		b.OS = "windows"
	case mac && (strings.Contains(ua, "Macintosh") || strings.Contains(ua, "Mac OS X")):
		b.OS = "macos"
	case strings.Contains(ua, "CrOS"):
		b.OS = "chromeos"
	case strings.Contains(ua, "Linux"):
		b.OS = "linux"
	}
	b.Mobile = strings.Contains(ua, "Mobile") || b.OS == "android" || b.OS == "ios"
	b.OSVersion = osVersionIn(ua, b.OS)
	if b.OS == "ios" {
		b.IOSMajor = b.OSVersion[0]
	}
	presto := strings.HasPrefix(ua, "Opera/")
	if !strings.HasPrefix(ua, "Mozilla/") && !presto {
		return b // curl, Go-http-client, python-requests: not a browser
	}
	lastNeeds, has := "", false
	for _, r := range uaRules {
		if r.needs != "" {
			if r.needs != lastNeeds {
				lastNeeds, has = r.needs, strings.Contains(ua, r.needs)
			}
			if !has {
				continue
			}
		}
		switch r.family {
		case "android":
			if b.OS != "android" {
				continue
			}
		case "safari":
			if !strings.Contains(ua, "Safari/") {
				continue
			}
		case "ie":
			if !strings.Contains(ua, "MSIE ") && !strings.Contains(ua, "Trident/") {
				continue
			}
		case "opera-presto":
			if !presto {
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

var osTokens = [...]string{"Windows NT ", "Mac OS X ", "iPhone OS ", "CPU OS ", "iPod OS ", "Android "}

// osVersionIn reads the OS version a User-Agent gives: "Windows NT 6.1",
// "Mac OS X 10_11_4" or "10.11", "iPhone OS 9_1", "Android 4.4".
func osVersionIn(ua, os string) [2]int {
	var tokens []string
	switch os {
	case "windows":
		tokens = osTokens[:1]
	case "macos":
		tokens = osTokens[1:2]
	case "ios":
		tokens = osTokens[2:5]
	case "android":
		tokens = osTokens[5:]
	}
	for _, t := range tokens {
		i := strings.Index(ua, t)
		if i < 0 {
			continue
		}
		rest := ua[i+len(t):]
		out := [2]int{0, -1}
		for k := 0; k < 2; k++ {
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j == 0 {
				break
			}
			out[k], _ = strconv.Atoi(rest[:j])
			if j == len(rest) || (rest[j] != '.' && rest[j] != '_') {
				break
			}
			rest = rest[j+1:]
		}
		return out
	}
	return [2]int{0, -1}
}

// containsIP reports whether ua contains "iP" (iPhone, iPad, iPod). It looks
// for the 'P', rare in User-Agents, where strings.Contains would stop at
// every 'i' (Mozilla, Windows, like ...).
func containsIP(ua string) bool {
	for i := strings.IndexByte(ua, 'P'); i >= 0; {
		if i > 0 && ua[i-1] == 'i' {
			return true
		}
		j := strings.IndexByte(ua[i+1:], 'P')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}
