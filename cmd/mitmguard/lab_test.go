package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A lab without --dir removes its temporary folder when Ctrl-C (SIGINT),
// SIGTERM or a closed terminal (SIGHUP) stops it; it used to leave
// /tmp/mitmguard-lab-* behind.
func TestLabRemovesTemporaryFolderOnSignal(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		sig  syscall.Signal
	}{
		{"lab SIGINT", []string{"lab"}, syscall.SIGINT},
		{"lab SIGTERM", []string{"lab"}, syscall.SIGTERM},
		{"lab SIGHUP", []string{"lab"}, syscall.SIGHUP},
		{"network SIGTERM", []string{"lab", "--network", "1"}, syscall.SIGTERM},
		{"hops SIGTERM", []string{"lab", "--hops", "1", "--netns-prefix", "mgt-sig"}, syscall.SIGTERM},
	} {
		t.Run(c.name, func(t *testing.T) {
			folder, file := "mitmguard-lab-", "national-root.pem"
			if len(c.args) > 1 && c.args[1] == "--hops" {
				needHops(t)
				folder, file = "mitmguard-hops-", "public-root.pem"
				defer noneLeft(t, "mgt-sig")
			}
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], c.args...)
			cmd.Env = append(os.Environ(), mainEnv+"=1", "TMPDIR="+tmp)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// Wait for the lab to say where its files are: it is then up,
			// with its signal handler in place.
			sc := bufio.NewScanner(stdout)
			var dir string
			for dir == "" && sc.Scan() {
				line := sc.Text()
				if _, rest, ok := strings.Cut(line, "roots in   "); ok {
					dir, _, _ = strings.Cut(rest, " ")
				} else if _, rest, ok := strings.Cut(line, "files in "); ok {
					dir, _, _ = strings.Cut(rest, " ")
				}
			}
			if dir == "" {
				t.Fatalf("the lab never said where its files are (%v)", sc.Err())
			}
			if filepath.Dir(dir) != tmp || !strings.HasPrefix(filepath.Base(dir), folder) {
				t.Fatalf("folder %s, want a %s* in %s", dir, folder, tmp)
			}
			if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			var rest []byte
			done := make(chan error, 1)
			go func() {
				rest, _ = io.ReadAll(stdout) // to the end: Wait closes the pipe
				done <- cmd.Wait()
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("lab after %v: %v", c.sig, err)
				}
			case <-time.After(time.Minute):
				t.Fatal("the lab did not stop within a minute of the signal")
			}
			if !strings.Contains(string(rest), "lab stopped") {
				t.Errorf("output after the signal: %q", rest)
			}
			left, _ := os.ReadDir(tmp)
			for _, e := range left {
				t.Errorf("left behind: %s", filepath.Join(tmp, e.Name()))
			}
		})
	}
}
