package lab

import (
	"crypto/x509"

	"github.com/mitmguard/mitmguard/blocklist"
)

// Blocklist returns the embedded blocklist plus the lab's national root, as
// a user's list would be once an update had listed the root, and the id of
// the root's entry (the detail of the mitm.known outcome it gives).
func Blocklist(nationalRoot *x509.Certificate) (*blocklist.List, string) {
	national, err := blocklist.FromPEM(PEM(nationalRoot), "lab national root")
	if err != nil {
		panic("lab: the lab's own root does not make a blocklist: " + err.Error()) // made by this package
	}
	return blocklist.Merge(blocklist.Embedded(), national), national.Entries()[0].ID
}
