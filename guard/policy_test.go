package guard_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/internal/lab"
)

func TestPolicyUpdate(t *testing.T) {
	emb := blocklist.Embedded()
	p := guard.NewPolicy(nil)
	if p.List() != emb {
		t.Fatal("a nil list is not the embedded list")
	}
	// The installed list may carry the embedded list's version: it is newer
	// when it blocks more keys, and not when it blocks fewer.
	more, err := blocklist.New([]*blocklist.Entry{{ID: "extra", Name: "extra", Kind: blocklist.KindUser,
		SPKISHA256: "0000000000000000000000000000000000000000000000000000000000000001"}}, emb.Version, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	merged := blocklist.Merge(emb, more)
	if ok, err := p.Update(merged); !ok || err != nil || p.List() != merged {
		t.Fatalf("same version, more keys: %v %v", ok, err)
	}
	var re *guard.RollbackError
	if ok, err := p.Update(emb); ok || !errors.As(err, &re) || re.Lacks != "extra" || p.List() != merged {
		t.Fatalf("same version, fewer keys: %v %v", ok, err)
	}
	newer := blocklist.WithVersion(emb, emb.Version+1, time.Now())
	if ok, err := p.Update(newer); !ok || err != nil || p.List() != newer {
		t.Fatalf("newer list: %v %v", ok, err)
	}
	same := blocklist.WithVersion(emb, emb.Version+1, time.Now())
	if ok, err := p.Update(same); ok || err != nil || p.List() != newer {
		t.Fatalf("same version: %v %v", ok, err)
	}
	if ok, err := p.Update(emb); ok || !errors.As(err, &re) || re.Current != newer.Version || re.Offered != emb.Version || p.List() != newer {
		t.Fatalf("older list: %v %v", ok, err)
	}
	if _, err := p.Update(nil); err == nil || p.List() != newer {
		t.Fatal("nil list accepted")
	}
}

// Configs built from one policy enforce the list in force at each handshake,
// not the list in force when they were built.
func TestConfigFollowsPolicy(t *testing.T) {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := guard.NewPolicy(nil)
	cfg := guard.Config(deviceTrustingConfig(l), guard.Options{Policy: p})
	client := labClient(l.MiddleboxAddr, cfg)
	resp, err := client.Get("https://www.facebook.com/")
	if err != nil {
		t.Fatalf("embedded list refused the lab root: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	list, id := lab.Blocklist(l.NationalRoot)
	if ok, err := p.Update(blocklist.WithVersion(list, list.Version+1, time.Now())); !ok || err != nil {
		t.Fatalf("Update: %v %v", ok, err)
	}
	var ie *guard.InterceptionError
	if _, err := client.Get("https://www.facebook.com/"); !errors.As(err, &ie) || ie.Entry.ID != id {
		t.Fatalf("after Update: %v", err)
	}
}
