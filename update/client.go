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
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/atomicfile"
)

// DefaultURL is the project's repository. None is published yet; until it
// is, Update needs a URL and a trusted root from the caller.
const DefaultURL = ""

// State describes the installed list.
type State struct {
	Version   int       `json:"version"`
	Source    string    `json:"source"`
	Installed time.Time `json:"installed"`
	SHA256    string    `json:"sha256"`
	Entries   int       `json:"entries"`
}

// Client updates the blocklist from a TUF repository.
type Client struct {
	// URL serves the repository folder (metadata at URL/, targets at
	// URL/targets/).
	URL string
	// TrustedRoot is the root metadata trusted at first use; later the
	// cache's newer trusted root is used.
	TrustedRoot []byte
	// CacheDir keeps the trusted metadata and the installed list.
	CacheDir string
	// HTTPClient bounds each request (default: 30 s timeout).
	HTTPClient *http.Client

	now          time.Time    // tests: the client's clock
	beforeRename func() error // tests: fail an install midway
}

// Error wraps a refused update with what was refused.
type Error struct {
	Stage string // metadata, target, version, install
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("update: %s refused: %v", e.Stage, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ErrUpToDate is returned when the repository's list is the installed one.
var ErrUpToDate = errors.New("update: the installed list is current")

// Update refreshes the metadata, downloads and checks the list, and installs
// it. On any error the installed list stays as it was.
func (c *Client) Update(ctx context.Context) (*State, error) {
	if c.URL == "" {
		return nil, errors.New("update: no repository URL (no default repository is published yet: give --url)")
	}
	metaDir, dlDir := filepath.Join(c.CacheDir, "metadata"), filepath.Join(c.CacheDir, "download")
	for _, d := range []string{metaDir, dlDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	root, err := os.ReadFile(filepath.Join(metaDir, "root.json"))
	if err != nil {
		if root = c.TrustedRoot; root == nil {
			return nil, errors.New("update: no trusted root metadata yet: give --trust-root FILE (the repository's 1.root.json, obtained out of band)")
		}
	}
	cfg, err := config.New(c.URL, root)
	if err != nil {
		return nil, err
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = metaDir, dlDir
	if cfg.RemoteTargetsURL, err = url.JoinPath(c.URL, "targets"); err != nil {
		return nil, err
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if err := cfg.SetDefaultFetcherHTTPClient(hc); err != nil {
		return nil, err
	}
	if err := cfg.SetDefaultFetcherRetry(0, 1); err != nil {
		return nil, err
	}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, &Error{"metadata", err}
	}
	if !c.now.IsZero() {
		up.UnsafeSetRefTime(c.now)
	}
	if err := up.Refresh(); err != nil {
		return nil, &Error{"metadata", err}
	}
	ti, err := up.GetTargetInfo(TargetName)
	if err != nil {
		return nil, &Error{"target", err}
	}
	_, data, err := up.DownloadTarget(ti, filepath.Join(dlDir, TargetName), "")
	if err != nil {
		return nil, &Error{"target", err}
	}
	l, err := blocklist.Parse(data, c.URL)
	if err != nil {
		return nil, &Error{"target", err}
	}
	if _, st, err := Active(c.CacheDir); err == nil && st != nil {
		switch {
		case l.Version < st.Version:
			return nil, &Error{"version", fmt.Errorf("list version %d is older than the installed %d", l.Version, st.Version)}
		case l.Version == st.Version:
			return st, ErrUpToDate
		}
	}
	sum := sha256.Sum256(data)
	st := &State{Version: l.Version, Source: c.URL, Installed: time.Now().UTC(), SHA256: hex.EncodeToString(sum[:]), Entries: l.Len()}
	if err := c.install(data, st); err != nil {
		return nil, &Error{"install", err}
	}
	return st, nil
}

// install writes the list, then its state, each atomically: a crash leaves
// the old list or the new one, never a mix.
func (c *Client) install(data []byte, st *State) error {
	sj, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(c.CacheDir, "active.json"), data, 0o644, c.beforeRename); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(c.CacheDir, "state.json"), sj, 0o644, nil)
}

// Active returns the list in force: the installed list over the embedded
// one, which stays the floor (an embedded entry goes only when a newer
// installed list withdraws it). Without an installed list it is the
// embedded list and a nil state.
func Active(cacheDir string) (*blocklist.List, *State, error) {
	emb := blocklist.Embedded()
	data, err := os.ReadFile(filepath.Join(cacheDir, "active.json"))
	if errors.Is(err, os.ErrNotExist) || cacheDir == "" {
		return emb, nil, nil
	}
	if err != nil {
		return emb, nil, err
	}
	l, err := blocklist.Parse(data, "installed")
	if err != nil {
		return emb, nil, fmt.Errorf("update: the installed list is damaged (%w); using the embedded list", err)
	}
	st := &State{Version: l.Version, Entries: l.Len()}
	if sj, err := os.ReadFile(filepath.Join(cacheDir, "state.json")); err == nil {
		json.Unmarshal(sj, st)
		st.Version, st.Entries = l.Version, l.Len()
	}
	floor := emb
	if l.Version > emb.Version && len(l.Withdrawn) > 0 {
		floor = emb.Without(l.Withdrawn)
	}
	merged := blocklist.Merge(l, floor)
	merged.Version, merged.Published, merged.Source = l.Version, l.Published, st.Source
	return merged, st, nil
}
