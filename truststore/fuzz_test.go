package truststore

import (
	"os"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
)

func TestParseKeystoreVector(t *testing.T) {
	data, err := os.ReadFile("testdata/two-roots.jks")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ParseKeystore(data, DefaultJavaPassword)
	if err != nil || len(entries) != 2 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if b := blocklist.Embedded().ByID(e.Alias); b == nil || b.SPKI() != e.Cert.SPKI {
			t.Errorf("alias %s: wrong certificate", e.Alias)
		}
	}
	if _, err := ParseKeystore(data, "wrong"); err == nil {
		t.Error("wrong password accepted")
	}
	for n := 0; n < len(data); n += 97 {
		if _, err := ParseKeystore(data[:n], DefaultJavaPassword); err == nil {
			t.Errorf("truncated at %d accepted", n)
		}
	}
}

// FuzzParseKeystore: a keystore from outside never panics the reader and
// never makes it allocate beyond the input.
func FuzzParseKeystore(f *testing.F) {
	if data, err := os.ReadFile("testdata/two-roots.jks"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("\xfe\xed\xfe\xed\x00\x00\x00\x02\x7f\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := ParseKeystore(data, DefaultJavaPassword)
		for _, e := range entries {
			if e.Cert == nil {
				t.Fatal("nil certificate")
			}
		}
	})
}

// FuzzParseCertFile: any bundle gives certificates and problems, never a
// panic, and every certificate it returns re-reads the same.
func FuzzParseCertFile(f *testing.F) {
	l := blocklist.Embedded()
	f.Add([]byte(l.ByID("superfish").Certificate + "junk\n" + l.ByID("kz-2019-qaznet").Certificate))
	f.Add(l.ByID("superfish").Cert().DER)
	f.Add([]byte("[p11-kit-object-v1]\nclass: certificate\n" + l.ByID("dell-edellroot").Certificate))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, _ := ParseCertFile(data)
		for _, c := range certs {
			again, problems := ParseCertFile([]byte(c.PEM()))
			if len(again) != 1 || len(problems) != 0 || again[0].SHA256 != c.SHA256 {
				t.Fatalf("round trip: %d certs, %v", len(again), problems)
			}
		}
	})
}

// FuzzP11KitObjects: a p11-kit source file from outside never panics the
// reader, and every object it returns has a certificate.
func FuzzP11KitObjects(f *testing.F) {
	l := blocklist.Embedded()
	f.Add([]byte("[p11-kit-object-v1]\nlabel: \"x\"\ntrusted: true\n" + l.ByID("superfish").Certificate))
	f.Add([]byte("[p11-kit-object-v1]\nclass: x-certificate-extension\nvalue: \"%30\"\n[p11-kit-object-v1]\nx-distrusted: true\n" + l.ByID("dell-edellroot").Certificate))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := parseP11KitObjects(data)
		for _, o := range objs {
			if o.cert == nil {
				t.Fatal("object without certificate")
			}
		}
	})
}
