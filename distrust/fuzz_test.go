package distrust

import (
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/winstore"
)

// FuzzParseJournal: a journal found under --root may be hostile. The parser
// never panics, and a journal it accepts names only clean paths relative to
// the root, inside its step's paths and outside the journal folder, and
// files by a well-formed SHA-256.
func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"version":2,"root":"/mnt/img","steps":[{"state":"done","paths":["etc/ssl/certs"],"before":[{"path":"etc/ssl/certs","type":"dir","mode":493},{"path":"etc/ssl/certs/a.pem","type":"file","mode":420,"sha256":"` + strings.Repeat("0f", 32) + `"}],"after":[{"path":"etc/ssl/certs","type":"dir","mode":493}]}]}`))
	f.Add([]byte(`{"version":2,"root":"/","steps":[{"state":"started","paths":["../../etc"],"before":[{"path":"/etc/passwd","type":"absent"}]}]}`))
	f.Add([]byte(`{"version":1,"root":"/","steps":[{"state":"done","snapshot":[{"path":"/etc","type":"absent"}]}]}`))
	f.Add([]byte(`{"version":2,"root":"/","steps":[{"step":{"store":"windows-certificate-stores"},"state":"done","paths":null,"before":null,"cert_changes":[{"action":"remove","location":"machine","store":"Root","der":"MIIBlzCCAT2gAwIBAgIBBzAKBggqhkjOPQQDAjAzMRUwEwYDVQQKEwxFeGFtcGxlIENvcnAxGjAYBgNVBAMTEUV4YW1wbGUgQ29ycCBSb290MB4XDTI2MTEyNjAwMDA1NloXDTM2MTEyMzAxMDA1NlowMzEVMBMGA1UEChMMRXhhbXBsZSBDb3JwMRowGAYDVQQDExFFeGFtcGxlIENvcnAgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJo0LU0rxiTRSN26dVYFeNa5It0DMyRkDEdXlzCNiIbNgMyHsN9ysibomxX7TgOmESPQ7P1SLHxsRdD3H3lZrfOjQjBAMA4GA1UdDwEB/wQEAwICBDAPBgNVHRMBAf8EBTADAQH/MB0GA1UdDgQWBBQCy2EzLGFlG4aVg684oWdvrpOrczAKBggqhkjOPQQDAgNIADBFAiAnpAtjfnbqOIPN79rbVO2LFep6pFLCDGGRLWjN7SA42AIhAM70MgDZnJ0fScBZzOiKuBv+CFsgk/moqc/SaymwC1t8"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := parseJournal(data)
		if err != nil {
			return
		}
		for _, e := range j.Steps {
			// A Windows journal changes only the fixed stores, with
			// certificates; it never also names files.
			if j.windows() && (len(e.Paths) > 0 || len(e.Before) > 0 || len(e.After) > 0) {
				t.Fatalf("a Windows step with files: %+v", e)
			}
			for _, c := range e.Certs {
				if !j.windows() || !knownStore(c.Store) || c.Location != winstore.Machine && c.Location != winstore.User || len(c.DER) == 0 {
					t.Fatalf("accepted change %+v", c)
				}
			}
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
