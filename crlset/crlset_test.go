package crlset_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/crlset"
)

// The blocklist's CRLSet export parses, names every entry's key on the
// right list, and survives Marshal/Parse unchanged.
func TestBlocklistRoundTrip(t *testing.T) {
	l := blocklist.Embedded()
	data, err := crlset.FromList(l).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := crlset.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	got := c.InterceptionSPKIs()
	for _, e := range l.Entries() {
		_, ok := got[e.SPKISHA256]
		inKI := false
		for _, x := range e.Chromium {
			inKI = inKI || x == "known-interception"
		}
		if inKI && !ok {
			t.Errorf("%s missing from the interception lists", e.ID)
		}
	}
	if len(c.Header.BlockedSPKIs)+len(got) != l.Len() {
		t.Errorf("%d blocked + %d interception keys for %d entries", len(c.Header.BlockedSPKIs), len(got), l.Len())
	}
	if blocked := got["8e12d0cb3b7df3ea2257579489fd8658c95603ea6cf4b73163a41eb7b7e93fee"]; !blocked {
		t.Error("the 2020 ISCA CA root should be blocked interception")
	}
	c.Parents = []crlset.Parent{{SPKIHash: [32]byte{1}, Serials: [][]byte{{1, 2, 3}, {4}}}}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := crlset.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := c2.Marshal()
	if !bytes.Equal(out, out2) || len(c2.Parents) != 1 || len(c2.Parents[0].Serials) != 2 {
		t.Error("round trip changed the CRLSet")
	}
}

func TestBad(t *testing.T) {
	good, _ := (&crlset.CRLSet{Header: crlset.Header{ContentType: "CRLSet"}}).Marshal()
	for name, in := range map[string][]byte{
		"empty":        nil,
		"short header": {0xff, 0x00, '{'},
		"not json":     append([]byte{3, 0}, "abc"...),
		"wrong type":   append([]byte{25, 0}, `{"ContentType":"Other"} `...),
		"bad spki":     append([]byte{58, 0}, `{"ContentType":"CRLSet","BlockedSPKIs":["bm90IDMyIGJ5dGVz"]}`...),
		"lying count":  append(append([]byte{}, good...), append(make([]byte, 32), 0xff, 0xff, 0xff, 0x7f)...),
	} {
		if _, err := crlset.Parse(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParse: any bytes give a CRLSet or an error, and a CRLSet that parses
// marshals to bytes that parse to the same.
func FuzzParse(f *testing.F) {
	embedded, _ := crlset.FromList(blocklist.Embedded()).Marshal()
	f.Add(embedded)
	c := &crlset.CRLSet{Header: crlset.Header{ContentType: "CRLSet"}, Parents: []crlset.Parent{{Serials: [][]byte{{1}}}}}
	withParent, _ := c.Marshal()
	f.Add(withParent)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := crlset.Parse(data)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			return // e.g. a header that re-encodes longer than 65535 bytes
		}
		c2, err := crlset.Parse(out)
		if err != nil {
			t.Fatalf("re-marshalled CRLSet does not parse: %v", err)
		}
		if !reflect.DeepEqual(c2.Parents, c.Parents) && !(len(c2.Parents) == 0 && len(c.Parents) == 0) {
			t.Fatal("parents changed")
		}
		if !reflect.DeepEqual(c2.InterceptionSPKIs(), c.InterceptionSPKIs()) || len(c2.Header.BlockedSPKIs) != len(c.Header.BlockedSPKIs) {
			t.Fatal("keys changed")
		}
		if out2, err := c2.Marshal(); err != nil || !bytes.Equal(out2, out) {
			t.Fatalf("Marshal is not stable: %v", err)
		}
	})
}

// A header longer than the format's 16-bit length is refused with the
// number of keys, never written with a wrapped length.
func TestHeaderTooLong(t *testing.T) {
	var h crlset.Header
	for i := range 2000 {
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		h.BlockedInterceptionSPKIs = append(h.BlockedInterceptionSPKIs, base64.StdEncoding.EncodeToString(sum[:]))
	}
	h.ContentType = "CRLSet"
	_, err := (&crlset.CRLSet{Header: h}).Marshal()
	var tl *crlset.HeaderTooLongError
	if !errors.As(err, &tl) || tl.Keys != 2000 || tl.Size <= crlset.MaxHeaderSize {
		t.Fatalf("got %v", err)
	}
	h.BlockedInterceptionSPKIs = h.BlockedInterceptionSPKIs[:1300]
	out, err := (&crlset.CRLSet{Header: h}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := crlset.Parse(out); err != nil || len(c.InterceptionSPKIs()) != 1300 {
		t.Fatalf("1,300 keys: %v", err)
	}
}

// keyOnlyList is a list of n entries known only by key.
func keyOnlyList(t *testing.T, n int) *blocklist.List {
	t.Helper()
	var entries []*blocklist.Entry
	for i := range n {
		h := sha256.Sum256(fmt.Appendf(nil, "key %d", i))
		entries = append(entries, &blocklist.Entry{ID: fmt.Sprintf("k-%d", i), Name: "k", Kind: blocklist.KindUser, SPKISHA256: fmt.Sprintf("%x", h)})
	}
	l, err := blocklist.New(entries, 3, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A list that fits parses back with every key, and one past the format's
// 16-bit header length is an error. blocklist's hand-written header before
// wrapped its length past about 1,400 entries and wrote a file Parse
// rejects.
func TestFromListSize(t *testing.T) {
	data, err := crlset.FromList(keyOnlyList(t, 1380)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := crlset.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.InterceptionSPKIs()) != 1380 || c.Header.Sequence != 3 {
		t.Errorf("%d keys, sequence %d", len(c.InterceptionSPKIs()), c.Header.Sequence)
	}
	_, err = crlset.FromList(keyOnlyList(t, 1500)).Marshal()
	var tl *crlset.HeaderTooLongError
	if !errors.As(err, &tl) || tl.Keys != 1500 {
		t.Errorf("1,500 keys: %v", err)
	}
}
