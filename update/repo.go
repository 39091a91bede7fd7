// Package update distributes the blocklist with The Update Framework (TUF,
// github.com/theupdateframework/go-tuf/v2), the standard for exactly this
// threat: the attacker controls the network the update crosses, and must not
// be able to stop, roll back, freeze or alter it.
//
// Maintainers keep a repository (InitRepo, Publish, RotateKey, Refresh):
// ed25519 keys for the root, targets, snapshot and timestamp roles under
// DIR/keys, and metadata and targets under DIR/repository, in TUF's
// consistent-snapshot layout, served by any static web server. Users run a
// Client: it refreshes the metadata (keeping the trusted metadata in its
// cache, which is what makes rollback and freeze detectable across runs),
// downloads the blocklist target, checks it, and installs it atomically as
// the active list. The embedded list stays the floor: Active merges the
// downloaded list over it and drops an embedded entry only when a newer
// downloaded list withdraws it by id.
package update

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/mitmguard/mitmguard/blocklist"
)

// TargetName is the name of the blocklist in the repository.
const TargetName = "blocklist.json"

// Roles are TUF's top-level roles.
var Roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// Expiries of each role's metadata: the root is rotated rarely and kept
// offline; the timestamp is re-signed often (Refresh), so that a network
// that freezes updates is noticed within a day.
var Expiries = map[string]time.Duration{
	metadata.ROOT: 365 * 24 * time.Hour, metadata.TARGETS: 90 * 24 * time.Hour,
	metadata.SNAPSHOT: 7 * 24 * time.Hour, metadata.TIMESTAMP: 24 * time.Hour,
}

