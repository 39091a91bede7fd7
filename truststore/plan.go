package truststore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/atomicfile"
)

// Step is one store's part of a distrust: what it changes and how.
type Step struct {
	Store       Kind       `json:"store"`
	StorePath   string     `json:"store_path"`
	Owner       string     `json:"owner"`
	Description string     `json:"description"`
	Certs       []string   `json:"certificates"`       // subjects of the roots it distrusts
	Commands    [][]string `json:"commands,omitempty"` // commands it runs
	Changes     []string   `json:"changes"`            // device paths it may change (backed up first)
	// Manual is set when the step cannot be applied here; Reason says why
	// and what to do by hand.
	Manual bool   `json:"manual,omitempty"`
	Reason string `json:"reason,omitempty"`

	run func(ctx context.Context, r rootFS, x runner) error
}

// Plan is the distrust of every root an audit flagged.
type Plan struct {
	Root  string `json:"root"`
	Steps []Step `json:"steps"`
}

// runner runs an external command; tests may not replace it (real tools
// only), but the CLI and tests share one implementation.
type runner func(ctx context.Context, name string, args ...string) error

func runCommand(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// MakePlan turns an audit into a plan: the known-interception roots that a
// store trusts, and with includeNotPublic the not-public ones too. Nothing
// is changed.
func MakePlan(rep *Report, root string, includeNotPublic bool) *Plan {
	if root == "" {
		root = "/"
	}
	r := rootFS{root: root}
	p := &Plan{Root: root, Steps: []Step{}}
	pick := func(f Finding) bool {
		return f.Trust == Trusted && (f.Status == KnownInterception || includeNotPublic && f.Status == NotPublic)
	}
	var debian []Finding
	byStore := map[*Store][]Finding{}
	var order []*Store
	for _, f := range rep.Findings {
		if !pick(f) {
			continue
		}
		switch f.Store {
		case DebianBundle, DebianHashedDir, DebianLocal, DebianShare:
			debian = append(debian, f)
		default:
			if _, ok := byStore[f.store]; !ok {
				order = append(order, f.store)
			}
			byStore[f.store] = append(byStore[f.store], f)
		}
	}
	if len(debian) > 0 {
		p.Steps = append(p.Steps, debianStep(r, debian))
	}
	for _, s := range order {
		fs := byStore[s]
		switch s.Kind {
		case P11KitAnchors, P11KitSource:
			p.Steps = append(p.Steps, p11kitStep(r, s, fs))
		case NSS:
			p.Steps = append(p.Steps, nssStep(r, s, fs))
		case Java:
			p.Steps = append(p.Steps, javaStep(r, s, fs))
		default:
			p.Steps = append(p.Steps, Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs),
				Description: "remove the certificates from " + s.Path, Manual: true,
				Reason: "mitmguard does not know how this store is used; remove the certificates by hand", Changes: []string{}})
		}
	}
	return p
}

func subjects(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.Subject) {
			out = append(out, f.Subject)
		}
	}
	return out
}

