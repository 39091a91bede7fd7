package main

import (
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/distrust"
	"github.com/mitmguard/mitmguard/truststore"
	"github.com/mitmguard/mitmguard/winstore"
)

// The undo summary is true of its journal: files are restored byte for
// byte; the Windows certificate stores are changed back through CryptoAPI,
// which restores no bytes, and some roots may stay distrusted.
func TestUndoSummaryPerJournal(t *testing.T) {
	var b strings.Builder
	printUndo(&b, "/", &distrust.UndoResult{Steps: []distrust.Step{{Store: truststore.DebianBundle, StorePath: "/etc/ssl/certs/ca-certificates.crt"}}})
	if !strings.Contains(b.String(), "restored debian-bundle /etc/ssl/certs/ca-certificates.crt\n") || !strings.HasSuffix(b.String(), "undo complete: 1 step(s) restored byte for byte\n") {
		t.Errorf("files:\n%s", b.String())
	}
	win := &distrust.UndoResult{Windows: true, Steps: []distrust.Step{{Store: "windows-certificate-stores", StorePath: "Cert:", Description: "add roots to Disallowed and remove them from Root"}}}
	b.Reset()
	printUndo(&b, "/", win)
	if b.String() != "undone: add roots to Disallowed and remove them from Root (Cert:)\nundo complete: every root the apply moved is back where it was\n" {
		t.Errorf("Windows:\n%s", b.String())
	}
	win.Kept = []distrust.Kept{{Thumbprint: "AB", Subject: "CN=Qaznet", Location: winstore.Machine, Store: winstore.Disallowed, Action: winstore.Remove, Reason: "on the blocklist"}}
	b.Reset()
	printUndo(&b, "/", win)
	if strings.Contains(b.String(), "byte for byte") || !strings.Contains(b.String(), "kept distrusted: CN=Qaznet (AB) not taken out of Cert:\\LocalMachine\\Disallowed: on the blocklist\n") ||
		!strings.HasSuffix(b.String(), "undo complete: every root the apply moved is back where it was, but the 1 kept distrusted above\n") {
		t.Errorf("Windows, a root kept distrusted:\n%s", b.String())
	}
}
