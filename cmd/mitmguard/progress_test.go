//go:build unix

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmguard/mitmguard/internal/testtool"
	"github.com/mitmguard/mitmguard/measure"
)

// openPTY opens a new pseudo-terminal and returns its terminal side, the
// side a program's standard error is when it runs in a terminal window.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("a pseudo-terminal (%v)", err))
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}

// The bar is drawn on a terminal only: /dev/null is a character device but
// no terminal, and neither is a file or a pipe.
func TestProgressBarOnlyOnTerminal(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, f := range map[string]*os.File{"/dev/null": devNull, "a file": file, "a pipe": w} {
		if newProgressPrinter(f, 10).tty {
			t.Errorf("%s taken for a terminal", name)
		}
	}
	if !newProgressPrinter(openPTY(t), 10).tty {
		t.Error("a pseudo-terminal not taken for a terminal")
	}
}

// Off a terminal the printer writes plain lines, never the bar's escapes.
func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressPrinter(&buf, 100)
	p.print(measure.Progress{Pairs: 50, Hosts: 2, Elapsed: 5 * time.Second})
	got := buf.String()
	if !strings.HasPrefix(got, "progress: 50/100 pairs, 2 hosts, 10 pairs/s ETA 5s") || strings.ContainsAny(got, "\r\033") {
		t.Errorf("plain progress line %q", got)
	}
}
