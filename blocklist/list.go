package blocklist

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mitmguard/mitmguard/chain"
)

// Format identifies a blocklist file; FormatVersion is the version of the
// format this package reads and writes. See FORMAT.md.
const (
	Format        = "mitmguard-blocklist"
	FormatVersion = 1
)

// MaxFileSize bounds a blocklist file read from outside.
const MaxFileSize = 16 << 20

// List is an immutable, indexed set of entries. Build one with Parse, Load,
// FromPEM, Embedded or Merge; a List is safe for concurrent use.
type List struct {
	Version   int       // the list's own version, bumped on every publication
	Published time.Time // when that version was published
	Source    string    // where it came from: "embedded", a file name, a URL
	// Withdrawn are ids of entries of older lists that this list removes
	// on purpose (an update can remove an embedded entry only this way).
	Withdrawn []string
	entries   []*Entry
	bySPKI    map[chain.Hash]*Entry
	bySubject map[string][]*Entry // certificate-bearing entries by raw subject
}

type file struct {
	Format        string    `json:"format"`
	FormatVersion int       `json:"format_version"`
	ListVersion   int       `json:"list_version"`
	Published     time.Time `json:"published,omitzero"`
	Withdrawn     []string  `json:"withdrawn,omitempty"`
	Entries       []*Entry  `json:"entries"`
}

// Parse reads a blocklist file in the project's JSON format. Every entry is
// validated; the first problem is returned as a *FormatError naming the entry.
func Parse(data []byte, source string) (*List, error) {
	if len(data) > MaxFileSize {
		return nil, &FormatError{Source: source, Entry: -1, Err: fmt.Errorf("larger than %d bytes", MaxFileSize)}
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, &FormatError{Source: source, Entry: -1, Err: err}
	}
	if dec.More() {
		return nil, &FormatError{Source: source, Entry: -1, Err: errors.New("data after the JSON object")}
	}
	if f.Format != Format {
		return nil, &FormatError{Source: source, Entry: -1, Err: fmt.Errorf("format is %q, want %q", f.Format, Format)}
	}
	if f.FormatVersion != FormatVersion {
		return nil, &FormatError{Source: source, Entry: -1, Err: fmt.Errorf("format_version %d is not supported (this build reads %d)", f.FormatVersion, FormatVersion)}
	}
	for i, e := range f.Entries {
		if e == nil {
			return nil, &FormatError{Source: source, Entry: i, Err: errors.New("null entry")}
		}
		if err := e.validate(); err != nil {
			return nil, &FormatError{Source: source, Entry: i, ID: e.ID, Err: err}
		}
	}
	l, err := newList(f.Entries)
	if err != nil {
		return nil, &FormatError{Source: source, Entry: -1, Err: err}
	}
	l.Version, l.Published, l.Source, l.Withdrawn = f.ListVersion, f.Published, source, f.Withdrawn
	return l, nil
}

func newList(entries []*Entry) (*List, error) {
	l := &List{entries: entries, bySPKI: map[chain.Hash]*Entry{}, bySubject: map[string][]*Entry{}}
	ids := map[string]bool{}
	for _, e := range entries {
		if ids[e.ID] {
			return nil, fmt.Errorf("duplicate id %q", e.ID)
		}
		ids[e.ID] = true
		if prev, ok := l.bySPKI[e.spki]; ok {
			return nil, fmt.Errorf("entries %q and %q block the same key", prev.ID, e.ID)
		}
		l.bySPKI[e.spki] = e
		if e.cert != nil {
			k := string(e.cert.RawSubject)
			l.bySubject[k] = append(l.bySubject[k], e)
		}
	}
	return l, nil
}

// Marshal writes the list in the project's JSON format.
func (l *List) Marshal() ([]byte, error) {
	f := file{Format: Format, FormatVersion: FormatVersion, ListVersion: l.Version, Published: l.Published, Withdrawn: l.Withdrawn, Entries: l.entries}
	if f.Entries == nil {
		f.Entries = []*Entry{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(f)
	return buf.Bytes(), err
}

// Entries returns the entries in file order. The caller must not modify them.
func (l *List) Entries() []*Entry { return slices.Clone(l.entries) }

// Len returns the number of entries.
func (l *List) Len() int { return len(l.entries) }

// Lookup returns the entry blocking the key, or nil.
func (l *List) Lookup(spki chain.Hash) *Entry { return l.bySPKI[spki] }

// ByID returns the entry with the id, or nil.
func (l *List) ByID(id string) *Entry {
	for _, e := range l.entries {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// FormatError reports a blocklist file that cannot be used.
type FormatError struct {
	Source string
	Entry  int    // index of the offending entry, or -1 for the file as a whole
	ID     string // the entry's id, when it had one
	Err    error
}

func (e *FormatError) Error() string {
	where := "blocklist " + e.Source
	if e.Entry >= 0 {
		where += fmt.Sprintf(": entry %d", e.Entry+1)
		if e.ID != "" {
			where += fmt.Sprintf(" (%s)", e.ID)
		}
	}
	return where + ": " + e.Err.Error()
}

func (e *FormatError) Unwrap() error { return e.Err }

//go:embed blocklist.json
var embedded []byte

var embeddedList = sync.OnceValue(func() *List {
	l, err := Parse(embedded, "embedded")
	if err != nil {
		// The embedded file is validated by the package tests; a broken one
		// is a build defect, not a runtime condition.
		panic(err)
	}
	return l
})

// Embedded returns the curated list compiled into this binary.
func Embedded() *List { return embeddedList() }

// New validates the entries and makes a list of them, for programs that
// build a list rather than read one.
func New(entries []*Entry, version int, published time.Time) (*List, error) {
	for i, e := range entries {
		if err := e.validate(); err != nil {
			return nil, &FormatError{Source: "new", Entry: i, ID: e.ID, Err: err}
		}
	}
	l, err := newList(entries)
	if err != nil {
		return nil, err
	}
	l.Version, l.Published, l.Source = version, published, "new"
	return l, nil
}

// WithVersion returns a copy of the list with another version and
// publication time (what a publisher stamps on it).
func WithVersion(l *List, version int, published time.Time) *List {
	c := *l
	c.Version, c.Published = version, published.UTC()
	return &c
}
