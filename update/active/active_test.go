package active

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/blocklist"
)

// The systemd unit installs the list where every command reads it: the
// folder a command run by any user, without settings, reads is the folder
// the unit's update writes. (The unit once set MITMGUARD_CACHE to
// /var/cache/mitmguard while the commands read the user's cache folder.)
func TestSystemdUnitUsesTheOneFolder(t *testing.T) {
	t.Setenv(EnvDir, "")
	t.Setenv(legacyEnvDir, "")
	t.Setenv("HOME", t.TempDir())
	commandsRead := Dir()

	f, err := os.Open("../../docs/systemd/mitmguard-update.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unitWrites, writable := commandsRead, map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		switch key {
		case "Environment":
			for _, env := range []string{EnvDir, legacyEnvDir} {
				if v, ok := strings.CutPrefix(strings.Trim(val, `"`), env+"="); ok {
					unitWrites = v
				}
			}
		case "StateDirectory":
			writable[filepath.Join("/var/lib", val)] = true
		case "ReadWritePaths":
			for _, p := range strings.Fields(val) {
				writable[p] = true
			}
		case "ExecStart":
			if strings.Contains(val, "--cache") || strings.Contains(val, "--dir") {
				t.Errorf("the unit moves the folder on the command line: %s", val)
			}
		}
	}
	if unitWrites != commandsRead {
		t.Errorf("the unit's update installs into %s, the commands read %s", unitWrites, commandsRead)
	}
	if !writable[unitWrites] {
		t.Errorf("the unit cannot write %s (writable: %v)", unitWrites, writable)
	}
}

func TestDir(t *testing.T) {
	t.Setenv(EnvDir, "")
	t.Setenv(legacyEnvDir, "")
	if d := Dir(); d != DefaultDir {
		t.Errorf("default %s", d)
	}
	t.Setenv(legacyEnvDir, "/old")
	if d := Dir(); d != "/old" {
		t.Errorf("legacy %s", d)
	}
	t.Setenv(EnvDir, "/new")
	if d := Dir(); d != "/new" {
		t.Errorf("%s", d)
	}
}

// A damaged installed list is reported, and the embedded list used.
func TestLoadDamaged(t *testing.T) {
	dir := t.TempDir()
	if l, st, err := Load(dir); err != nil || st != nil || l.Len() != blocklist.Embedded().Len() {
		t.Fatalf("nothing installed: %v %v", st, err)
	}
	os.WriteFile(filepath.Join(dir, ListFile), []byte(`{"format": 1, "entries": [`), 0o644)
	l, _, err := Load(dir)
	var de *DamagedError
	if !errors.As(err, &de) || l.Len() != blocklist.Embedded().Len() {
		t.Fatalf("damaged: %v", err)
	}
	if List().Len() < blocklist.Embedded().Len() {
		t.Error("List lost the floor")
	}
}

// A list an earlier release installed in the user's cache folder is not
// silently dropped: Load says where the list lives now.
func TestLoadMovedList(t *testing.T) {
	if _, err := os.Stat(filepath.Join(DefaultDir, ListFile)); err == nil {
		t.Skipf("this machine has a list in %s", DefaultDir)
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	os.MkdirAll(filepath.Join(cache, "mitmguard"), 0o755)
	data, _ := blocklist.Embedded().Marshal()
	os.WriteFile(filepath.Join(cache, "mitmguard", ListFile), data, 0o644)
	l, _, err := Load(DefaultDir)
	var me *MovedError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "mitmguard update") || l.Len() != blocklist.Embedded().Len() {
		t.Fatalf("%v", err)
	}
	if _, _, err := Load(t.TempDir()); err != nil {
		t.Errorf("a folder set by the user: %v", err)
	}
}
