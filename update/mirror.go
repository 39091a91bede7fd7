package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// virtualBase is the repository URL the TUF updater is given: the failover
// fetcher maps each path under it to the mirrors (or to a bundle), so the
// updater's verification is the same whatever carried the bytes.
const virtualBase = "mitmguard-repository:/"

// DefaultMirrorTimeout bounds each request to one mirror: a mirror that
// stalls or trickles endless data is skipped after it.
const DefaultMirrorTimeout = 20 * time.Second

// source is one place the repository's files come from: a mirror over HTTP
// or an offline bundle.
type source interface {
	// fetch returns the file at rel (a path in the repository folder), at
	// most max bytes; a file the source does not have is a
	// *metadata.ErrDownloadHTTP with status 404.
	fetch(ctx context.Context, rel string, max int64) ([]byte, error)
	String() string
}

// httpSource is a mirror: a static web server holding the repository folder.
type httpSource struct {
	base    string
	client  *http.Client
	timeout time.Duration
}

func (s *httpSource) String() string { return s.base }

func (s *httpSource) fetch(ctx context.Context, rel string, max int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	u := strings.TrimSuffix(s.base, "/") + "/" + rel
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: u}
	}
	if resp.ContentLength > max {
		return nil, tooLong(rel, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: no complete answer within %v", rel, s.timeout)
		}
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, tooLong(rel, max)
	}
	return data, nil
}

func tooLong(rel string, max int64) error {
	return &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is longer than the %d bytes allowed", rel, max)}
}

// MirrorReport says what one mirror (or bundle) did in a run.
type MirrorReport struct {
	URL string `json:"url"`
	// Status is "used" (it served files and was not refused), "failed" (it
	// was down, stalled, served endless, stale or tampered data, and was
	// skipped for the rest of the run) or "unused".
	Status string   `json:"status"`
	Served []string `json:"served,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// failover is the TUF updater's fetcher: it asks the sources in order for
// each file, skipping any source that failed earlier in the run.
type failover struct {
	ctx     context.Context
	sources []source
	reports []MirrorReport
	// last is the index of the source that answered the last request (-1
	// when none did): when the updater refuses what it got, that source is
	// the one to blame.
	last int
}

func newFailover(ctx context.Context, sources []source) *failover {
	f := &failover{ctx: ctx, sources: sources, last: -1}
	for _, s := range sources {
		f.reports = append(f.reports, MirrorReport{URL: s.String(), Status: "unused"})
	}
	return f
}

func (f *failover) failed(i int, err error) {
	f.reports[i].Status, f.reports[i].Error = "failed", err.Error()
}

// left tells whether a source is still in play.
func (f *failover) left() bool {
	for _, r := range f.reports {
		if r.Status != "failed" {
			return true
		}
	}
	return false
}

// DownloadFile implements fetcher.Fetcher.
func (f *failover) DownloadFile(urlPath string, max int64, _ time.Duration) ([]byte, error) {
	f.last = -1
	rel, ok := strings.CutPrefix(urlPath, virtualBase)
	if !ok {
		return nil, fmt.Errorf("update: unexpected path %q", urlPath)
	}
	var errs []error
	for i, s := range f.sources {
		if f.reports[i].Status == "failed" {
			continue
		}
		if err := f.ctx.Err(); err != nil {
			return nil, err
		}
		data, err := s.fetch(f.ctx, rel, max)
		var he *metadata.ErrDownloadHTTP
		switch {
		case err == nil:
			f.last = i
			f.reports[i].Status = "used"
			f.reports[i].Served = append(f.reports[i].Served, rel)
			return data, nil
		case errors.As(err, &he) && he.StatusCode == http.StatusNotFound:
			// An answer, not a failure: the updater asks for the next root
			// version until there is none. A mirror that wrongly lacks a
			// file is blamed when the updater refuses the result.
			f.last = i
			return nil, err
		case f.ctx.Err() != nil:
			return nil, f.ctx.Err()
		}
		f.failed(i, err)
		errs = append(errs, fmt.Errorf("%s: %w", s, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("no mirror left to try")
	}
	return nil, errors.Join(errs...)
}
