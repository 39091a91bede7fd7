package detect

import (
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/detect/internal/clienttest"
)

func TestParseUA(t *testing.T) {
	tests := []struct {
		ua                string
		family, stack, os string
		major             int
		mobile            bool
	}{
		{clienttest.ChromeUA, "chrome", "chromium", "windows", 133, false},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86", "edge", "chromium", "windows", 131, false},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "firefox", "firefox", "linux", 128, false},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "safari", "safari", "macos", 17, false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15", "firefox", "safari", "ios", 125, true},
		{"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 OPR/82.0.0", "opera", "chromium", "android", 82, true},
		{"Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko", "ie", "schannel", "windows", 11, false},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.10240", "edge-legacy", "schannel", "windows", 12, false},
		{"Mozilla/5.0 (Linux; U; Android 4.1; en-us; Google Nexus 7 Build/JRO03C) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", "android", "", "android", 4, true},
		{"Opera/9.80 (Windows NT 6.1) Presto/2.12.388 Version/12.16", "opera-presto", "", "windows", 12, false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) Version/9.0 Mobile/13B143 Safari/601.1", "safari", "safari", "ios", 9, true},
		{"curl/8.5.0", "", "", "", 0, false},
		{"Go-http-client/1.1", "", "", "", 0, false},
		{"", "", "", "", 0, false},
	}
	for _, tt := range tests {
		b := ParseUA(tt.ua)
		if b.Family != tt.family || b.Stack != tt.stack || b.OS != tt.os || b.Major != tt.major || b.Mobile != tt.mobile {
			t.Errorf("%q: %+v", tt.ua, b)
		}
	}
}

// containsIP answers as strings.Contains(ua, "iP") does.
func TestContainsIP(t *testing.T) {
	for _, ua := range []string{"", "iP", "P", "Pi", "PiP", "PPiPad", "Mozilla/5.0 (iPhone;", "Mozilla/5.0 (Windows NT 10.0)", "Opera/9.80 (X; iPod P)", clienttest.ChromeUA} {
		if got, want := containsIP(ua), strings.Contains(ua, "iP"); got != want {
			t.Errorf("%q: %v, want %v", ua, got, want)
		}
	}
}
