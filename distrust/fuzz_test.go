package distrust

import (
	"strings"
	"testing"
)

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
