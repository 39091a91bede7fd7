package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// vantages: a declaration is stored per (campaign, vantage point); the
// first declaration wins, a later one fills only what it left undeclared,
// and one that differs is refused with a conflict naming both.
func vantages(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "declared", time.Now())
	other := newCampaign(t, st, "other", time.Now())
	if vs, err := st.Vantages(ctx, c); err != nil || len(vs) != 0 {
		t.Fatalf("before any declaration: %v %v", vs, err)
	}
	kz := measure.Vantage{Name: "kz-almaty", ASN: 9198, Country: "KZ"}
	if got, err := st.DeclareVantage(ctx, c, kz); err != nil || got != kz {
		t.Fatalf("first declaration: %+v %v", got, err)
	}
	// The same again, or less of it, is no conflict.
	for _, v := range []measure.Vantage{kz, {Name: "kz-almaty"}, {Name: "kz-almaty", Country: "KZ"}} {
		if got, err := st.DeclareVantage(ctx, c, v); err != nil || got != kz {
			t.Errorf("declaring %+v again: %+v %v", v, got, err)
		}
	}
	// A differing ASN is refused; the first stays.
	got, err := st.DeclareVantage(ctx, c, measure.Vantage{Name: "kz-almaty", ASN: 4242, Country: "KZ"})
	var conflict *measure.VantageConflictError
	if !errors.As(err, &conflict) || got != kz || conflict.Stored != kz || conflict.Declared.ASN != 4242 || conflict.Campaign != "declared" {
		t.Fatalf("a conflicting declaration: %+v %v", got, err)
	}
	// A conflicting declaration changes nothing, not even the fields the
	// first one left undeclared: its country is as doubtful as its ASN.
	eu := measure.Vantage{Name: "eu-west", ASN: 3320}
	if got, err := st.DeclareVantage(ctx, c, eu); err != nil || got != eu {
		t.Fatalf("declaring %+v: %+v %v", eu, got, err)
	}
	got, err = st.DeclareVantage(ctx, c, measure.Vantage{Name: "eu-west", ASN: 1111, Country: "DE"})
	if !errors.As(err, &conflict) || got != eu || conflict.Stored != eu {
		t.Errorf("a conflicting declaration filled a field: %+v %v", got, err)
	}
	// A vantage point that declared nothing first gets its fields filled
	// later, one by one.
	us := measure.Vantage{Name: "us-east"}
	if got, err := st.DeclareVantage(ctx, c, us); err != nil || got != us {
		t.Fatalf("an empty declaration: %+v %v", got, err)
	}
	if got, err := st.DeclareVantage(ctx, c, measure.Vantage{Name: "us-east", ASN: 16509}); err != nil || got.ASN != 16509 || got.Country != "" {
		t.Fatalf("filling the ASN: %+v %v", got, err)
	}
	if got, err := st.DeclareVantage(ctx, c, measure.Vantage{Name: "us-east", ASN: 16509, Country: "US"}); err != nil || got.Country != "US" {
		t.Fatalf("filling the country: %+v %v", got, err)
	}
	// What no flag gives is refused before it is stored.
	for _, v := range []measure.Vantage{{Name: "a b"}, {Name: ""}, {Name: "x", Country: "kz"}, {Name: "x", Country: "K"}} {
		if _, err := st.DeclareVantage(ctx, c, v); err == nil {
			t.Errorf("declaration %+v accepted", v)
		}
	}
	vs, err := st.Vantages(ctx, c)
	want := []measure.Vantage{eu, kz, {Name: "us-east", ASN: 16509, Country: "US"}}
	if err != nil || !slices.Equal(vs, want) {
		t.Fatalf("vantages %+v %v, want %+v", vs, err, want)
	}
	m, err := store.VantageMap(ctx, st, c)
	if err != nil || len(m) != 3 || m["kz-almaty"] != kz {
		t.Errorf("vantage map %v %v", m, err)
	}
	// Campaigns keep their own declarations.
	if vs, err := st.Vantages(ctx, other); err != nil || len(vs) != 0 {
		t.Errorf("another campaign: %v %v", vs, err)
	}
	if got, err := st.DeclareVantage(ctx, other, measure.Vantage{Name: "kz-almaty", ASN: 4242}); err != nil || got.ASN != 4242 {
		t.Errorf("the same name in another campaign: %+v %v", got, err)
	}
}

// vantagesRace: workers of one vantage point started together with
// different declarations: exactly one declaration is stored, every worker
// gets it back, and every other one is told of the conflict.
func vantagesRace(t *testing.T, st store.Store) {
	c := newCampaign(t, st, "race", time.Now())
	const n = 8
	var wg sync.WaitGroup
	type result struct {
		got measure.Vantage
		err error
	}
	res := make([]result, n)
	for i := range n {
		wg.Go(func() {
			res[i].got, res[i].err = st.DeclareVantage(ctx, c, measure.Vantage{Name: "almaty", ASN: uint32(100 + i), Country: "KZ"})
		})
	}
	wg.Wait()
	winners := 0
	stored, err := st.Vantages(ctx, c)
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored %v %v", stored, err)
	}
	for i, r := range res {
		var conflict *measure.VantageConflictError
		switch {
		case r.err == nil && r.got.ASN == uint32(100+i):
			winners++
		case errors.As(r.err, &conflict) && r.got == stored[0]:
		default:
			t.Errorf("worker %d: %+v %v", i, r.got, r.err)
		}
		if r.got != stored[0] {
			t.Errorf("worker %d got %+v, stored %+v", i, r.got, stored[0])
		}
	}
	if winners != 1 {
		t.Errorf("%d declarations won", winners)
	}
}
