package crlset

import (
	"bytes"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
)

// The blocklist's CRLSet export parses, names every entry's key on the
// right list, and survives Marshal/Parse unchanged.
func TestBlocklistRoundTrip(t *testing.T) {
	var b bytes.Buffer
	l := blocklist.Embedded()
	if err := l.Export(&b, blocklist.FormatCRLSet); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b.Bytes())
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
	c.Parents = []Parent{{SPKIHash: [32]byte{1}, Serials: [][]byte{{1, 2, 3}, {4}}}}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := c2.Marshal()
	if !bytes.Equal(out, out2) || len(c2.Parents) != 1 || len(c2.Parents[0].Serials) != 2 {
		t.Error("round trip changed the CRLSet")
	}
}

func TestBad(t *testing.T) {
	good, _ := (&CRLSet{Header: Header{ContentType: "CRLSet"}}).Marshal()
	for name, in := range map[string][]byte{
		"empty":        nil,
		"short header": {0xff, 0x00, '{'},
		"not json":     append([]byte{3, 0}, "abc"...),
		"wrong type":   append([]byte{25, 0}, `{"ContentType":"Other"} `...),
		"bad spki":     append([]byte{58, 0}, `{"ContentType":"CRLSet","BlockedSPKIs":["bm90IDMyIGJ5dGVz"]}`...),
		"lying count":  append(append([]byte{}, good...), append(make([]byte, 32), 0xff, 0xff, 0xff, 0x7f)...),
	} {
		if _, err := Parse(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParse: any bytes give a CRLSet or an error, and a CRLSet that parses
// marshals to bytes that parse to the same.
func FuzzParse(f *testing.F) {
	var b bytes.Buffer
	blocklist.Embedded().Export(&b, blocklist.FormatCRLSet)
	f.Add(b.Bytes())
	c := &CRLSet{Header: Header{ContentType: "CRLSet"}, Parents: []Parent{{Serials: [][]byte{{1}}}}}
	withParent, _ := c.Marshal()
	f.Add(withParent)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			return // e.g. a header that re-encodes longer than 65535 bytes
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-marshalled CRLSet does not parse: %v", err)
		}
		if len(c2.Parents) != len(c.Parents) {
			t.Fatal("parents changed")
		}
	})
}
