package update

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A wrong --trust-root used once must not stick: a later, different root is
// reported (not silently ignored), and ResetTrust starts again from it.
func TestWrongTrustRootDoesNotStick(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	_, wrong := newTestRepo(t, now)
	srv := serveRepo(t, dir)
	cache := t.TempDir()
	ctx := context.Background()
	c := &Client{Mirrors: []string{srv.url}, TrustedRoot: wrong, Dir: cache}
	if _, err := c.Update(ctx); err == nil || !strings.Contains(err.Error(), "not enough signatures") {
		t.Fatalf("the wrong root was accepted: %v", err)
	}
	c.TrustedRoot = root
	_, err := c.Update(ctx)
	var te *TrustError
	if !errors.As(err, &te) || te.GivenVersion != 1 || te.SeedSHA256 == "" || te.SeedSHA256 == te.GivenSHA256 {
		t.Fatalf("a different root was not reported: %v", err)
	}
	c.ResetTrust = true
	if res, err := c.Update(ctx); err != nil || res.Status != "installed" {
		t.Fatalf("reset: %+v %v", res, err)
	}
	// The same root again, as a systemd unit repeats it: accepted.
	c.ResetTrust = false
	if res, err := c.Update(ctx); err != nil || res.Status != "current" {
		t.Fatalf("the same root again: %+v %v", res, err)
	}
	// Reset with no root at all is refused with what to give.
	if _, err := (&Client{Mirrors: []string{srv.url}, Dir: cache, ResetTrust: true, channel: &Channel{}}).Update(ctx); err == nil || !strings.Contains(err.Error(), "--trust-root") {
		t.Fatalf("reset without a root: %v", err)
	}
}

// Without mirrors or root from the caller, the default channel's are used;
// with no channel, the error says so.
func TestDefaultChannel(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	srv := serveRepo(t, dir)
	c := &Client{Dir: t.TempDir(), channel: &Channel{Root: root, Mirrors: []string{downURL(t), srv.url}}}
	if res, err := c.Update(context.Background()); err != nil || res.Status != "installed" || res.Source != srv.url {
		t.Fatalf("%+v %v", res, err)
	}
	c = &Client{Dir: t.TempDir(), channel: &Channel{}}
	if _, err := c.Update(context.Background()); !errors.Is(err, ErrNoSource) {
		t.Fatalf("no channel: %v", err)
	}
	c.Mirrors = []string{srv.url}
	if _, err := c.Update(context.Background()); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("no root: %v", err)
	}
}

func TestMirrorURLs(t *testing.T) {
	for _, u := range []string{"example.org/tuf", "ftp://example.org/", "https://", "file:///etc"} {
		c := &Client{Mirrors: []string{u}, Dir: t.TempDir()}
		if _, err := c.Update(context.Background()); err == nil || !strings.Contains(err.Error(), "want an http") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestParseMirrors(t *testing.T) {
	got := ParseMirrors([]byte("# mirrors\nhttps://a.example/tuf\n\n  https://b.example/tuf  # second\n#https://c\n"))
	if strings.Join(got, " ") != "https://a.example/tuf https://b.example/tuf" {
		t.Errorf("%q", got)
	}
}
