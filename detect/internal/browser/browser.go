// Package browser runs the real browsers installed on the machine (Debian's
// chromium and firefox-esr) headless against a URL, each in a fresh profile,
// so that the reference generator can capture their ClientHellos and the
// tests can check how the detector judges them.
package browser

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Browser is one installed browser.
type Browser struct {
	Name  string // chromium or firefox
	Stack string // the detector's TLS stack name: chromium or firefox
	// Program is the command, Package the Debian package that has it.
	Program, Package string
	Path             string // empty when not installed
	Version          string // as --version prints it
	Major            int
}

// All returns the browsers the detector knows how to run, installed or not.
func All() []*Browser {
	out := []*Browser{
		{Name: "chromium", Stack: "chromium", Program: "chromium", Package: "chromium"},
		{Name: "firefox", Stack: "firefox", Program: "firefox-esr", Package: "firefox-esr"},
	}
	for _, b := range out {
		b.lookup()
	}
	return out
}

var versionRE = regexp.MustCompile(`(\d+)\.[\d.]+`)

func (b *Browser) lookup() {
	p, err := exec.LookPath(b.Program)
	if err != nil {
		return
	}
	cmd := exec.Command(p, "--version")
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir())
	out, err := cmd.Output()
	if err != nil {
		return
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return
	}
	b.Path, b.Version = p, strings.TrimSpace(string(out))
	b.Major, _ = strconv.Atoi(m[1])
}

// Open starts the browser headless on url in a new profile under dir,
// trusting root (may be nil) for TLS. The caller ends it with Stop.
// Chromium is told to ignore certificate errors when root is nil.
func (b *Browser) Open(ctx context.Context, url, dir string, root *x509.Certificate) (*exec.Cmd, error) {
	if b.Path == "" {
		return nil, fmt.Errorf("browser: %s is not installed (Debian package %s)", b.Program, b.Package)
	}
	profile := filepath.Join(dir, b.Name+"-profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch b.Name {
	case "chromium":
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + profile}
		if root == nil {
			args = append(args, "--ignore-certificate-errors")
		} else if err := nssTrust(ctx, filepath.Join(dir, "home", ".pki", "nssdb"), root); err != nil {
			return nil, err
		}
		cmd = exec.CommandContext(ctx, b.Path, append(args, url)...)
	case "firefox":
		if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs), 0o600); err != nil {
			return nil, err
		}
		if root != nil {
			if err := nssTrust(ctx, profile, root); err != nil {
				return nil, err
			}
		}
		cmd = exec.CommandContext(ctx, b.Path, "--headless", "--no-remote", "--profile", profile, url)
	}
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "MOZ_HEADLESS=1")
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
		return nil, err
	}
	// Its own process group, so that Stop ends the helper processes
	// (renderers, GPU, content) it starts too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// Stop ends a browser started by Open, with the processes it started.
func Stop(cmd *exec.Cmd) {
	if cmd != nil && cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
}

// firefoxPrefs keep a test profile quiet: no first-run pages, updates,
// telemetry or background connections, so the only TLS connection it makes
// is to the URL it is given.
const firefoxPrefs = `user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("services.settings.server", "https://127.0.0.1:1/");
user_pref("network.http.http3.enable", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
`

// nssTrust makes an NSS database in dir (a Firefox profile, or
// ~/.pki/nssdb for Chromium) that trusts root for TLS servers.
func nssTrust(ctx context.Context, dir string, root *x509.Certificate) error {
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		return fmt.Errorf("browser: certutil is not installed (Debian package libnss3-tools)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	db := "sql:" + dir
	if _, err := os.Stat(filepath.Join(dir, "cert9.db")); err != nil {
		if out, err := exec.CommandContext(ctx, certutil, "-N", "-d", db, "--empty-password").CombinedOutput(); err != nil {
			return fmt.Errorf("browser: certutil -N: %v: %s", err, out)
		}
	}
	pemFile := filepath.Join(dir, "trusted-root.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o600); err != nil {
		return err
	}
	trust := "C,,"
	if !root.IsCA {
		trust = "P,," // a self-signed server certificate: a trusted peer
	}
	if out, err := exec.CommandContext(ctx, certutil, "-A", "-d", db, "-n", "mitmguard-test-"+root.SerialNumber.String(), "-t", trust, "-i", pemFile).CombinedOutput(); err != nil {
		return fmt.Errorf("browser: certutil -A: %v: %s", err, out)
	}
	return nil
}
