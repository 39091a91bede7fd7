package evaluate

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mitmguard/mitmguard/detect"
)

// A capture left out of the counts as "passed through unchanged" has the
// TLS structure of the browser capture it names (version, cipher suites,
// extensions, groups, point formats): the label cannot hide a miss.
func TestSameAsIsTheSameStructure(t *testing.T) {
	const dir = "../testdata/captures"
	outs, err := Run(dir, detect.Default())
	if err != nil {
		t.Fatal(err)
	}
	features := func(file string) (detect.Features, bool) {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if os.IsNotExist(err) {
			return detect.Features{}, false // in the half kept apart
		} else if err != nil {
			t.Fatal(err)
		}
		ch, err := detect.Parse(raw)
		if err != nil {
			return detect.Features{}, false
		}
		return detect.FeaturesOf(ch), true
	}
	n := 0
	for _, o := range outs {
		if o.SameAs == "" || o.RecordFormat == "sslv2" {
			continue
		}
		a, okA := features(o.File)
		b, okB := features(o.SameAs + ".bin")
		if !okA || !okB {
			continue
		}
		n++
		strip := func(exts []uint16) []uint16 { // server_name, padding: per-connection
			return slices.DeleteFunc(slices.Clone(exts), func(e uint16) bool { return e == 0 || e == 21 })
		}
		if a.Version != b.Version || !slices.Equal(a.Ciphers, b.Ciphers) || !slices.Equal(strip(a.Exts), strip(b.Exts)) ||
			!slices.Equal(a.Curves, b.Curves) || !slices.Equal(a.PF, b.PF) {
			t.Errorf("%s is not counted as the same as %s, but differs:\n %+v\n %+v", o.File, o.SameAs, a, b)
		}
	}
	t.Logf("%d captures marked same_tls_structure_as checked against the browser capture they name", n)
	if n == 0 {
		t.Fatal("no capture marked same_tls_structure_as names a capture here: the test lost its point")
	}
}
