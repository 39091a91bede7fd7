package truststore

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/rootfs"
)

// Options say what to read. The zero value reads the running system.
type Options struct {
	// Root is the folder the device's paths are taken under ("/" or empty
	// for the running system; a mounted disk image or test fixture otherwise).
	Root string
	// Extra are more PEM or DER files or folders to read (--store), as paths
	// on this machine, not under Root.
	Extra []string
}

// RootError is returned when the root folder itself cannot be opened: there
// is nothing to audit, which must never read as a clean result.
type RootError struct {
	Root string
	Err  error
}

func (e *RootError) Error() string {
	return fmt.Sprintf("truststore: cannot read the root %s: %v", e.Root, e.Err)
}

func (e *RootError) Unwrap() error { return e.Err }

// LiveRoot reports whether root names the running system ("" or "/"): on
// Windows its stores are then read, and changed, through CryptoAPI rather
// than from the hives of a volume. It is the one test of that, so that
// what an audit read and what a distrust changes are the same stores.
func LiveRoot(root string) bool { return root == "" || root == "/" }

// Read finds and reads every store under the root. It fails only when the
// root cannot be opened: what cannot be read inside is a Problem of its
// store.
func Read(opts Options) ([]*Store, error) {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	fsys, err := rootfs.Open(root)
	if err != nil {
		return nil, &RootError{Root: root, Err: err}
	}
	defer fsys.Close()
	r := rootFS{fsys}
	var stores []*Store
	stores = append(stores, readDebian(r)...)
	stores = append(stores, readP11Kit(r)...)
	stores = append(stores, readP11KitSources(r)...)
	applyP11KitBlocklist(stores)
	stores = append(stores, readNSS(r)...)
	stores = append(stores, readJava(r)...)
	stores = append(stores, readAndroid(r)...)
	if LiveRoot(root) {
		stores = append(stores, readWindowsLive()...)
	} else {
		stores = append(stores, readWindowsVolume(fsys.Root())...)
	}
	for _, p := range opts.Extra {
		stores = append(stores, readExtra(p))
	}
	return stores, nil
}

// homes are the home folders whose user stores are read.
func homes(r rootFS) []string {
	out := []string{}
	if r.IsDir("/root") {
		out = append(out, "/root")
	}
	for _, h := range r.glob("/home/*") {
		if r.IsDir(h) {
			out = append(out, h)
		}
	}
	return out
}

func owner(home string) string { return "user " + filepath.Base(home) }

// addFile reads one certificate file into the store with the given trust.
func addFile(r rootFS, s *Store, path string, trust Trust) {
	data, err := r.readFile(path)
	if err != nil {
		s.problem(path, err)
		return
	}
	certs, problems := ParseCertFile(data)
	for _, p := range problems {
		s.problem(path, p)
	}
	for _, c := range certs {
		s.Entries = append(s.Entries, Entry{Cert: c, Trust: trust, File: path})
	}
}

// Debian's layout: the bundle and the hashed folder that
// update-ca-certificates generates, the administrator's and the packaged
// certificates, and the selection of packaged ones.
const (
	DebianBundleFile = "/etc/ssl/certs/ca-certificates.crt"
	DebianCertsDir   = "/etc/ssl/certs"
	DebianLocalDir   = "/usr/local/share/ca-certificates"
	DebianShareDir   = "/usr/share/ca-certificates"
	DebianConf       = "/etc/ca-certificates.conf"
)

func readDebian(r rootFS) []*Store {
	var stores []*Store
	if r.Exists(DebianBundleFile) {
		s := &Store{Kind: DebianBundle, Path: DebianBundleFile, Owner: "system"}
		addFile(r, s, DebianBundleFile, Trusted)
		stores = append(stores, s)
	}
	if r.IsDir(DebianCertsDir) {
		// OpenSSL looks roots up by subject-hash names (e.g. 5ad8a5d6.0);
		// the *.pem links and the bundle in the same folder are not read by
		// that lookup, so only the hash names count here.
		s := &Store{Kind: DebianHashedDir, Path: DebianCertsDir, Owner: "system"}
		for _, p := range r.glob(DebianCertsDir + "/*") {
			if isHashName(filepath.Base(p)) {
				addFile(r, s, p, Trusted)
			}
		}
		stores = append(stores, s)
	}
	if r.IsDir(DebianLocalDir) {
		s := &Store{Kind: DebianLocal, Path: DebianLocalDir, Owner: "system"}
		for _, p := range r.WalkFiles(DebianLocalDir, hasSuffix(".crt"), s.problem) {
			addFile(r, s, p, Trusted)
		}
		stores = append(stores, s)
	}
	if r.IsDir(DebianShareDir) {
		s := &Store{Kind: DebianShare, Path: DebianShareDir, Owner: "system"}
		sel := map[string]Trust{}
		if data, err := r.readFile(DebianConf); err == nil {
			sel = parseCAConf(data)
		} else if r.Exists(DebianConf) {
			s.problem(DebianConf, err)
		}
		for _, p := range r.WalkFiles(DebianShareDir, hasSuffix(".crt"), s.problem) {
			rel := strings.TrimPrefix(p, DebianShareDir+"/")
			trust, ok := sel[rel]
			if !ok {
				trust = NoTrust // not selected: update-ca-certificates leaves it out
			}
			addFile(r, s, p, trust)
		}
		stores = append(stores, s)
	}
	return stores
}

