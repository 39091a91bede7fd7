//go:build unix

package truststore

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mitmguard/mitmguard/internal/regf"
	"github.com/mitmguard/mitmguard/internal/regf/regftest"
	"github.com/mitmguard/mitmguard/internal/storetest"
	"github.com/mitmguard/mitmguard/winstore"
	"github.com/mitmguard/mitmguard/winstore/winstoretest"
)

// Issue 17 item 1: a mounted Windows volume, its hives written by hivexsh.
// Qaznet (machine ROOT) and ISCA (Aigerim's Root) are known interception
// roots, trusted; the corporate root is not public; the ISCA CA, in ROOT
// and in Disallowed, is distrusted.
func TestWindowsVolume(t *testing.T) {
	k := winstoretest.NewKazakh(t)
	rep := audit(t, k.Dir)
	for _, s := range rep.Stores {
		if len(s.Problems) > 0 {
			t.Errorf("%s %s: %v", s.Kind, s.Path, s.Problems)
		}
	}
	if !rep.TrustsKnownInterception() {
		t.Fatal("no trusted known-interception root")
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, strings.Join([]string{string(f.Status), string(f.Trust), string(f.Store), f.StorePath, f.Owner, f.File, f.Label, f.EntryID}, " | "))
	}
	sort.Strings(got)
	th := winstore.Thumbprint
	want := []string{
		"known-interception | distrusted | windows-disallowed | HKLM\\SOFTWARE\\Microsoft\\SystemCertificates\\Disallowed | machine | /Windows/system32/CONFIG/SOFTWARE | " + th(k.ISCACA) + " | kz-2020-isca-ca",
		"known-interception | distrusted | windows-root | HKLM\\SOFTWARE\\Microsoft\\SystemCertificates\\ROOT | machine | /Windows/system32/CONFIG/SOFTWARE | " + th(k.ISCACA) + " | kz-2020-isca-ca",
		"known-interception | trusted | windows-root | HKCU\\Software\\Microsoft\\SystemCertificates\\Root | user Aigerim | /Users/Aigerim/ntuser.dat | " + th(k.ISCA) + " | kz-2021-isca",
		"known-interception | trusted | windows-root | HKLM\\SOFTWARE\\Microsoft\\SystemCertificates\\ROOT | machine | /Windows/system32/CONFIG/SOFTWARE | " + th(k.Qaznet) + " | kz-2019-qaznet",
		"not-public | trusted | windows-root | HKLM\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates\\Root | machine (Group Policy) | /Windows/system32/CONFIG/SOFTWARE | " + th(k.Corp) + " | ",
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range rep.Findings {
		switch {
		case f.EntryID == "kz-2021-isca" && !strings.Contains(f.Action, `Remove-Item Cert:\CurrentUser\Root\`+th(k.ISCA)):
			t.Errorf("user action: %s", f.Action)
		case f.EntryID == "kz-2019-qaznet" && !strings.Contains(f.Action, `Remove-Item Cert:\LocalMachine\Root\`+th(k.Qaznet)):
			t.Errorf("machine action: %s", f.Action)
		case f.Status == NotPublic && !strings.Contains(f.Action, "Group Policy object"):
			t.Errorf("policy action: %s", f.Action)
		}
	}
}

// problems returns the problems of the audit of root, by device path.
func problems(t *testing.T, root string) map[string]error {
	t.Helper()
	out := map[string]error{}
	for _, s := range read(t, root) {
		for _, p := range s.Problems {
			out[p.Path] = p.Err
		}
	}
	return out
}

// Issue 17 item 2: hostile volumes. Each hive is refused with its own
// error, as a problem of the audit (which makes it partial), and the rest
// of the volume is still read.
func TestWindowsHostileVolume(t *testing.T) {
	software := func(dir string) string { return filepath.Join(dir, "Windows", "system32", "CONFIG", "SOFTWARE") }
	user := func(dir string) string { return filepath.Join(dir, "Users", "Aigerim", "ntuser.dat") }
	for name, tc := range map[string]struct {
		spoil func(t *testing.T, dir string)
		path  string
		check func(err error) bool
	}{
		"truncated hive": {
			spoil: func(t *testing.T, dir string) {
				b, _ := os.ReadFile(user(dir))
				storetest.Write(t, user(dir), string(b[:len(b)-4096]))
			},
			path:  "/Users/Aigerim/ntuser.dat",
			check: func(err error) bool { var e *regf.CorruptError; return errors.As(err, &e) },
		},
		"cyclic cell offsets": {
			spoil: func(t *testing.T, dir string) {
				b, _ := os.ReadFile(software(dir))
				storetest.Write(t, software(dir), string(regftest.LoopKey(t, b, "Certificates")))
			},
			path:  `/Windows/system32/CONFIG/SOFTWARE:Microsoft\SystemCertificates\ROOT`,
			check: func(err error) bool { var e *regf.CycleError; return errors.As(err, &e) },
		},
		"1 GB sparse hive": {
			spoil: func(t *testing.T, dir string) {
				if err := os.Truncate(software(dir), 1<<30); err != nil {
					t.Fatal(err)
				}
			},
			path:  "/Windows/system32/CONFIG/SOFTWARE",
			check: func(err error) bool { var e *regf.TooLargeError; return errors.As(err, &e) },
		},
		"symlink out of the root": {
			spoil: func(t *testing.T, dir string) {
				outside := filepath.Join(t.TempDir(), "NTUSER.DAT")
				if err := os.Rename(user(dir), outside); err != nil {
					t.Fatal(err)
				}
				storetest.Symlink(t, outside, user(dir))
			},
			path:  "/Users/Aigerim/ntuser.dat",
			check: func(err error) bool { var e *winstore.OutsideError; return errors.As(err, &e) },
		},
		"FIFO in place of a hive": {
			spoil: func(t *testing.T, dir string) {
				os.Remove(software(dir))
				if err := syscall.Mkfifo(software(dir), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			path:  "/Windows/system32/CONFIG/SOFTWARE",
			check: func(err error) bool { var e *winstore.NotRegularError; return errors.As(err, &e) },
		},
		"a profile folder of 2,000 entries": {
			spoil: func(t *testing.T, dir string) {
				big := filepath.Join(dir, "Users", "Big")
				if err := os.Mkdir(big, 0o755); err != nil {
					t.Fatal(err)
				}
				for i := range 2000 {
					f, err := os.Create(filepath.Join(big, "f"+strconv.Itoa(i)))
					if err != nil {
						t.Fatal(err)
					}
					f.Close()
				}
			},
			path:  "/Users/Big",
			check: func(err error) bool { var e *winstore.TooManyEntriesError; return errors.As(err, &e) },
		},
		"100,000 entries in Users": {
			spoil: func(t *testing.T, dir string) {
				for i := range 100000 {
					f, err := os.Create(filepath.Join(dir, "Users", "u"+strconv.Itoa(i)))
					if err != nil {
						t.Fatal(err)
					}
					f.Close()
				}
			},
			path:  "/Users",
			check: func(err error) bool { var e *winstore.TooManyEntriesError; return errors.As(err, &e) },
		},
	} {
		t.Run(name, func(t *testing.T) {
			k := winstoretest.NewKazakh(t)
			tc.spoil(t, k.Dir)
			probs := problems(t, k.Dir)
			err, ok := probs[tc.path]
			if !ok || !tc.check(err) {
				t.Fatalf("problem at %s: %v (all: %v)", tc.path, err, probs)
			}
			for p, err := range probs {
				if !tc.check(err) {
					t.Errorf("other problem at %s: %v", p, err)
				}
			}
			t.Log(err)
		})
	}
}

// The running system is "" or "/" only: a root such as `\` or C:\ is read
// as a volume's hives, so distrust (which asks LiveRoot too) must not
// apply its plan, with other profiles' stores, to the live stores.
func TestLiveRoot(t *testing.T) {
	for root, want := range map[string]bool{"": true, "/": true, `\`: false, `C:\`: false, "/mnt/windows": false} {
		if got := LiveRoot(root); got != want {
			t.Errorf("LiveRoot(%q) = %v, want %v", root, got, want)
		}
	}
}
