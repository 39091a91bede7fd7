package distrust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/rootfs"
	"github.com/mitmguard/mitmguard/truststore"
)

// Step is one store's part of a distrust: what it changes and how.
type Step struct {
	Store       truststore.Kind `json:"store"`
	StorePath   string          `json:"store_path"`
	Owner       string          `json:"owner"`
	Description string          `json:"description"`
	Certs       []string        `json:"certificates"`       // subjects of the roots it distrusts
	Commands    [][]string      `json:"commands,omitempty"` // commands it runs
	Changes     []string        `json:"changes"`            // device paths it may change (backed up first)
	// Manual is set when the step cannot be applied here; Reason says why
	// and what to do by hand.
	Manual bool   `json:"manual,omitempty"`
	Reason string `json:"reason,omitempty"`

	// removes are device paths the step removes beyond Changes; they are
	// backed up too.
	removes []string
	// reads are device paths its tool reads beyond Changes.
	reads []string
	run   func(ctx context.Context, r rootFS, x runner) error
}

// storeRef names one store of an audit.
type storeRef struct {
	Kind        truststore.Kind
	Path, Owner string
}

// Plan is the distrust of every root an audit flagged.
type Plan struct {
	Root  string `json:"root"`
	Steps []Step `json:"steps"`
}

// runner runs an external command; tests may not replace it (real tools
// only), but the CLI and tests share one implementation.
type runner func(ctx context.Context, name string, args ...string) error

// runCommand runs a tool in the C locale, so that its messages do not
// depend on the user's language.
func runCommand(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "LANGUAGE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// MakePlan turns an audit into a plan: the known-interception roots that a
// store trusts, and with includeNotPublic the not-public ones too. Nothing
// is changed.
func MakePlan(rep *truststore.Report, root string, includeNotPublic bool) (*Plan, error) {
	if root == "" {
		root = "/"
	}
	fsys, err := rootfs.Open(root)
	if err != nil {
		return nil, &truststore.RootError{Root: root, Err: err}
	}
	defer fsys.Close()
	r := rootFS{fsys}
	p := &Plan{Root: root, Steps: []Step{}}
	var debian []truststore.Finding
	// A store is named by its kind, path and owner.
	byStore := map[storeRef][]truststore.Finding{}
	var order []storeRef
	for _, f := range rep.Findings {
		if !picked(f, includeNotPublic) || truststore.IsWindows(f.Store) {
			continue // Windows stores are planned by PlanWindows
		}
		switch f.Store {
		case truststore.DebianBundle, truststore.DebianHashedDir, truststore.DebianLocal, truststore.DebianShare:
			debian = append(debian, f)
		default:
			s := storeRef{Kind: f.Store, Path: f.StorePath, Owner: f.Owner}
			if _, ok := byStore[s]; !ok {
				order = append(order, s)
			}
			byStore[s] = append(byStore[s], f)
		}
	}
	if len(debian) > 0 {
		p.Steps = append(p.Steps, debianStep(r, debian))
	}
	for _, s := range order {
		fs := byStore[s]
		switch s.Kind {
		case truststore.P11KitAnchors, truststore.P11KitSource:
			p.Steps = append(p.Steps, p11kitStep(r, s, fs))
		case truststore.NSS:
			p.Steps = append(p.Steps, nssStep(r, s, fs))
		case truststore.Java:
			p.Steps = append(p.Steps, javaStep(r, s, fs))
		case truststore.AndroidAdded, truststore.AndroidSystem:
			p.Steps = append(p.Steps, Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs),
				Description: "remove the user-added roots, or turn off the system ones, on the phone", Manual: true,
				Reason: "done on the phone: Settings > Security > Encryption & credentials > Trusted credentials (User: Remove; System: Turn off)", Changes: []string{}})
		default:
			p.Steps = append(p.Steps, Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs),
				Description: "remove the certificates from " + s.Path, Manual: true,
				Reason: "mitmguard does not know how this store is used; remove the certificates by hand", Changes: []string{}})
		}
	}
	return p, nil
}

