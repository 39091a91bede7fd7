package blocklist

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/chain"
)

// The embedded list holds every certificate of testdata/chromium (copied from
// ../shared/data/blocklist), each under its SPKI hash, with its provenance.
func TestEmbedded(t *testing.T) {
	l := Embedded()
	files, err := filepath.Glob("testdata/chromium/*.pem")
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != len(files) || l.Len() != 15 {
		t.Fatalf("%d entries, %d files", l.Len(), len(files))
	}
	kz := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := chain.ParsePEM(data)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".pem")
		if c[0].SPKI.String() != name {
			t.Errorf("%s: SPKI is %s", f, c[0].SPKI)
		}
		e := l.Lookup(c[0].SPKI)
		if e == nil {
			t.Fatalf("%s not in the embedded list", name)
		}
		if e.Cert() == nil || e.Cert().SHA256 != c[0].SHA256 || e.CertSHA256 != c[0].SHA256.String() {
			t.Errorf("%s: certificate differs", e.ID)
		}
		if e.Name == "" || len(e.References) == 0 || e.FirstSeen == "" || len(e.BlockedBy) == 0 {
			t.Errorf("%s: provenance incomplete: %+v", e.ID, e)
		}
		if e.Country == "KZ" {
			kz++
		}
		if e.TestOnly != (e.Kind == KindTestFixture) {
			t.Errorf("%s: test-only flag and kind disagree", e.ID)
		}
	}
	if kz != 10 {
		t.Errorf("%d Kazakh entries, want 10", kz)
	}
	for _, id := range []string{"kz-2019-qaznet", "kz-2020-isca-ca", "kz-2024-isca", "superfish", "dell-edellroot", "dell-dsdtestprovider"} {
		if l.ByID(id) == nil {
			t.Errorf("no entry %s", id)
		}
	}
	// DSDTestProvider's negative serial: Go refuses it, the list still holds it.
	if e := l.ByID("dell-dsdtestprovider"); e.Cert().X509 != nil || e.Cert().ParseErr == nil {
		t.Error("expected crypto/x509 to refuse DSDTestProvider (negative serial)")
	}
}

// Marshal then Parse gives the same list, and the embedded file is exactly
// what Marshal writes (so `go generate` is up to date).
func TestRoundTrip(t *testing.T) {
	out, err := Embedded().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, embedded) {
		t.Error("blocklist.json is not in canonical form: run go generate ./blocklist")
	}
	l, err := Parse(out, "again")
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != Embedded().Len() || l.Version != Embedded().Version {
		t.Error("round trip lost entries")
	}
}

func TestParseErrors(t *testing.T) {
	good := `{"format":"mitmguard-blocklist","format_version":1,"list_version":3,"entries":[{"id":"x","name":"X","kind":"user","spki_sha256":"` + strings.Repeat("ab", 32) + `"}]}`
	if l, err := Parse([]byte(good), "good"); err != nil || l.Len() != 1 || l.Version != 3 {
		t.Fatalf("good file: %v", err)
	}
	tests := map[string]string{
		"garbage":        "not json at all",
		"empty":          "",
		"wrong format":   `{"format":"other","format_version":1,"entries":[]}`,
		"future version": `{"format":"mitmguard-blocklist","format_version":2,"entries":[]}`,
		"unknown field":  strings.Replace(good, `"name"`, `"nmae"`, 1),
		"bad id":         strings.Replace(good, `"id":"x"`, `"id":"X Y"`, 1),
		"bad kind":       strings.Replace(good, `"kind":"user"`, `"kind":"evil"`, 1),
		"bad hash":       strings.Replace(good, strings.Repeat("ab", 32), "abcd", 1),
		"no key":         strings.Replace(good, `"spki_sha256":"`+strings.Repeat("ab", 32)+`"`, `"spki_sha256":""`, 1),
		"duplicate id":   strings.Replace(good, `}]}`, `},{"id":"x","name":"Y","kind":"user","spki_sha256":"`+strings.Repeat("cd", 32)+`"}]}`, 1),
		"duplicate key":  strings.Replace(good, `}]}`, `},{"id":"y","name":"Y","kind":"user","spki_sha256":"`+strings.Repeat("ab", 32)+`"}]}`, 1),
		"null entry":     strings.Replace(good, `"entries":[`, `"entries":[null,`, 1),
		"trailing data":  good + `{}`,
		"bad cert":       strings.Replace(good, `"kind":"user"`, `"kind":"user","certificate":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"`, 1),
		"hash mismatch":  strings.Replace(good, `"kind":"user"`, `"kind":"user","certificate":`+jsonString(Embedded().Entries()[0].Certificate), 1),
	}
	for name, in := range tests {
		_, err := Load([]byte(in), name)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want *FormatError", name, err)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error does not name the source: %v", name, err)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestFromPEMAndMerge(t *testing.T) {
	qaznet := Embedded().ByID("kz-2019-qaznet")
	superfish := Embedded().ByID("superfish")
	user, err := Load([]byte("some text\n"+qaznet.Certificate+superfish.Certificate+qaznet.Certificate), "mine.pem")
	if err != nil {
		t.Fatal(err)
	}
	if user.Len() != 2 || user.Entries()[0].Kind != KindUser || !strings.HasPrefix(user.Entries()[0].ID, "user-") {
		t.Fatalf("FromPEM: %d entries %+v", user.Len(), user.Entries()[0])
	}
	m := Merge(Embedded(), user)
	if m.Len() != Embedded().Len() {
		t.Errorf("merge duplicated keys: %d", m.Len())
	}
	if m.Lookup(qaznet.SPKI()).ID != "kz-2019-qaznet" {
		t.Error("merge did not keep the curated entry")
	}
	if _, err := Load([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "key.pem"); err == nil {
		t.Error("a private key was accepted as a blocklist")
	}
}

func TestMatch(t *testing.T) {
	l := Embedded()
	qaznet := l.ByID("kz-2019-qaznet").Cert()
	if m := l.Match(chain.Chain{qaznet}); m == nil || m.Entry.ID != "kz-2019-qaznet" || m.Completed {
		t.Errorf("direct match: %+v", m)
	}
	if m := l.MatchX509(nil); m != nil {
		t.Error("empty chain matched")
	}
	var nilList *List
	if nilList.Match(chain.Chain{qaznet}) != nil {
		t.Error("nil list matched")
	}
}

// A PEM blocklist is not a chain: more certificates than a chain may hold
// load (a PEM export of a long list reads back). It failed past 32 before.
func TestFromPEMManyCertificates(t *testing.T) {
	var data []byte
	for i, e := range Embedded().Entries() {
		if e.Cert() != nil && i < 14 {
			data = append(data, e.Cert().PEM()...)
		}
	}
	var all []byte
	for range 3 {
		all = append(all, data...)
	}
	l, err := FromPEM(all, "many.pem")
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() == 0 || 3*l.Len() <= chain.MaxCertificates {
		t.Fatalf("%d distinct keys from %d certificates", l.Len(), 3*l.Len())
	}
}