// debianStep removes administrator-added files, deselects packaged ones in
// /etc/ca-certificates.conf, removes certificates copied by hand into
// /etc/ssl/certs, and rebuilds with update-ca-certificates (the bundle and
// hashed folder are generated, and so lose every copy without a source).
func debianStep(r rootFS, fs []Finding) Step {
	st := Step{Store: DebianLocal, StorePath: "/etc/ssl/certs", Owner: "system", Certs: subjects(fs),
		Changes: []string{debianConf, debianLocal, debianCerts}}
	var remove, deselect []string
	for _, f := range fs {
		switch f.Store {
		case DebianLocal:
			remove = appendNew(remove, f.File)
		case DebianShare:
			deselect = appendNew(deselect, relShare(f.File))
		case DebianHashedDir, DebianBundle:
			// A hashed name links to its source; a source outside the two
			// source folders was copied in by hand and is removed.
			if f.Store == DebianHashedDir {
				if real, err := r.resolve(f.File); err == nil {
					dev := r.device(real)
					if !strings.HasPrefix(dev, debianLocal+"/") && !strings.HasPrefix(dev, debianShare+"/") {
						remove = appendNew(remove, dev)
					}
				}
			}
		}
	}
	var parts []string
	if len(remove) > 0 {
		parts = append(parts, "remove "+strings.Join(remove, ", "))
	}
	if len(deselect) > 0 {
		parts = append(parts, "deselect "+strings.Join(deselect, ", ")+" in "+debianConf)
	}
	parts = append(parts, "rebuild /etc/ssl/certs with update-ca-certificates")
	st.Description = strings.Join(parts, "; ")
	args := updateCAArgs(r.root)
	st.Commands = [][]string{append([]string{"update-ca-certificates"}, args...)}
	if _, err := exec.LookPath("update-ca-certificates"); err != nil {
		st.Manual, st.Reason = true, "update-ca-certificates is not installed here (Debian: apt-get install ca-certificates)"
	}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		for _, f := range remove {
			if err := os.Remove(r.real(f)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		if len(deselect) > 0 {
			if err := deselectInConf(r.real(debianConf), deselect); err != nil {
				return err
			}
		}
		return x(ctx, "update-ca-certificates", args...)
	}
	return st
}

// updateCAArgs are the arguments that point update-ca-certificates at the
// folders of the system under root. (Newer versions also have --sysroot;
// these options work on every version.) Hooks of another system are never
// run from here.
func updateCAArgs(root string) []string {
	r := rootFS{root: root}
	if r.root == "" || r.root == "/" {
		return []string{"--fresh"}
	}
	return []string{"--fresh",
		"--certsconf", r.real(debianConf), "--certsdir", r.real(debianShare),
		"--localcertsdir", r.real(debianLocal), "--etccertsdir", r.real(debianCerts),
		"--hooksdir", r.real("/nonexistent-mitmguard-hooks")}
}

// deselectInConf marks files with '!' in ca-certificates.conf, adding the
// line when the file was not listed.
func deselectInConf(path string, files []string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(data) == 0 {
		lines = nil
	}
	for _, f := range files {
		done := false
		for i, l := range lines {
			if strings.TrimSpace(l) == f {
				lines[i], done = "!"+f, true
			} else if strings.TrimSpace(l) == "!"+f {
				done = true
			}
		}
		if !done {
			lines = append(lines, "!"+f)
		}
	}
	return atomicfile.Write(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644, nil)
}

func relShare(file string) string { return strings.TrimPrefix(file, debianShare+"/") }

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// p11kitStep puts each root into the blocklist folder beside the anchors:
// p11-kit distrusts a blocklisted certificate whatever the anchors say, and
// the anchor file itself is left alone.
func p11kitStep(r rootFS, s *Store, fs []Finding) Step {
	blockDir := filepath.Join(adminBase(filepath.Dir(s.Path)), "blocklist")
	st := Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs),
		Description: "add the roots to " + blockDir, Changes: []string{blockDir}}
	var cmd []string
	if r.root == "/" || r.root == "" {
		if _, err := exec.LookPath("update-ca-trust"); err == nil {
			cmd = []string{"update-ca-trust", "extract"}
			st.Changes = append(st.Changes, filepath.Join(filepath.Dir(filepath.Dir(blockDir)), "extracted"))
		} else if _, err := exec.LookPath("trust"); err == nil {
			cmd = []string{"trust", "extract-compat"}
		}
	}
	if cmd != nil {
		st.Commands = [][]string{cmd}
		st.Description += " and re-extract with " + strings.Join(cmd, " ")
	} else {
		st.Description += " (then run update-ca-trust on that system to re-extract)"
	}
	certs := map[string]*chain.Cert{}
	for _, f := range fs {
		certs["mitmguard-"+f.SPKISHA256[:16]+".pem"] = f.cert.Cert
	}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		if err := os.MkdirAll(r.real(blockDir), 0o755); err != nil {
			return err
		}
		for name, c := range certs {
			if err := atomicfile.Write(r.real(filepath.Join(blockDir, name)), []byte(c.PEM()), 0o644, nil); err != nil {
				return err
			}
		}
		if cmd != nil {
			return x(ctx, cmd[0], cmd[1:]...)
		}
		return nil
	}
	return st
}

