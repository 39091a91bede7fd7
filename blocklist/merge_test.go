package blocklist

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"
)

// keyEntry returns an entry known by key only, its key made from seed.
func keyEntry(id, seed string) *Entry {
	h := sha256.Sum256([]byte(seed))
	return &Entry{ID: id, Name: "CN=" + id, Kind: KindGovernment, SPKISHA256: hex.EncodeToString(h[:])}
}

func mustNew(t *testing.T, version int, entries ...*Entry) *List {
	t.Helper()
	l, err := New(entries, version, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMergeProposalAdds(t *testing.T) {
	current := mustNew(t, 7, keyEntry("kz-a", "a"), keyEntry("kz-b", "b"))
	current.Withdrawn = []string{"old"}
	fresh := keyEntry("kz-new", "new")
	fresh.Evidence = "evidence/kz-new.json"
	proposed := mustNew(t, 0, keyEntry("kz-a", "a"), fresh, keyEntry("kz-plain", "plain"))
	date := time.Date(2026, 11, 25, 23, 0, 0, 0, time.FixedZone("KZ", 5*3600))

	res, err := MergeProposal(current, proposed, MergeOptions{Date: date, Evidence: "https://example.org/review/1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.List.Version != 8 || !res.List.Published.Equal(date) || !slices.Equal(res.List.Withdrawn, []string{"old"}) {
		t.Errorf("version %d published %v withdrawn %v", res.List.Version, res.List.Published, res.List.Withdrawn)
	}
	var ids []string
	for _, e := range res.List.Entries() {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []string{"kz-a", "kz-b", "kz-new", "kz-plain"}) {
		t.Errorf("entries %v", ids)
	}
	if len(res.Added) != 2 || len(res.Listed) != 1 || res.Listed[0].ID != "kz-a" {
		t.Fatalf("added %v listed %v", res.Added, res.Listed)
	}
	// The day is the UTC day; an entry's own reference wins over --evidence.
	if a := res.List.ByID("kz-new"); a.Added != "2026-11-25" || a.Evidence != "evidence/kz-new.json" {
		t.Errorf("kz-new: added %q evidence %q", a.Added, a.Evidence)
	}
	if a := res.List.ByID("kz-plain"); a.Evidence != "https://example.org/review/1" {
		t.Errorf("kz-plain: evidence %q", a.Evidence)
	}
	if current.ByID("kz-a").Added != "" || proposed.ByID("kz-new").Added != "" {
		t.Error("the inputs were modified")
	}
	// The result is a valid file that keeps what the merge added.
	data, err := res.List.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data, "merged")
	if err != nil {
		t.Fatal(err)
	}
	if e := back.ByID("kz-new"); e == nil || e.Added != "2026-11-25" || e.Evidence != "evidence/kz-new.json" || back.Version != 8 {
		t.Errorf("round trip lost the merge: %+v", e)
	}
}

func TestMergeProposalRefuses(t *testing.T) {
	current := mustNew(t, 3, keyEntry("kz-a", "a"), keyEntry("kz-b", "b"))
	current.Withdrawn = []string{"kz-gone"}
	withEvidence := func(e *Entry) *Entry { e.Evidence = "ev"; return e }
	for _, tc := range []struct {
		name     string
		proposed *List
		want     []MergeProblem
	}{
		{"key under another id", mustNew(t, 0, withEvidence(keyEntry("kz-renamed", "a"))),
			[]MergeProblem{{Kind: ProblemKeyListed, ID: "kz-renamed", SPKI: keyEntry("", "a").SPKISHA256, CurrentID: "kz-a"}}},
		{"id with another key", mustNew(t, 0, withEvidence(keyEntry("kz-b", "other"))),
			[]MergeProblem{{Kind: ProblemIDTaken, ID: "kz-b", SPKI: keyEntry("", "other").SPKISHA256, CurrentSPKI: keyEntry("", "b").SPKISHA256}}},
		{"withdrawn id", mustNew(t, 0, withEvidence(keyEntry("kz-gone", "g"))),
			[]MergeProblem{{Kind: ProblemIDWithdrawn, ID: "kz-gone", SPKI: keyEntry("", "g").SPKISHA256}}},
		{"no evidence", mustNew(t, 0, keyEntry("kz-c", "c")),
			[]MergeProblem{{Kind: ProblemNoEvidence, ID: "kz-c", SPKI: keyEntry("", "c").SPKISHA256}}},
		{"every problem at once", mustNew(t, 0, withEvidence(keyEntry("kz-renamed", "a")), keyEntry("kz-c", "c")),
			[]MergeProblem{{Kind: ProblemKeyListed, ID: "kz-renamed", SPKI: keyEntry("", "a").SPKISHA256, CurrentID: "kz-a"}, {Kind: ProblemNoEvidence, ID: "kz-c", SPKI: keyEntry("", "c").SPKISHA256}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := MergeProposal(current, tc.proposed, MergeOptions{})
			var me *MergeError
			if !errors.As(err, &me) || res != nil {
				t.Fatalf("err = %v, res = %v", err, res)
			}
			if !slices.Equal(me.Problems, tc.want) {
				t.Errorf("problems\n %+v\nwant\n %+v", me.Problems, tc.want)
			}
		})
	}
	withdrawing := mustNew(t, 0)
	withdrawing.Withdrawn = []string{"kz-a"}
	var me *MergeError
	if _, err := MergeProposal(current, withdrawing, MergeOptions{}); !errors.As(err, &me) || me.Problems[0].Kind != ProblemWithdraws {
		t.Errorf("a withdrawing proposal: %v", err)
	}
}

// A date added that is not a day is refused; lists without the new fields
// (every list written before them) stay valid.
func TestAddedField(t *testing.T) {
	e := keyEntry("kz-a", "a")
	e.Added = "2026-11"
	if _, err := New([]*Entry{e}, 1, time.Time{}); err == nil {
		t.Error("added 2026-11 accepted")
	}
	if _, err := Parse(embedded, "embedded"); err != nil {
		t.Error(err)
	}
}

// FuzzMergeProposal merges two arbitrary list files: a merge returns a list
// or a *MergeError, never panics, keeps every current entry unchanged, and
// writes a file that parses.
func FuzzMergeProposal(f *testing.F) {
	f.Add(embedded, []byte(`{"format":"mitmguard-blocklist","format_version":1,"entries":[{"id":"x","name":"x","kind":"user","evidence":"e","spki_sha256":"`+keyEntry("", "x").SPKISHA256+`"}]}`))
	f.Add(embedded, embedded)
	f.Fuzz(func(t *testing.T, cur, prop []byte) {
		current, err := Load(cur, "current")
		if err != nil {
			return
		}
		proposed, err := Load(prop, "proposed")
		if err != nil {
			return
		}
		res, err := MergeProposal(current, proposed, MergeOptions{Evidence: "fuzz"})
		if err != nil {
			var me *MergeError
			if !errors.As(err, &me) || len(me.Problems) == 0 {
				t.Fatalf("error %v", err)
			}
			return
		}
		if res.List.Len() != current.Len()+len(res.Added) || len(res.Added)+len(res.Listed) != proposed.Len() {
			t.Fatalf("%d + %d added != %d", current.Len(), len(res.Added), res.List.Len())
		}
		for _, e := range current.Entries() {
			if res.List.ByID(e.ID) != e {
				t.Fatalf("current entry %s changed", e.ID)
			}
		}
		data, err := res.List.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(data, "merged"); err != nil {
			t.Fatalf("merged list does not parse: %v", err)
		}
	})
}
