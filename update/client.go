package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/atomicfile"
	"github.com/mitmguard/mitmguard/update/active"
)

// State describes the installed list.
type State = active.State

// Client updates the blocklist from a TUF repository, over mirrors or from
// an offline bundle: the transport does not matter, every byte is verified
// against the trusted metadata the same way.
type Client struct {
	// Mirrors serve the repository folder (metadata at URL/, targets at
	// URL/targets/), tried in order for each file.
	Mirrors []string
	// Bundle, when set, is the only source: no network is used.
	Bundle *Bundle
	// TrustedRoot is root metadata the user gave (--trust-root). Without
	// it, the root trusted at first use is the default channel's. Once the
	// folder trusts a root, a different TrustedRoot is refused with a
	// *TrustError unless ResetTrust is set.
	TrustedRoot []byte
	// ResetTrust forgets the trusted metadata and starts again from
	// TrustedRoot (or the default channel's root). The installed list stays,
	// and a list older than it is still refused.
	ResetTrust bool
	// Dir keeps the trusted metadata and the installed list (active.Dir()).
	Dir string
	// NoWait makes Update fail at once with a *BusyError (in an *Error of
	// stage "lock") when another run holds the folder, instead of waiting.
	NoWait bool
	// Waiting, when set, is called once when Update must wait for another
	// run holding the folder, with that run's PID (0 when unknown).
	Waiting func(pid int)
	// HTTPClient carries the requests (default: a plain client); each
	// request to a mirror is bounded by MirrorTimeout.
	HTTPClient    *http.Client
	MirrorTimeout time.Duration

	now          time.Time    // tests: the client's clock
	beforeRename func() error // tests: fail an install midway
	channel      *Channel     // tests: the default channel instead of the embedded one
}

// Result is what a run did.
type Result struct {
	// Status is "installed" or "current" (the repository's list is the
	// installed one).
	Status string `json:"status"`
	*State
	// Mirrors says which mirror served which file, and why any was skipped.
	Mirrors []MirrorReport `json:"mirrors"`
}

// Error wraps a refused update with what was refused.
type Error struct {
	Stage string // setup, lock, trust, metadata, target, version, install
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("update: %s refused: %v", e.Stage, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ErrNoSource is returned when there is neither a mirror, nor a bundle, nor
// a default channel in this build.
var ErrNoSource = errors.New("update: no mirror and no bundle given, and this build has no default channel")

// ErrNoRoot is returned when there is no root metadata to trust yet.
var ErrNoRoot = errors.New("no trusted root metadata yet")

// TrustError reports root metadata given by the user that differs from the
// root the folder already trusts: the folder keeps its own, so the given one
// would be silently ignored.
type TrustError struct {
	GivenVersion   int64
	GivenSHA256    string
	TrustedVersion int64  // the root trusted now (after any rotation)
	SeedSHA256     string // the root the folder started from, when known
}

func (e *TrustError) Error() string {
	return fmt.Sprintf("the given root metadata (version %d, sha256 %.16s…) differs from the one this folder was started with (sha256 %.16s…, now trusting root version %d); the folder keeps trusting its own",
		e.GivenVersion, e.GivenSHA256, e.SeedSHA256, e.TrustedVersion)
}

// staleAfter is the age past which a temporary file left in the folder is
// taken for the remains of a killed run: an install writes its few dozen
// kilobytes in well under a second, so a younger one may be a concurrent
// run's.
const staleAfter = 10 * time.Minute

// seedFile records the root the trusted metadata started from, so that a
// different --trust-root is noticed instead of ignored.
const seedFile = "seed.json"

type seed struct {
	SHA256  string `json:"root_sha256"`
	Version int64  `json:"root_version"`
}

func rootInfo(root []byte) (seed, error) {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return seed{}, fmt.Errorf("not TUF root metadata: %w", err)
	}
	sum := sha256.Sum256(root)
	return seed{hex.EncodeToString(sum[:]), m.Signed.Version}, nil
}

// Update refreshes the metadata, downloads and checks the list, and installs
// it. On any error the installed list stays as it was; the Result is then
// still returned when sources were tried, to say what each did.
func (c *Client) Update(ctx context.Context) (*Result, error) {
	metaDir, dlDir := filepath.Join(c.Dir, "metadata"), filepath.Join(c.Dir, "download")
	if c.Dir == "" {
		return nil, &Error{"setup", errors.New("no folder for the active list")}
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, &Error{"setup", err}
	}
	if c.Dir == active.DefaultDir {
		// Every user's commands read the list here: a folder made 0700 by
		// an earlier run (or by distrust's journal) would hide it from them.
		if fi, err := os.Stat(c.Dir); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(c.Dir, fi.Mode().Perm()|0o055)
		}
	}
	// One run at a time per folder, from the first metadata read to the
	// last install write (the systemd timer and a user may both run one).
	lock, err := lockDir(ctx, c.Dir, c.NoWait, c.Waiting)
	if err != nil {
		return nil, &Error{"lock", err}
	}
	defer lock.Unlock()
	for _, d := range []string{metaDir, dlDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, &Error{"setup", err}
		}
	}
	now := time.Now()
	removeStale(c.Dir, now, "."+active.ListFile+".tmp-*", "."+active.StateFile+".tmp-*")
	removeStale(metaDir, now, "tuf_tmp*", "."+seedFile+".tmp-*")

	ch := c.channel
	if ch == nil {
		d := DefaultChannel()
		ch = &d
	}
	sources, err := c.sources(ch)
	if err != nil {
		return nil, err
	}
	if err := c.trust(metaDir, ch); err != nil {
		return nil, err
	}
	f := newFailover(ctx, sources)
	res := &Result{Mirrors: f.reports} // the reports fill in as the run goes
	data, err := c.fetch(f, metaDir, dlDir)
	if err != nil {
		return res, err
	}
	src := f.sources[f.last].String()
	l, err := blocklist.Parse(data, src)
	if err != nil {
		return res, &Error{"target", err}
	}
	if _, st, err := active.Load(c.Dir); err == nil && st != nil {
		switch {
		case l.Version < st.Version:
			return res, &Error{"version", fmt.Errorf("list version %d is older than the installed %d", l.Version, st.Version)}
		case l.Version == st.Version:
			res.Status, res.State = "current", st
			return res, nil
		}
	}
	sum := sha256.Sum256(data)
	st := &State{Version: l.Version, Source: src, Installed: time.Now().UTC(), SHA256: hex.EncodeToString(sum[:]), Entries: l.Len()}
	if err := c.install(data, st); err != nil {
		return res, &Error{"install", err}
	}
	res.Status, res.State = "installed", st
	return res, nil
}

