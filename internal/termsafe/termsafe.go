// Package termsafe makes text from places the user does not control (a
// forged certificate, a campaign database, a disk image) safe to print on a
// terminal: a control character could run an escape sequence (retitle the
// window, clear the screen, hide lines), a line break could forge a line of
// the output, and a bidirectional override could make a name read as
// another. Each becomes '?'.
package termsafe

import (
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// unsafe reports whether r must not reach a terminal as it is: a C0 or C1
// control character, DEL, or a bidirectional control.
func unsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// String returns s with every unsafe character, line breaks included,
// replaced by '?': for one name or field printed inside a line.
func String(s string) string {
	return strings.Map(func(r rune) rune {
		if unsafe(r) {
			return '?'
		}
		return r
	}, s)
}

// Writer passes text to a terminal with every unsafe character but '\n'
// replaced by '?': for whole lines built from outside data. Invalid UTF-8
// becomes U+FFFD. Each Write should hold whole characters (as one
// fmt.Fprintf call does): a character split across two writes is replaced.
type Writer struct{ w io.Writer }

// NewWriter returns a Writer printing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w} }

func (t *Writer) Write(p []byte) (int, error) {
	if clean(p) {
		return t.w.Write(p)
	}
	n := len(p)
	q := make([]byte, 0, n)
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		switch {
		case r == '\n':
			q = append(q, '\n')
		case unsafe(r):
			q = append(q, '?')
		default: // RuneError for an invalid byte: written as U+FFFD
			q = utf8.AppendRune(q, r)
		}
		p = p[size:]
	}
	if _, err := t.w.Write(q); err != nil {
		return 0, err
	}
	return n, nil
}

// clean reports whether p is printable ASCII and newlines only, the common
// case, written as it is.
func clean(p []byte) bool {
	for _, c := range p {
		if (c < 0x20 && c != '\n') || c >= 0x7f {
			return false
		}
	}
	return true
}
