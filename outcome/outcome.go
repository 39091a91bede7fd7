// Package outcome is mitmguard's one vocabulary for what happened to a TLS
// connection: the verdict the library returns, the CLI prints, measurement
// records store and reports count. It is defined here and nowhere else, so
// that no part invents a string another part does not know.
//
// An outcome is "stage.name", optionally followed by ":detail":
//
//	ok                        verified to a public root, the name matches
//	mitm.known:<entry-id>     the chain runs through a blocklisted key
//	mitm.suspected            valid for a public name, but not chaining to a public root
//	tls.invalid_hostname      a public chain, not valid for the name
//	tls.expired               a public chain, outside its validity
//	tls.unknown_authority     unknown issuer, no sign of interception
//	tls.mismatch              differs from the control, no sign of interception
//	tls.invalid               otherwise broken
//	blocked.reset|timeout|closed, blocked.blockpage:<id>
//	error.<stage>             the measurement itself failed (error.stopped: the caller stopped it)
//
// Stages are ordered by how much they say about interference; Intercepted
// and Blocked answer the questions scripts ask.
package outcome

import (
	"fmt"
	"strings"
)

// Outcome is one classified result, such as "mitm.known:kz-2019-qaznet".
type Outcome string

// The fixed outcomes.
const (
	OK               Outcome = "ok"
	Suspected        Outcome = "mitm.suspected"
	InvalidHostname  Outcome = "tls.invalid_hostname"
	Expired          Outcome = "tls.expired"
	UnknownAuthority Outcome = "tls.unknown_authority"
	Mismatch         Outcome = "tls.mismatch"
	Invalid          Outcome = "tls.invalid"
	BlockedReset     Outcome = "blocked.reset"
	BlockedTimeout   Outcome = "blocked.timeout"
	BlockedClosed    Outcome = "blocked.closed"
	ErrorDial        Outcome = "error.dial"
	ErrorResolve     Outcome = "error.resolve"
	ErrorInput       Outcome = "error.input"
	ErrorControl     Outcome = "error.control_failed"
	// Stopped is a measurement the caller stopped (Ctrl-C): not the network's doing.
	Stopped Outcome = "error.stopped"
)

// Known is the outcome for a chain through the blocklist entry with this id.
func Known(entryID string) Outcome { return Outcome("mitm.known:" + entryID) }

// Blockpage is the outcome for a recognised block page.
func Blockpage(id string) Outcome { return Outcome("blocked.blockpage:" + id) }

// Error is the outcome for a measurement that failed at a stage.
func Error(stage string) Outcome { return Outcome("error." + stage) }

// Stage returns the part before the first dot: ok, mitm, tls, blocked, error.
func (o Outcome) Stage() string {
	s, _, _ := strings.Cut(string(o), ".")
	s, _, _ = strings.Cut(s, ":")
	return s
}

// Detail returns the part after ':' (the entry id of mitm.known), or "".
func (o Outcome) Detail() string {
	_, d, _ := strings.Cut(string(o), ":")
	return d
}

// Base returns the outcome without its detail: "mitm.known" for
// "mitm.known:kz-2019-qaznet". Reports group by it.
func (o Outcome) Base() Outcome {
	b, _, _ := strings.Cut(string(o), ":")
	return Outcome(b)
}

// Intercepted reports a mitm.* outcome.
func (o Outcome) Intercepted() bool { return o.Stage() == "mitm" }

// Blocked reports a blocked.* outcome.
func (o Outcome) Blocked() bool { return o.Stage() == "blocked" }

// OK reports the ok outcome.
func (o Outcome) OK() bool { return o == OK }

// Parse validates a stored or user-given outcome string.
func Parse(s string) (Outcome, error) {
	o := Outcome(s)
	switch o.Base() {
	case OK, Suspected, InvalidHostname, Expired, UnknownAuthority, Mismatch, Invalid,
		BlockedReset, BlockedTimeout, BlockedClosed:
		if o.Detail() == "" && !strings.Contains(s, ":") {
			return o, nil
		}
	case "mitm.known", "blocked.blockpage":
		if o.Detail() != "" {
			return o, nil
		}
	default:
		if o.Stage() == "error" && len(s) > len("error.") && !strings.Contains(s, ":") {
			return o, nil
		}
	}
	return "", fmt.Errorf("outcome: unknown outcome %q", s)
}
