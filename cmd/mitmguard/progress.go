package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/mitmguard/mitmguard/measure"
)

// progressPrinter draws a bar with rate and ETA on a terminal, and a plain
// line every ten seconds otherwise (a log file, CI).
type progressPrinter struct {
	w     io.Writer
	total int // pairs, or -1 when unknown (standard input)
	tty   bool
	last  time.Time
	phase string // names a phase after the campaign's own ("locate")
}

// newProgressPrinter draws the bar only when w is a terminal. A character
// device is not enough: /dev/null is one, and a bar redrawn with \r into a
// log would be noise, so it asks the terminal driver (isatty).
func newProgressPrinter(w io.Writer, total int) *progressPrinter {
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	return &progressPrinter{w: w, total: total, tty: tty}
}

func (p *progressPrinter) print(pr measure.Progress) {
	rate := float64(pr.Pairs) / max(pr.Elapsed.Seconds(), 0.001)
	status := fmt.Sprintf("%d pairs, %d hosts, %.0f pairs/s", pr.Pairs, pr.Hosts, rate)
	frac, eta := -1.0, ""
	if p.total > 0 {
		frac = min(float64(pr.Pairs)/float64(p.total), 1)
		if rate > 0 {
			eta = " ETA " + time.Duration(float64(p.total-pr.Pairs)/rate*float64(time.Second)).Round(time.Second).String()
		}
		status = fmt.Sprintf("%d/%d pairs, %d hosts, %.0f pairs/s%s", pr.Pairs, p.total, pr.Hosts, rate, eta)
	}
	if pr.Skipped > 0 {
		status += fmt.Sprintf(", %d hosts already stored", pr.Skipped)
	}
	if p.phase != "" {
		status = p.phase + ": " + status
	}
	if p.tty {
		bar := ""
		if frac >= 0 {
			n := int(frac * 30)
			bar = "[" + strings.Repeat("#", n) + strings.Repeat("-", 30-n) + "] " + fmt.Sprintf("%3.0f%% ", frac*100)
		}
		fmt.Fprintf(p.w, "\r\033[K%s%s", bar, status)
		return
	}
	if time.Since(p.last) >= 10*time.Second {
		p.last = time.Now()
		fmt.Fprintf(p.w, "progress: %s\n", status)
	}
}
