package store

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeHops feeds the hop-list reader what a hostile database could
// hold in hop_results.hops: it never panics, and what it accepts is within
// the bounds and order a write keeps, and encodes back to a list it accepts.
func FuzzDecodeHops(f *testing.F) {
	for _, s := range []string{`[]`, `[{"ttl":1,"outcome":"expired","router":"10.77.0.2"},{"ttl":2,"outcome":"mitm.suspected","router":null,"issuer":"CN=x"}]`,
		`[{"ttl":2},{"ttl":1}]`, `[{"ttl":0}]`, `null`, `[] []`, `{"ttl":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hops, err := decodeHops(b)
		if err != nil {
			return
		}
		if len(hops) > maxTraceHops {
			t.Fatalf("%d hops accepted", len(hops))
		}
		for i, h := range hops {
			if h.TTL < 1 || h.TTL > 255 || (i > 0 && h.TTL <= hops[i-1].TTL) {
				t.Fatalf("hop %d TTL %d accepted", i, h.TTL)
			}
		}
		again, err := json.Marshal(hops)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeHops(again); err != nil {
			t.Fatalf("re-encoded %s refused: %v", again, err)
		}
	})
}
