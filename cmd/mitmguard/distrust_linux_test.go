package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mitmguard/mitmguard/winstore/winstoretest"
)

// distrust --root on a Windows volume plans on the stores its audit read:
// each hive is opened once, not once for the audit and again for the plan
// (twice the work, and a plan that could differ from the audit it prints).
// inotify counts the opens.
func TestDistrustReadsHivesOnce(t *testing.T) {
	t.Setenv("MITMGUARD_DIR", t.TempDir())
	k := winstoretest.NewKazakh(t)
	hives := []string{
		filepath.Join(k.Dir, "Windows", "system32", "CONFIG", "SOFTWARE"),
		filepath.Join(k.Dir, "Users", "Aigerim", "ntuser.dat"),
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	watches := map[int32]string{}
	for _, h := range hives {
		wd, err := unix.InotifyAddWatch(fd, h, unix.IN_OPEN)
		if err != nil {
			t.Fatal(err)
		}
		watches[int32(wd)] = h
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"distrust", "--root", k.Dir}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "CN=Qaznet Trust Network") {
		t.Fatalf("no Windows plan:\n%s", out.String())
	}
	// The opens are queued by the time run returns (inotify records them
	// as the open happens); read them without waiting.
	opens := map[string]int{}
	buf := make([]byte, 64*unix.SizeofInotifyEvent)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_OPEN != 0 {
				opens[watches[ev.Wd]]++
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
	for _, h := range hives {
		if opens[h] != 1 {
			t.Errorf("%s opened %d times, want once", h, opens[h])
		}
	}
}
