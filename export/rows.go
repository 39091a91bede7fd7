package export

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// rowCoder turns the store's rows into Parquet rows. What repeats across
// records is made once: the hex of each certificate hash (which doubles as
// the set of certificates the campaign refers to, in first-seen order), the
// split of each traits string and the list of each packed chain (a host
// shows the same chain for most names it is asked for, and an interceptor
// one per name); chains are cut from shared slabs rather than allocated one
// by one.
type rowCoder struct {
	campaign string
	vantages map[string]measure.Vantage // declared, by name
	hexes    map[chain.Hash]string
	order    []chain.Hash // hashes in the order first seen
	traits   map[string][]string
	chains   map[string]chainList // packed chain → its hex list
	// The last record chain and control chain: most records repeat the
	// one before them (a host's records its own chain, its control for
	// every record), which then costs one comparison.
	lastRec, lastCtl chainList
	slab             []string
}

type chainList struct {
	packed string
	list   []string
}

// maxTraitSets bounds the traits strings kept split: a hostile store cannot
// grow the cache past it (later ones are split each time).
const maxTraitSets = 4096

// maxChains bounds the chains kept as lists; past it the cache starts over.
const maxChains = 4096

func newRowCoder(campaign string, vantages map[string]measure.Vantage) *rowCoder {
	return &rowCoder{campaign: campaign, vantages: vantages, hexes: map[chain.Hash]string{}, traits: map[string][]string{}, chains: map[string]chainList{}}
}

// row converts r; t is its time. The rows it returns share slices with
// each other, which the writer only reads.
func (e *rowCoder) row(r *store.Row, t time.Time) RecordRow {
	ctl := e.chain(r.ControlChain, &e.lastCtl)
	var rec []string
	if len(r.Chain) > 0 && string(r.Chain) == e.lastCtl.packed {
		// A host that answers every name with its own certificate (most
		// of them) shows its control's chain.
		rec = e.lastCtl.list
	} else {
		rec = e.chain(r.Chain, &e.lastRec)
	}
	v := e.vantages[r.Vantage]
	return RecordRow{
		Campaign: e.campaign, Vantage: r.Vantage, VantageASN: int64(v.ASN), VantageCountry: v.Country, Host: r.Host, SNI: r.SNI, Outcome: r.Outcome,
		Time: t, Attempts: int32(min(r.Attempts, 1<<30)), Issuer: r.Issuer, Traits: e.traitList(r.Traits), Chain: rec,
		ControlSNI: r.ControlSNI, ControlOutcome: r.ControlOutcome, ControlChain: ctl,
		Error: r.Error, HandshakeMS: float32(r.MS),
	}
}

func (e *rowCoder) chain(packed []byte, last *chainList) []string {
	n := len(packed) / len(chain.Hash{})
	if n == 0 {
		return nil
	}
	if string(packed) == last.packed {
		return last.list
	}
	if c, ok := e.chains[string(packed)]; ok {
		*last = c
		return c.list
	}
	if len(e.slab) < n {
		e.slab = make([]string, max(n, 8192))
	}
	out := e.slab[:n:n]
	e.slab = e.slab[n:]
	for i := range out {
		h := chain.Hash(packed[i*len(chain.Hash{}):])
		s, ok := e.hexes[h]
		if !ok {
			s = hex.EncodeToString(h[:])
			e.hexes[h] = s
			e.order = append(e.order, h)
		}
		out[i] = s
	}
	if len(e.chains) >= maxChains {
		clear(e.chains)
	}
	c := chainList{string(packed), out}
	e.chains[c.packed] = c
	*last = c
	return out
}

func (e *rowCoder) traitList(s string) []string {
	if s == "" {
		return nil
	}
	if l, ok := e.traits[s]; ok {
		return l
	}
	l := strings.Split(s, ",")
	if len(e.traits) < maxTraitSets {
		e.traits[s] = l
	}
	return l
}
