package blocklist

import (
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the blocklist file reader: it must
// return a list or an error, never panic, and a list it accepts must survive
// Marshal and Parse unchanged.
func FuzzLoad(f *testing.F) {
	f.Add(embedded)
	f.Add([]byte(`{"format":"mitmguard-blocklist","format_version":1,"entries":[]}`))
	f.Add([]byte(Embedded().ByID("superfish").Certificate))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Load(data, "fuzz")
		if err != nil {
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := Parse(out, "fuzz-again")
		if err != nil {
			t.Fatalf("marshalled list does not parse: %v", err)
		}
		if l2.Len() != l.Len() {
			t.Fatalf("round trip: %d entries, then %d", l.Len(), l2.Len())
		}
	})
}