// adminBase maps a p11-kit base folder to the one the administrator writes
// to: the packaged /usr/share sources are read-only by convention.
func adminBase(base string) string {
	switch base {
	case "/usr/share/pki/ca-trust-source":
		return "/etc/pki/ca-trust/source"
	case "/usr/share/ca-certificates/trust-source":
		return "/etc/ca-certificates/trust-source"
	}
	return base
}

// nssStep distrusts each nickname with certutil: NSS protects its trust rows
// with a MAC in key4.db, so only NSS itself can write them.
func nssStep(r rootFS, s *Store, fs []Finding) Step {
	st := Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs),
		Changes: []string{s.Path + "/cert9.db", s.Path + "/key4.db", s.Path + "/pkcs11.txt"}}
	var nicks []string
	for _, f := range fs {
		nicks = appendNew(nicks, f.Label)
	}
	db := "sql:" + r.real(s.Path)
	for _, n := range nicks {
		st.Commands = append(st.Commands, []string{"certutil", "-M", "-d", db, "-n", n, "-t", "p,p,p"})
	}
	st.Description = fmt.Sprintf("mark %s distrusted (p,p,p) in the NSS database %s", strings.Join(quoteAll(nicks), ", "), s.Path)
	if _, err := exec.LookPath("certutil"); err != nil {
		st.Manual, st.Reason = true, errNoCertutil.Error()
	} else if pid, inUse := firefoxRunning(r, s.Path); inUse {
		st.Manual, st.Reason = true, fmt.Sprintf("Firefox (pid %d) has this profile open; close it and run mitmguard distrust again", pid)
	}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		for _, c := range st.Commands {
			if err := x(ctx, c[0], c[1:]...); err != nil {
				return err
			}
		}
		return nil
	}
	return st
}

// firefoxRunning reports a live Firefox holding the profile: on Linux it
// keeps a symlink "lock" whose target ends in "+PID".
func firefoxRunning(r rootFS, profile string) (int, bool) {
	t, err := os.Readlink(r.real(profile + "/lock"))
	if err != nil {
		return 0, false
	}
	var pid int
	if _, err := fmt.Sscanf(t[strings.LastIndex(t, "+")+1:], "%d", &pid); err != nil || pid <= 0 {
		return 0, false
	}
	if r.root != "/" && r.root != "" {
		return pid, true // an image's lock is stale or foreign; do not guess
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return pid, err == nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// javaStep deletes each alias with keytool.
func javaStep(r rootFS, s *Store, fs []Finding) Step {
	st := Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs), Changes: []string{}}
	real, err := r.resolve(s.Path)
	if err != nil {
		real = r.real(s.Path)
	}
	st.Changes = append(st.Changes, r.device(real))
	var aliases []string
	for _, f := range fs {
		aliases = appendNew(aliases, f.Label)
	}
	for _, a := range aliases {
		st.Commands = append(st.Commands, []string{"keytool", "-delete", "-noprompt", "-alias", a, "-keystore", real, "-storepass", DefaultJavaPassword})
	}
	st.Description = fmt.Sprintf("delete %s from the Java keystore %s", strings.Join(quoteAll(aliases), ", "), s.Path)
	if _, err := exec.LookPath("keytool"); err != nil {
		st.Manual, st.Reason = true, "keytool is not installed here (it comes with a JDK or JRE)"
	}
	if data, err := os.ReadFile(real); err == nil && (len(data) < 4 || string(data[:4]) != "\xfe\xed\xfe\xed") {
		st.Manual, st.Reason = true, "a PKCS#12 keystore: find the aliases with keytool -list and delete them by hand"
	}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		for _, c := range st.Commands {
			// On a running Debian system update-ca-certificates' Java hook
			// may already have removed the alias.
			if err := x(ctx, c[0], c[1:]...); err != nil && !strings.Contains(err.Error(), "does not exist") {
				return err
			}
		}
		return nil
	}
	return st
}