// sources lists where the files come from: the bundle, else the mirrors
// given, else the default channel's.
func (c *Client) sources(ch *Channel) ([]source, error) {
	if c.Bundle != nil {
		return []source{c.Bundle}, nil
	}
	urls := c.Mirrors
	if len(urls) == 0 {
		urls = ch.Mirrors
	}
	if len(urls) == 0 {
		return nil, ErrNoSource
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	timeout := c.MirrorTimeout
	if timeout <= 0 {
		timeout = DefaultMirrorTimeout
	}
	var out []source
	for _, u := range urls {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, &Error{"setup", fmt.Errorf("mirror %q: want an http:// or https:// URL", u)}
		}
		out = append(out, &httpSource{base: u, client: hc, timeout: timeout})
	}
	return out, nil
}

// trust makes sure metaDir holds the root to start from: the one already
// trusted, or (at first use or on a reset) the given or channel root. A given
// root that differs from the one the folder started with is refused.
func (c *Client) trust(metaDir string, ch *Channel) error {
	seedPath := filepath.Join(metaDir, seedFile)
	if c.ResetTrust {
		if c.TrustedRoot == nil && ch.Root == nil {
			return &Error{"trust", errors.New("--reset-trust needs the root metadata to trust from now on: give --trust-root FILE")}
		}
		if err := os.RemoveAll(metaDir); err != nil {
			return &Error{"trust", err}
		}
		if err := os.MkdirAll(metaDir, 0o755); err != nil {
			return &Error{"trust", err}
		}
	}
	cached, err := os.ReadFile(filepath.Join(metaDir, "root.json"))
	if err == nil {
		if c.TrustedRoot == nil {
			return nil
		}
		given, err := rootInfo(c.TrustedRoot)
		if err != nil {
			return &Error{"trust", fmt.Errorf("--trust-root: %w", err)}
		}
		var s seed
		if b, err := os.ReadFile(seedPath); err == nil && json.Unmarshal(b, &s) == nil && s.SHA256 != "" {
			if s.SHA256 == given.SHA256 {
				return nil
			}
		} else if string(cached) == string(c.TrustedRoot) {
			// A folder from before seeds were kept: the given root is the
			// trusted one, so it was the seed.
			return writeSeed(seedPath, given)
		}
		trusted, _ := rootInfo(cached)
		return &Error{"trust", &TrustError{GivenVersion: given.Version, GivenSHA256: given.SHA256, TrustedVersion: trusted.Version, SeedSHA256: s.SHA256}}
	}
	root := c.TrustedRoot
	if root == nil {
		root = ch.Root
	}
	if root == nil {
		return &Error{"trust", ErrNoRoot}
	}
	s, err := rootInfo(root)
	if err != nil {
		return &Error{"trust", err}
	}
	if err := atomicfile.Write(filepath.Join(metaDir, "root.json"), root, 0o644, nil); err != nil {
		return &Error{"trust", err}
	}
	return writeSeed(seedPath, s)
}