// parseCAConf reads /etc/ca-certificates.conf: a line names a file under
// /usr/share/ca-certificates to trust; a line starting with '!' deselects it.
func parseCAConf(data []byte) map[string]Trust {
	sel := map[string]Trust{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "", strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "!"):
			sel[strings.TrimPrefix(line, "!")] = Distrusted
		default:
			sel[line] = Trusted
		}
	}
	return sel
}

func isHashName(name string) bool {
	base, num, ok := strings.Cut(name, ".")
	if !ok || len(base) != 8 || num == "" {
		return false
	}
	for _, c := range base {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func hasSuffix(suffixes ...string) func(string) bool {
	return func(name string) bool {
		for _, s := range suffixes {
			if strings.HasSuffix(name, s) {
				return true
			}
		}
		return false
	}
}

// p11-kit source folders: Fedora/RHEL's and Arch's, each with anchors and a
// blocklist (Fedora also reads the older name "blacklist").
var p11kitBases = []string{
	"/etc/pki/ca-trust/source",
	"/usr/share/pki/ca-trust-source",
	"/etc/ca-certificates/trust-source",
	"/usr/share/ca-certificates/trust-source",
}

func readP11Kit(r rootFS) []*Store {
	var stores []*Store
	certFiles := hasSuffix(".pem", ".crt", ".cer", ".der", ".p11-kit")
	for _, base := range p11kitBases {
		for _, sub := range []struct {
			dir   string
			kind  Kind
			trust Trust
		}{
			{"anchors", P11KitAnchors, Trusted},
			{"blocklist", P11KitBlocklist, Distrusted},
			{"blacklist", P11KitBlocklist, Distrusted},
		} {
			dir := base + "/" + sub.dir
			if !r.IsDir(dir) {
				continue
			}
			s := &Store{Kind: sub.kind, Path: dir, Owner: "system"}
			for _, p := range r.WalkFiles(dir, certFiles, s.problem) {
				addFile(r, s, p, sub.trust)
			}
			stores = append(stores, s)
		}
	}
	return stores
}

// applyP11KitBlocklist marks distrusted every p11-kit anchor or source
// certificate whose key is in any p11-kit blocklist: p11-kit merges its
// sources, and a blocklisted key is distrusted whatever an anchor says.
func applyP11KitBlocklist(stores []*Store) {
	blocked := map[chain.Hash]bool{}
	for _, s := range stores {
		if s.Kind == P11KitBlocklist {
			for _, e := range s.Entries {
				blocked[e.Cert.SPKI] = true
			}
		}
	}
	for _, s := range stores {
		if s.Kind == P11KitAnchors || s.Kind == P11KitSource {
			for i := range s.Entries {
				if blocked[s.Entries[i].Cert.SPKI] {
					s.Entries[i].Trust = Distrusted
				}
			}
		}
	}
}

// readExtra reads a file or folder of this machine named with --store.
func readExtra(path string) *Store {
	s := &Store{Kind: Extra, Path: path, Owner: "given with --store"}
	abs, err := filepath.Abs(path)
	if err != nil {
		s.problem(path, err)
		return s
	}
	fsys, err := rootfs.Open("/")
	if err != nil {
		s.problem(path, err)
		return s
	}
	defer fsys.Close()
	r := rootFS{fsys}
	path = abs
	if r.IsDir(path) {
		for _, p := range r.WalkFiles(path, func(string) bool { return true }, s.problem) {
			addFile(r, s, p, Trusted)
		}
		return s
	}
	addFile(r, s, path, Trusted)
	return s
}
