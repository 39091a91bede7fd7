package termsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// What a hostile name carries: an OSC that retitles the window, a CSI
// that clears the screen (7-bit and the 8-bit C1 form), a carriage return
// and a line break that forge a line, NUL, DEL, a tab, a right-to-left
// override; and what must pass: Cyrillic, Kazakh, CJK.
const hostile = "a\x1b]0;pwned\x07b\x1b[2J\u009b2Jc\r\nd\x00\x7f\te\u202ef Қазақстан 中"

func TestString(t *testing.T) {
	got := String(hostile)
	want := "a?]0;pwned?b?[2J?2Jc??d???e?f Қазақстан 中"
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestWriterKeepsNewlines(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b)
	n, err := w.Write([]byte(hostile))
	if err != nil || n != len(hostile) {
		t.Fatalf("Write = %d, %v; want %d", n, err, len(hostile))
	}
	want := "a?]0;pwned?b?[2J?2Jc?\nd???e?f Қазақстан 中"
	if b.String() != want {
		t.Fatalf("wrote %q, want %q", b.String(), want)
	}
	b.Reset()
	w.Write([]byte("plain line\n"))
	w.Write([]byte{'x', 0xff, 0xc2}) // invalid UTF-8; C1 cut in half
	if b.String() != "plain line\nx\uFFFD\uFFFD" {
		t.Fatalf("wrote %q", b.String())
	}
}

func FuzzWriter(f *testing.F) {
	f.Add([]byte(hostile))
	f.Add([]byte("plain\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var b strings.Builder
		if n, err := NewWriter(&b).Write(p); err != nil || n != len(p) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		for _, out := range []string{b.String(), String(string(p))} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out: %q", out)
			}
			for _, r := range out {
				if r != '\n' && unsafe(r) {
					t.Fatalf("%q reached the output of %q", r, p)
				}
			}
		}
		if strings.Contains(String(string(p)), "\n") {
			t.Fatalf("String kept a newline of %q", p)
		}
	})
}
