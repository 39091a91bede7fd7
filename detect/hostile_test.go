package detect

import (
	"testing"

	"github.com/mitmguard/mitmguard/detect/internal/hellotest"
	"github.com/mitmguard/mitmguard/detect/tlshello"
)

// vectorHellos returns FoxIO's JA4 test vectors' ClientHello records.
func vectorHellos(t testing.TB) [][]byte {
	return hellotest.Hellos(t, "tlshello/testdata/ja4/vectors.jsonl")
}

// FuzzCheck: any bytes that parse as a ClientHello are judged, under a
// browser's User-Agent and none, without a panic.
func FuzzCheck(f *testing.F) {
	for _, b := range vectorHellos(f) {
		f.Add(b)
		f.Add(hellotest.Records(b[5:], 7))
	}
	c := Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := tlshello.Parse(data)
		if err != nil {
			return
		}
		c.Check(ch, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36", nil)
		c.Check(ch, "", nil)
	})
}
