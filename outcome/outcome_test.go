package outcome

import "testing"

func TestParseAndParts(t *testing.T) {
	tests := []struct {
		in                 string
		ok                 bool
		stage, detail      string
		intercept, blocked bool
	}{
		{"ok", true, "ok", "", false, false},
		{"mitm.known:kz-2019-qaznet", true, "mitm", "kz-2019-qaznet", true, false},
		{"mitm.suspected", true, "mitm", "", true, false},
		{"tls.expired", true, "tls", "", false, false},
		{"blocked.reset", true, "blocked", "", false, true},
		{"blocked.blockpage:kz-install-cert", true, "blocked", "kz-install-cert", false, true},
		{"error.dial", true, "error", "", false, false},
		{"mitm.known", false, "", "", false, false},
		{"mitm.known:", false, "", "", false, false},
		{"ok:x", false, "", "", false, false},
		{"bogus", false, "", "", false, false},
		{"error.", false, "", "", false, false},
		{"", false, "", "", false, false},
	}
	for _, tt := range tests {
		o, err := Parse(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("Parse(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		if o.Stage() != tt.stage || o.Detail() != tt.detail || o.Intercepted() != tt.intercept || o.Blocked() != tt.blocked {
			t.Errorf("%q: stage %q detail %q intercepted %v blocked %v", tt.in, o.Stage(), o.Detail(), o.Intercepted(), o.Blocked())
		}
	}
	if Known("x") != "mitm.known:x" || Known("x").Base() != "mitm.known" {
		t.Error("Known/Base")
	}
}
