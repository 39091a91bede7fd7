package truststore

import (
	"os"
	"strings"
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

// FuzzParseJournal: a journal found under --root may be hostile. The parser
// never panics, and a journal it accepts names only clean paths relative to
// the root, inside its step's paths and outside the journal folder, and
// files by a well-formed SHA-256.
func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"version":2,"root":"/mnt/img","steps":[{"state":"done","paths":["etc/ssl/certs"],"before":[{"path":"etc/ssl/certs","type":"dir","mode":493},{"path":"etc/ssl/certs/a.pem","type":"file","mode":420,"sha256":"` + strings.Repeat("0f", 32) + `"}],"after":[{"path":"etc/ssl/certs","type":"dir","mode":493}]}]}`))
	f.Add([]byte(`{"version":2,"root":"/","steps":[{"state":"started","paths":["../../etc"],"before":[{"path":"/etc/passwd","type":"absent"}]}]}`))
	f.Add([]byte(`{"version":1,"root":"/","steps":[{"state":"done","snapshot":[{"path":"/etc","type":"absent"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := parseJournal(data)
		if err != nil {
			return
		}
		for _, e := range j.Steps {
			for _, items := range [][]fileState{e.Before, e.After} {
				for _, it := range items {
					if checkRel(it.Path) != nil || strings.HasPrefix(it.Path, "/") || strings.Contains("/"+it.Path+"/", "/../") {
						t.Fatalf("accepted path %q", it.Path)
					}
					if it.Type == "file" && len(it.SHA256) != 64 {
						t.Fatalf("accepted hash %q", it.SHA256)
					}
				}
			}
		}
	})
}