func subjects(fs []truststore.Finding) []string {
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
// A file that a package installed (ssl-cert's snakeoil certificate, any
// file dpkg lists) is never removed.
func debianStep(r rootFS, fs []truststore.Finding) Step {
	st := Step{Store: truststore.DebianLocal, StorePath: "/etc/ssl/certs", Owner: "system", Certs: subjects(fs),
		Changes: []string{debianConf, debianLocal, debianCerts}}
	var remove, deselect, kept []string
	owners := packageOwners(r)
	for _, f := range fs {
		var cand string
		switch f.Store {
		case truststore.DebianLocal:
			cand = f.File
		case truststore.DebianShare:
			deselect = appendNew(deselect, relShare(f.File))
		case truststore.DebianHashedDir:
			// A hashed name links to its source; a source outside the two
			// source folders was copied in by hand and is removed.
			if dev, err := r.Resolve(f.File); err == nil && !strings.HasPrefix(dev, debianLocal+"/") && !strings.HasPrefix(dev, debianShare+"/") {
				cand = dev
			}
		}
		if cand == "" {
			continue
		}
		if pkg, owned := owners(cand); owned {
			kept = appendNew(kept, cand+" (installed by "+pkg+")")
			continue
		}
		remove = appendNew(remove, cand)
	}
	var parts []string
	if len(remove) > 0 {
		parts = append(parts, "remove "+strings.Join(remove, ", "))
	}
	if len(deselect) > 0 {
		parts = append(parts, "deselect "+strings.Join(deselect, ", ")+" in "+debianConf)
	}
	if len(kept) > 0 {
		parts = append(parts, "keep "+strings.Join(kept, ", "))
	}
	parts = append(parts, "rebuild /etc/ssl/certs with update-ca-certificates")
	st.Description = strings.Join(parts, "; ")
	st.Commands = [][]string{append([]string{"update-ca-certificates"}, updateCAArgs(r)...)}
	if _, err := exec.LookPath("update-ca-certificates"); err != nil {
		st.Manual, st.Reason = true, "update-ca-certificates is not installed here (Debian: apt-get install ca-certificates)"
	}
	st.removes = remove
	st.reads = []string{debianShare}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		for _, f := range remove {
			if err := r.Remove(f); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				return err
			}
		}
		if len(deselect) > 0 {
			if err := deselectInConf(r, debianConf, deselect); err != nil {
				return err
			}
		}
		return x(ctx, "update-ca-certificates", updateCAArgs(r)...)
	}
	return st
}

// packageOwners returns a lookup of the files that a package of the system
// put there: the snakeoil certificate that ssl-cert generates (Postfix,
// Apache and Dovecot serve it), or a file dpkg lists as installed. dpkg's
// lists are read once, on the first lookup that needs them, however many
// files the plan asks about.
func packageOwners(r rootFS) func(dev string) (string, bool) {
	var owner map[string]string
	return func(dev string) (string, bool) {
		if path.Base(dev) == "ssl-cert-snakeoil.pem" {
			return "ssl-cert", true
		}
		if owner == nil {
			owner = map[string]string{}
			lists, _ := r.Glob("/var/lib/dpkg/info/*.list") // a tree too large gives what was found
			for _, list := range lists {
				data, err := r.ReadFile(list, maxFileSize)
				if err != nil {
					continue
				}
				pkg, _, _ := strings.Cut(path.Base(list), ".list")
				pkg, _, _ = strings.Cut(pkg, ":")
				for _, line := range strings.Split(string(data), "\n") {
					if _, seen := owner[line]; !seen && line != "" {
						owner[line] = pkg
					}
				}
			}
		}
		pkg, ok := owner[dev]
		return pkg, ok
	}
}

// updateCAArgs are the arguments that point update-ca-certificates at the
// folders of the system under root, resolved inside it. (Newer versions
// also have --sysroot; these options work on every version.) Hooks of
// another system are never run from here.
func updateCAArgs(r rootFS) []string {
	if r.IsSystem() {
		return []string{"--fresh"}
	}
	real := func(dev string) string {
		p, err := r.ResolveMissing(dev)
		if err != nil {
			p = dev
		}
		return r.Real(p)
	}
	return []string{"--fresh",
		"--certsconf", real(debianConf), "--certsdir", real(debianShare),
		"--localcertsdir", real(debianLocal), "--etccertsdir", real(debianCerts),
		"--hooksdir", r.Real("/nonexistent-mitmguard-hooks")}
}