// repo is a repository on disk.
type repo struct {
	dir       string
	now       time.Time
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

func (r *repo) meta() string { return filepath.Join(r.dir, "repository") }

// InitRepo creates a repository in dir, with a first, empty-of-targets
// publication; dir must not hold one already.
func InitRepo(dir string, now time.Time) error {
	if _, err := os.Stat(filepath.Join(dir, "repository", "1.root.json")); err == nil {
		return fmt.Errorf("update: %s already holds a repository", dir)
	}
	for _, d := range []string{"keys", "repository/targets"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	r := &repo{dir: dir, now: now}
	exp := func(role string) time.Time { return now.Add(Expiries[role]) }
	r.root, r.targets = metadata.Root(exp(metadata.ROOT)), metadata.Targets(exp(metadata.TARGETS))
	r.snapshot, r.timestamp = metadata.Snapshot(exp(metadata.SNAPSHOT)), metadata.Timestamp(exp(metadata.TIMESTAMP))
	for _, role := range Roles {
		key, err := newKey(dir, role)
		if err != nil {
			return err
		}
		if err := r.root.Signed.AddKey(key, role); err != nil {
			return err
		}
	}
	if err := r.signRoot(nil); err != nil {
		return err
	}
	return r.publishRoles()
}

// newKey makes and stores a role's ed25519 key, returning its public form.
func newKey(dir, role string) (*metadata.Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "keys", role+".pem")
	if _, err := os.Stat(path); err == nil {
		os.Rename(path, filepath.Join(dir, "keys", fmt.Sprintf("%s.%d.retired.pem", role, time.Now().UnixNano())))
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return metadata.KeyFromPublicKey(pub)
}

func loadSigner(path string) (signature.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("update: %s: not a PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	return signature.LoadSigner(k, crypto.Hash(0))
}

func (r *repo) signer(role string) (signature.Signer, error) {
	return loadSigner(filepath.Join(r.dir, "keys", role+".pem"))
}

// signRoot signs the root with the current root key, and with old too when
// the root key is being rotated (clients need the old key's signature to
// accept the new root).
func (r *repo) signRoot(old signature.Signer) error {
	r.root.ClearSignatures()
	s, err := r.signer(metadata.ROOT)
	if err != nil {
		return err
	}
	if _, err := r.root.Sign(s); err != nil {
		return err
	}
	if old != nil {
		if _, err := r.root.Sign(old); err != nil {
			return err
		}
	}
	return r.root.ToFile(filepath.Join(r.meta(), fmt.Sprintf("%d.root.json", r.root.Signed.Version)), true)
}

// publishRoles re-signs targets, snapshot and timestamp (each pointing at
// the version before it in the chain) and writes them in the
// consistent-snapshot layout.
func (r *repo) publishRoles() error {
	if err := signAndWrite(r, metadata.TARGETS, r.targets, fmt.Sprintf("%d.targets.json", r.targets.Signed.Version)); err != nil {
		return err
	}
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.snapshot.Signed.Expires = r.now.Add(Expiries[metadata.SNAPSHOT])
	if err := signAndWrite(r, metadata.SNAPSHOT, r.snapshot, fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)); err != nil {
		return err
	}
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.timestamp.Signed.Expires = r.now.Add(Expiries[metadata.TIMESTAMP])
	return signAndWrite(r, metadata.TIMESTAMP, r.timestamp, "timestamp.json")
}

// signAndWrite replaces a role's signatures with one by its current key and
// writes the metadata into the repository.
func signAndWrite[T metadata.Roles](r *repo, role string, m *metadata.Metadata[T], name string) error {
	s, err := r.signer(role)
	if err != nil {
		return err
	}
	m.ClearSignatures()
	if _, err := m.Sign(s); err != nil {
		return err
	}
	return m.ToFile(filepath.Join(r.meta(), name), true)
}

// openRepo loads the newest metadata of each role.
func openRepo(dir string, now time.Time) (*repo, error) {
	r := &repo{dir: dir, now: now}
	latest := func(role string) (string, error) {
		files, _ := filepath.Glob(filepath.Join(r.meta(), "*."+role+".json"))
		if len(files) == 0 {
			return "", fmt.Errorf("update: %s holds no %s metadata (run mitmguard repo init)", dir, role)
		}
		sort.Slice(files, func(i, j int) bool { return versionOf(files[i]) < versionOf(files[j]) })
		return files[len(files)-1], nil
	}
	var err error
	var p string
	if p, err = latest(metadata.ROOT); err == nil {
		r.root, err = metadata.Root().FromFile(p)
	}
	if err == nil {
		if p, err = latest(metadata.TARGETS); err == nil {
			r.targets, err = metadata.Targets().FromFile(p)
		}
	}
	if err == nil {
		if p, err = latest(metadata.SNAPSHOT); err == nil {
			r.snapshot, err = metadata.Snapshot().FromFile(p)
		}
	}
	if err == nil {
		r.timestamp, err = metadata.Timestamp().FromFile(filepath.Join(r.meta(), "timestamp.json"))
	}
	return r, err
}

func versionOf(path string) int {
	n, _ := strconv.Atoi(strings.SplitN(filepath.Base(path), ".", 2)[0])
	return n
}

// Publish validates a blocklist file, gives it the next list version, and
// publishes it as a new consistent snapshot. It returns the list version.
func Publish(dir string, listFile []byte, now time.Time) (int, error) {
	l, err := blocklist.Parse(listFile, "published list")
	if err != nil {
		return 0, err
	}
	r, err := openRepo(dir, now)
	if err != nil {
		return 0, err
	}
	version := l.Version
	if prev := r.targets.Signed.Targets[TargetName]; prev != nil {
		if v := prev.Custom; v != nil {
			var c struct {
				ListVersion int `json:"list_version"`
			}
			if json.Unmarshal(*v, &c) == nil && c.ListVersion >= version {
				version = c.ListVersion + 1
			}
		}
	}
	if version < 1 {
		version = 1
	}
	out, err := blocklist.WithVersion(l, version, now).Marshal()
	if err != nil {
		return 0, err
	}
	tf, err := metadata.TargetFile().FromBytes(TargetName, out, "sha256")
	if err != nil {
		return 0, err
	}
	custom := json.RawMessage(fmt.Sprintf(`{"list_version":%d}`, version))
	tf.Custom = &custom
	name := hex.EncodeToString(tf.Hashes["sha256"]) + "." + TargetName
	if err := os.WriteFile(filepath.Join(r.meta(), "targets", name), out, 0o644); err != nil {
		return 0, err
	}
	r.targets.Signed.Targets[TargetName] = tf
	r.targets.Signed.Version++
	r.targets.Signed.Expires = now.Add(Expiries[metadata.TARGETS])
	r.snapshot.Signed.Version++
	r.timestamp.Signed.Version++
	return version, r.publishRoles()
}

// Refresh re-signs the timestamp (and snapshot) with fresh expiries, what a
// maintainer's scheduled job does so clients can tell a frozen network.
func Refresh(dir string, now time.Time) error {
	r, err := openRepo(dir, now)
	if err != nil {
		return err
	}
	r.snapshot.Signed.Version++
	r.timestamp.Signed.Version++
	return r.publishRoles()
}

// RotateKey replaces a role's key: a new root version lists the new key
// (signed by the old root key too when the root key itself is rotated), and
// the other roles are re-signed.
func RotateKey(dir, role string, now time.Time) error {
	r, err := openRepo(dir, now)
	if err != nil {
		return err
	}
	known := false
	for _, x := range Roles {
		known = known || x == role
	}
	if !known {
		return fmt.Errorf("update: unknown role %q (want one of %s)", role, strings.Join(Roles, ", "))
	}
	var old signature.Signer
	if role == metadata.ROOT {
		if old, err = r.signer(metadata.ROOT); err != nil {
			return err
		}
	}
	for _, id := range r.root.Signed.Roles[role].KeyIDs {
		if err := r.root.Signed.RevokeKey(id, role); err != nil {
			return err
		}
	}
	key, err := newKey(dir, role)
	if err != nil {
		return err
	}
	if err := r.root.Signed.AddKey(key, role); err != nil {
		return err
	}
	r.root.Signed.Version++
	r.root.Signed.Expires = now.Add(Expiries[metadata.ROOT])
	if err := r.signRoot(old); err != nil {
		return err
	}
	r.targets.Signed.Version++
	r.snapshot.Signed.Version++
	r.timestamp.Signed.Version++
	return r.publishRoles()
}