func writeSeed(path string, s seed) error {
	b, _ := json.Marshal(s)
	if err := atomicfile.Write(path, b, 0o644, nil); err != nil {
		return &Error{"trust", err}
	}
	return nil
}

// fetch runs the TUF client workflow until one pass succeeds: when the
// updater refuses what a source served (stale, tampered, inconsistent), that
// source is skipped and the workflow starts again from the metadata trusted
// so far, with the sources left.
func (c *Client) fetch(f *failover, metaDir, dlDir string) ([]byte, error) {
	for {
		data, stage, err := c.fetchOnce(f, metaDir, dlDir)
		if err == nil {
			return data, nil
		}
		if f.ctx.Err() != nil {
			return nil, &Error{stage, f.ctx.Err()}
		}
		if f.last < 0 && f.left() {
			return nil, &Error{stage, err} // not a source's fault (the local folder, say)
		}
		if f.last >= 0 {
			f.failed(f.last, fmt.Errorf("%s refused: %w", stage, err))
		}
		if !f.left() {
			if c.Bundle != nil && errors.As(err, new(*metadata.ErrExpiredMetadata)) {
				err = fmt.Errorf("%w; a bundle is accepted until its timestamp expires (a day after the maintainers' last refresh): ask for a fresher one", err)
			}
			return nil, &Error{stage, everyFailed(f.reports, err)}
		}
	}
}

// everyFailed says why each source failed; with one source, its last
// error says it all.
func everyFailed(reports []MirrorReport, last error) error {
	if len(reports) == 1 {
		return last
	}
	var b strings.Builder
	fmt.Fprintf(&b, "all %d mirrors failed:", len(reports))
	for _, r := range reports {
		fmt.Fprintf(&b, " [%s: %s]", r.URL, r.Error)
	}
	return errors.New(b.String())
}

func (c *Client) fetchOnce(f *failover, metaDir, dlDir string) ([]byte, string, error) {
	root, err := os.ReadFile(filepath.Join(metaDir, "root.json"))
	if err != nil {
		return nil, "metadata", err
	}
	cfg, err := config.New(virtualBase, root)
	if err != nil {
		return nil, "metadata", err
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = metaDir, dlDir
	cfg.RemoteTargetsURL = virtualBase + "targets/"
	cfg.Fetcher = f
	up, err := updater.New(cfg)
	if err != nil {
		return nil, "metadata", err
	}
	if !c.now.IsZero() {
		up.UnsafeSetRefTime(c.now)
	}
	if err := up.Refresh(); err != nil {
		return nil, "metadata", err
	}
	ti, err := up.GetTargetInfo(TargetName)
	if err != nil {
		return nil, "target", err
	}
	_, data, err := up.DownloadTarget(ti, filepath.Join(dlDir, TargetName), "")
	if err != nil {
		return nil, "target", err
	}
	return data, "", nil
}

// removeStale deletes temporary files that a killed run left behind, when
// they are old enough not to be a concurrent run's.
func removeStale(dir string, now time.Time, patterns ...string) {
	for _, p := range patterns {
		names, _ := filepath.Glob(filepath.Join(dir, p))
		for _, n := range names {
			if fi, err := os.Lstat(n); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > staleAfter {
				os.Remove(n)
			}
		}
	}
}

// install writes the list, then its state, each atomically: a crash leaves
// the old list or the new one, never a mix.
func (c *Client) install(data []byte, st *State) error {
	sj, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(c.Dir, active.ListFile), data, 0o644, c.beforeRename); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(c.Dir, active.StateFile), sj, 0o644, nil)
}

// Active returns the list in force in dir (see active.Load).
func Active(dir string) (*blocklist.List, *State, error) { return active.Load(dir) }
