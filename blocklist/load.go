package blocklist

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/mitmguard/mitmguard/chain"
)

// Load reads a user's blocklist file: the project's JSON format, or plain PEM
// certificates whose keys are to be blocked (each becomes an entry of kind
// "user" with an id made from its key hash).
func Load(data []byte, source string) (*List, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return Parse(data, source)
	}
	return FromPEM(data, source)
}

// FromPEM makes a list that blocks the keys of the PEM certificates in data.
func FromPEM(data []byte, source string) (*List, error) {
	if len(data) > MaxFileSize {
		return nil, &FormatError{Source: source, Entry: -1, Err: fmt.Errorf("larger than %d bytes", MaxFileSize)}
	}
	// Not chain.ParsePEM: a file of roots to block is not a chain, and may
	// hold more than a chain's certificates (the file size bounds it).
	var certs []*chain.Cert
	for c, err := range chain.PEMCertificates(data) {
		if err != nil {
			return nil, &FormatError{Source: source, Entry: -1, Err: fmt.Errorf("neither a mitmguard JSON blocklist nor PEM certificates: %w", err)}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, &FormatError{Source: source, Entry: -1, Err: fmt.Errorf("neither a mitmguard JSON blocklist nor PEM certificates: %w", chain.ErrNoCertificates)}
	}
	var entries []*Entry
	seen := map[chain.Hash]bool{}
	for _, c := range certs {
		if seen[c.SPKI] {
			continue
		}
		seen[c.SPKI] = true
		e := &Entry{
			ID:          "user-" + c.SPKI.String()[:16],
			Name:        c.Subject(),
			Kind:        KindUser,
			Notes:       "from " + source,
			Certificate: c.PEM(),
		}
		if err := e.validate(); err != nil {
			return nil, &FormatError{Source: source, Entry: len(entries), Err: err}
		}
		entries = append(entries, e)
	}
	l, err := newList(entries)
	if err != nil {
		return nil, &FormatError{Source: source, Entry: -1, Err: err}
	}
	l.Source = source
	return l, nil
}

// Merge returns the union of the lists. When two lists block the same key the
// entry of the earlier list wins, so the curated list passed first keeps its
// provenance; an id already taken by a different key gets a numeric suffix.
func Merge(lists ...*List) *List {
	var entries []*Entry
	keys := map[chain.Hash]bool{}
	ids := map[string]bool{}
	out := &List{}
	for _, l := range lists {
		if l == nil {
			continue
		}
		if out.Source == "" {
			out.Version, out.Published, out.Source = l.Version, l.Published, l.Source
		} else {
			out.Source += "+" + l.Source
		}
		for _, e := range l.entries {
			if keys[e.spki] {
				continue
			}
			keys[e.spki] = true
			if ids[e.ID] {
				c := *e
				for i := 2; ids[c.ID]; i++ {
					c.ID = fmt.Sprintf("%s-%d", e.ID, i)
				}
				e = &c
			}
			ids[e.ID] = true
			entries = append(entries, e)
		}
	}
	l, err := newList(entries)
	if err != nil {
		panic("blocklist: merge produced an inconsistent list: " + err.Error()) // keys and ids were deduplicated above
	}
	l.Version, l.Published, l.Source = out.Version, out.Published, out.Source
	return l
}

// Without returns the list minus the entries with these ids.
func (l *List) Without(ids []string) *List {
	var keep []*Entry
	for _, e := range l.entries {
		if !slices.Contains(ids, e.ID) {
			keep = append(keep, e)
		}
	}
	out, err := newList(keep)
	if err != nil {
		panic("blocklist: a subset of a valid list is invalid: " + err.Error())
	}
	out.Version, out.Published, out.Source = l.Version, l.Published, l.Source
	return out
}
