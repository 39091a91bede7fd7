package roots

import (
	"crypto/sha256"
	"testing"
)

func TestMozilla(t *testing.T) {
	certs := Certificates()
	if len(certs) < 100 {
		t.Fatalf("only %d Mozilla roots", len(certs))
	}
	found := false
	for _, c := range certs {
		if c.Subject.CommonName == "GTS Root R1" {
			found = true
			if !IsMozilla(sha256.Sum256(c.RawSubjectPublicKeyInfo)) {
				t.Error("GTS Root R1 not recognised by key")
			}
		}
	}
	if !found {
		t.Error("GTS Root R1 missing")
	}
	if IsMozilla([32]byte{1}) {
		t.Error("random key recognised")
	}
	p := Public(certs[0])
	if p.Equal(Public()) {
		// adding an existing root changes nothing, but the pools must be distinct objects
		if p == Public() {
			t.Error("Public returned a shared pool")
		}
	}
}
