package blocklist

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// MergeOptions configure MergeProposal.
type MergeOptions struct {
	// Date is the day the entries are added (their "added" field); the
	// zero time means now.
	Date time.Time
	// Evidence is the evidence reference given to proposed entries that
	// carry none (a URL or the path of a reviewed evidence bundle).
	Evidence string
}

// MergeResult is a reviewed merge: the new list and what changed.
type MergeResult struct {
	List *List
	// Added are the proposed entries that are new, as they are in List
	// (with their date added and evidence reference).
	Added []*Entry
	// Listed are proposed entries the current list already has, with the
	// same id and key; the current entry is kept as it is.
	Listed []*Entry
}

// MergeProposal adds the entries of proposed that current lacks and returns
// the next version of current (its list_version plus one). Unlike Merge,
// which unites lists a user combines, it is the review step of a
// publication and refuses rather than guesses: a proposed key already listed
// under another id, an id listed with another key or withdrawn, a proposal
// that withdraws entries, or a new entry without an evidence reference is a
// *MergeError naming every problem. Entries of current are never changed.
func MergeProposal(current, proposed *List, opts MergeOptions) (*MergeResult, error) {
	date := opts.Date
	if date.IsZero() {
		date = time.Now()
	}
	date = date.UTC()
	var problems []MergeProblem
	if len(proposed.Withdrawn) > 0 {
		problems = append(problems, MergeProblem{Kind: ProblemWithdraws, ID: strings.Join(proposed.Withdrawn, ",")})
	}
	res := &MergeResult{}
	entries := current.Entries()
	for _, p := range proposed.entries {
		byKey, byID := current.bySPKI[p.spki], current.ByID(p.ID)
		switch {
		case byKey != nil && byKey.ID == p.ID:
			res.Listed = append(res.Listed, p)
			continue
		case byKey != nil:
			problems = append(problems, MergeProblem{Kind: ProblemKeyListed, ID: p.ID, SPKI: p.SPKISHA256, CurrentID: byKey.ID})
			continue
		case byID != nil:
			problems = append(problems, MergeProblem{Kind: ProblemIDTaken, ID: p.ID, SPKI: p.SPKISHA256, CurrentSPKI: byID.SPKISHA256})
			continue
		case slices.Contains(current.Withdrawn, p.ID):
			problems = append(problems, MergeProblem{Kind: ProblemIDWithdrawn, ID: p.ID, SPKI: p.SPKISHA256})
			continue
		}
		e := *p
		e.Added = date.Format(time.DateOnly)
		if e.Evidence == "" {
			e.Evidence = opts.Evidence
		}
		if e.Evidence == "" {
			problems = append(problems, MergeProblem{Kind: ProblemNoEvidence, ID: p.ID, SPKI: p.SPKISHA256})
			continue
		}
		res.Added = append(res.Added, &e)
		entries = append(entries, &e)
	}
	if len(problems) > 0 {
		return nil, &MergeError{Problems: problems}
	}
	l, err := newList(entries)
	if err != nil {
		return nil, err // not reached: keys and ids were checked above
	}
	l.Version, l.Published, l.Source = current.Version+1, date, current.Source+"+"+proposed.Source
	l.Withdrawn = slices.Clone(current.Withdrawn)
	res.List = l
	return res, nil
}

// ProblemKind names why a proposed entry cannot be merged.
type ProblemKind string

// The problems MergeProposal refuses.
const (
	ProblemKeyListed   ProblemKind = "key-listed-under-another-id"
	ProblemIDTaken     ProblemKind = "id-listed-with-another-key"
	ProblemIDWithdrawn ProblemKind = "id-withdrawn"
	ProblemNoEvidence  ProblemKind = "no-evidence"
	ProblemWithdraws   ProblemKind = "proposal-withdraws"
)

// MergeProblem is one reason a merge was refused.
type MergeProblem struct {
	Kind        ProblemKind `json:"kind"`
	ID          string      `json:"id"`                     // the proposed entry's id (the withdrawn ids for ProblemWithdraws)
	SPKI        string      `json:"spki_sha256,omitempty"`  // the proposed entry's key
	CurrentID   string      `json:"current_id,omitempty"`   // ProblemKeyListed: the id the key is listed under
	CurrentSPKI string      `json:"current_spki,omitempty"` // ProblemIDTaken: the key listed under the id
}

func (p MergeProblem) String() string {
	switch p.Kind {
	case ProblemKeyListed:
		return fmt.Sprintf("proposed entry %q blocks key %s, which the current list already blocks as %q: drop the proposed entry, or withdraw %q in a separate change", p.ID, p.SPKI, p.CurrentID, p.CurrentID)
	case ProblemIDTaken:
		return fmt.Sprintf("proposed entry %q blocks key %s, but the current list has %q for key %s: give the proposed entry another id", p.ID, p.SPKI, p.ID, p.CurrentSPKI)
	case ProblemIDWithdrawn:
		return fmt.Sprintf("proposed entry %q uses an id the current list withdrew: give it another id", p.ID)
	case ProblemNoEvidence:
		return fmt.Sprintf("proposed entry %q has no evidence reference: add \"evidence\" to it, or pass one with --evidence", p.ID)
	case ProblemWithdraws:
		return fmt.Sprintf("the proposal withdraws %s: a merge only adds entries", p.ID)
	}
	return string(p.Kind) + " " + p.ID
}

// MergeError is a refused merge; nothing was merged.
type MergeError struct{ Problems []MergeProblem }

func (e *MergeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "blocklist: merge refused (%d problems, nothing merged):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}
