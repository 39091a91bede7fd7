package measure_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/measure"
)

// The JSON Lines file read back on resume is the user's file and may hold
// anything: the index never panics, never reads past a complete line, and
// finds the records it holds.
func FuzzIndexJSONL(f *testing.F) {
	rec := `{"type":"record","campaign":"c","vantage":"local","host":"127.0.0.1:443","sni":"a.example","chain":[]}` + "\n"
	f.Add([]byte(rec+rec), 2)
	f.Add([]byte(`{"type":"certificate","sha256":"`+strings.Repeat("ab", 32)+`","pem":""}`+"\n"+rec[:20]), 1)
	f.Add([]byte("not json\n\n{}\n"), 3)
	f.Add([]byte(strings.Repeat("x", 3000)), 0)
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		x, err := measure.IndexJSONL(bytes.NewReader(data), "c", want%1000)
		if err != nil {
			return
		}
		if x.Tail > int64(len(data)) || (x.Tail > 0 && data[x.Tail-1] != '\n') {
			t.Fatalf("tail %d of %d bytes", x.Tail, len(data))
		}
		if x.Lines > bytes.Count(data, []byte("\n")) {
			t.Fatalf("%d lines counted", x.Lines)
		}
	})
}

func TestIndexJSONLLongLine(t *testing.T) {
	data := strings.Repeat("x", measure.MaxJSONLLine+10) + "\n"
	if _, err := measure.IndexJSONL(strings.NewReader(data), "c", 1); err == nil {
		t.Error("a line longer than the bound was read")
	}
}