// deselectInConf marks files with '!' in ca-certificates.conf, adding the
// line when the file was not listed.
func deselectInConf(r rootFS, conf string, files []string) error {
	data, err := r.ReadFile(conf, maxFileSize)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
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
	p, err := r.ResolveMissing(conf)
	if err != nil {
		return err
	}
	return r.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
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
func p11kitStep(r rootFS, s storeRef, fs []truststore.Finding) Step {
	blockDir := path.Join(adminBase(path.Dir(s.Path)), "blocklist")
	st := Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs),
		Description: "add the roots to " + blockDir, Changes: []string{blockDir}}
	var cmd []string
	if r.IsSystem() {
		if _, err := exec.LookPath("update-ca-trust"); err == nil {
			cmd = []string{"update-ca-trust", "extract"}
			st.Changes = append(st.Changes, path.Join(path.Dir(path.Dir(blockDir)), "extracted"))
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
		certs["mitmguard-"+f.SPKISHA256[:16]+".pem"] = f.Certificate()
	}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		dir, err := r.MkdirAll(blockDir, 0o755)
		if err != nil {
			return err
		}
		for name, c := range certs {
			if err := r.WriteFile(path.Join(dir, name), []byte(c.PEM()), 0o644); err != nil {
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

// nssStep distrusts each nickname with certutil: truststore.NSS protects its trust rows
// with a MAC in key4.db, so only truststore.NSS itself can write them.
func nssStep(r rootFS, s storeRef, fs []truststore.Finding) Step {
	st := Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs),
		Changes: []string{s.Path + "/cert9.db", s.Path + "/key4.db", s.Path + "/pkcs11.txt"}}
	// certutil opens the files of the folder itself, following its links as
	// this machine does: the whole folder is checked for links out.
	st.reads = []string{s.Path}
	var nicks []string
	for _, f := range fs {
		nicks = appendNew(nicks, f.Label)
	}
	commands := func(r rootFS) ([][]string, error) {
		dir, err := r.Resolve(s.Path)
		if err != nil {
			return nil, err
		}
		var out [][]string
		for _, n := range nicks {
			out = append(out, []string{"certutil", "-M", "-d", "sql:" + r.Real(dir), "-n", n, "-t", "p,p,p"})
		}
		return out, nil
	}
	st.Commands, _ = commands(r)
	st.Description = fmt.Sprintf("mark %s distrusted (p,p,p) in the truststore.NSS database %s", strings.Join(quoteAll(nicks), ", "), s.Path)
	if _, err := exec.LookPath("certutil"); err != nil {
		st.Manual, st.Reason = true, errNoCertutil.Error()
	} else if pid, inUse := firefoxRunning(r, s.Path); inUse {
		st.Manual, st.Reason = true, fmt.Sprintf("Firefox (pid %d) has this profile open; close it and run mitmguard distrust again", pid)
	}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		cmds, err := commands(r)
		if err != nil {
			return err
		}
		for _, c := range cmds {
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
	t, err := r.Readlink(profile + "/lock")
	if err != nil {
		return 0, false
	}
	var pid int
	if _, err := fmt.Sscanf(t[strings.LastIndex(t, "+")+1:], "%d", &pid); err != nil || pid <= 0 {
		return 0, false
	}
	if !r.IsSystem() {
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

// javaStep deletes each alias with keytool. The keystore is read with this
// package's own parser first, and only the aliases it still holds are
// deleted (on a running Debian system update-ca-certificates' truststore.Java hook may
// have removed them already), so no tool message is ever interpreted.
func javaStep(r rootFS, s storeRef, fs []truststore.Finding) Step {
	st := Step{Store: s.Kind, StorePath: s.Path, Owner: s.Owner, Certs: subjects(fs)}
	dev, err := r.Resolve(s.Path)
	if err != nil {
		dev = s.Path
	}
	st.Changes = []string{dev}
	var aliases []string
	for _, f := range fs {
		aliases = appendNew(aliases, f.Label)
	}
	keytool := func(ks, alias string) []string {
		return []string{"keytool", "-J-Duser.language=en", "-J-Duser.country=US", "-delete", "-noprompt", "-alias", alias, "-keystore", ks, "-storepass", truststore.DefaultJavaPassword}
	}
	for _, a := range aliases {
		st.Commands = append(st.Commands, keytool(r.Real(dev), a))
	}
	st.Description = fmt.Sprintf("delete %s from the truststore.Java keystore %s", strings.Join(quoteAll(aliases), ", "), s.Path)
	if _, err := exec.LookPath("keytool"); err != nil {
		st.Manual, st.Reason = true, "keytool is not installed here (it comes with a JDK or JRE)"
	}
	if data, err := r.ReadFile(dev, maxFileSize); err == nil && (len(data) < 4 || string(data[:4]) != "\xfe\xed\xfe\xed") {
		st.Manual, st.Reason = true, "a PKCS#12 keystore: find the aliases with keytool -list and delete them by hand"
	}
	st.run = func(ctx context.Context, r rootFS, x runner) error {
		dev, err := r.Resolve(s.Path)
		if err != nil {
			return err
		}
		data, err := r.ReadFile(dev, maxFileSize)
		if err != nil {
			return err
		}
		entries, err := truststore.ParseKeystore(data, truststore.DefaultJavaPassword)
		if err != nil {
			return err
		}
		for _, a := range aliases {
			if !slices.ContainsFunc(entries, func(e truststore.KeystoreEntry) bool { return strings.EqualFold(e.Alias, a) }) {
				continue // already gone
			}
			c := keytool(r.Real(dev), a)
			if err := x(ctx, c[0], c[1:]...); err != nil {
				return err
			}
		}
		return nil
	}
	return st
}

var errNoCertutil = errors.New("certutil is not installed: NSS protects its trust rows with a MAC in key4.db, so a distrust must be written by certutil (Debian: apt-get install libnss3-tools)")
