package export

import (
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/store"
)

// rowCoder reuses chain lists (the record's own, its control's, the last
// ones): whatever the sequence, each row's lists are its own chains' hex.
func TestRowCoderChains(t *testing.T) {
	h := func(b byte) chain.Hash { return chain.Hash{b, 1, 2} }
	pack := func(hs ...chain.Hash) []byte {
		var out []byte
		for _, x := range hs {
			out = append(out, x[:]...)
		}
		return out
	}
	hexes := func(packed []byte) []string {
		var out []string
		for _, x := range store.Hashes(nil, packed) {
			out = append(out, hex.EncodeToString(x[:]))
		}
		return out
	}
	a, b, c := pack(h(1), h(2)), pack(h(3), h(2)), pack(h(4))
	rows := []struct{ rec, ctl []byte }{
		{a, a}, {b, a}, {a, a}, // the control's chain, another, the control's again
		{a, nil}, {nil, nil}, {b, nil}, // no control chain: the last control's is not this control's
		{c, b}, {b, b}, {nil, c}, {c, c}, {a, c},
	}
	e := newRowCoder("x", nil)
	for i, r := range rows {
		got := e.row(&store.Row{Chain: r.rec, ControlChain: r.ctl}, time.Unix(0, 0))
		if !reflect.DeepEqual(got.Chain, hexes(r.rec)) || !reflect.DeepEqual(got.ControlChain, hexes(r.ctl)) {
			t.Fatalf("row %d: chain %v, control chain %v; want %v, %v", i, got.Chain, got.ControlChain, hexes(r.rec), hexes(r.ctl))
		}
	}
	if len(e.order) != 4 {
		t.Fatalf("%d hashes recorded, want the 4 distinct ones", len(e.order))
	}
}
