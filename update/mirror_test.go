package update

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
)

// newTestRepo makes a repository with the embedded list published as
// version 1, and returns its folder and its 1.root.json.
func newTestRepo(t testing.TB, now time.Time) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	if err := InitRepo(dir, now); err != nil {
		t.Fatal(err)
	}
	emb, err := blocklist.Embedded().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(dir, emb, now); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(dir, "repository", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, root
}

// downURL is the address of a closed port on loopback: a mirror that is down.
func downURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return "http://" + ln.Addr().String()
}

// tamperTarget makes a mirror serve the list with one byte changed.
func tamperTarget(dir string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "."+TargetName) {
			return false
		}
		data, _ := os.ReadFile(filepath.Join(dir, "repository", r.URL.Path))
		w.Write(bytes.Replace(data, []byte("Qaznet"), []byte("Qazn3t"), 1))
		return true
	}
}

func report(t *testing.T, res *Result, url string) MirrorReport {
	t.Helper()
	if res == nil {
		t.Fatal("no result")
	}
	for _, m := range res.Mirrors {
		if m.URL == url {
			return m
		}
	}
	t.Fatalf("no report for %s in %+v", url, res.Mirrors)
	return MirrorReport{}
}

// Mirror A is down, B serves a tampered list, C is good: the list is
// installed from C, and A and B are reported; B, once refused, is not asked
// again in the run.
func TestMirrorFailover(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	a := downURL(t)
	b, c := serveRepo(t, dir), serveRepo(t, dir)
	var afterRefusal atomic.Int32
	var refused atomic.Bool
	b.set(func(w http.ResponseWriter, r *http.Request) bool {
		if refused.Load() {
			afterRefusal.Add(1)
		}
		if strings.HasSuffix(r.URL.Path, "."+TargetName) {
			refused.Store(true)
		}
		return tamperTarget(dir)(w, r)
	})
	cl := &Client{Mirrors: []string{a, b.url, c.url}, TrustedRoot: root, Dir: t.TempDir(), MirrorTimeout: 2 * time.Second}
	res, err := cl.Update(context.Background())
	if err != nil || res.Status != "installed" || res.Source != c.url {
		t.Fatalf("update: %+v %v", res, err)
	}
	if m := report(t, res, a); m.Status != "failed" || !strings.Contains(m.Error, "refused") {
		t.Errorf("mirror A: %+v", m)
	}
	if m := report(t, res, b.url); m.Status != "failed" || !strings.Contains(m.Error, "target refused") {
		t.Errorf("mirror B: %+v", m)
	}
	if m := report(t, res, c.url); m.Status != "used" || !contains(m.Served, "timestamp.json") || !containsSuffix(m.Served, "."+TargetName) {
		t.Errorf("mirror C: %+v", m)
	}
	if n := afterRefusal.Load(); n != 0 {
		t.Errorf("mirror B was asked %d more times after its list was refused", n)
	}
}

// Stale (rolled back), endless and stalling mirrors are each skipped for
// the good one; when every mirror is bad, the update fails with each
// mirror's reason and the previous list stays.
func TestMirrorsStaleEndlessAllBad(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	good := serveRepo(t, dir)
	cache := t.TempDir()
	cl := &Client{Mirrors: []string{good.url}, TrustedRoot: root, Dir: cache, MirrorTimeout: time.Second}
	if _, err := cl.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	oldTimestamp, _ := os.ReadFile(filepath.Join(dir, "repository", "timestamp.json"))
	emb, _ := blocklist.Embedded().Marshal()
	if _, err := Publish(dir, emb, now); err != nil { // version 2
		t.Fatal(err)
	}
	// stale serves the timestamp the client trusted before version 2: a
	// rollback once the client has seen version 2.
	stale, endless, stall := serveRepo(t, dir), serveRepo(t, dir), serveRepo(t, dir)
	stale.set(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/timestamp.json") {
			w.Write(oldTimestamp)
			return true
		}
		return false
	})
	endless.set(func(w http.ResponseWriter, r *http.Request) bool {
		chunk := make([]byte, 1<<16)
		for i := 0; i < 4096; i++ {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
		return true
	})
	stall.set(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	good2 := serveRepo(t, dir)
	cl.Mirrors = []string{endless.url, stall.url, good2.url}
	res, err := cl.Update(context.Background())
	if err != nil || res.Version != 2 || res.Source != good2.url {
		t.Fatalf("update: %+v %v", res, err)
	}
	for _, u := range []string{endless.url, stall.url} {
		if m := report(t, res, u); m.Status != "failed" {
			t.Errorf("%s: %+v", u, m)
		}
	}
	// Every mirror bad, now with the stale one and a tampered one.
	if _, err := Publish(dir, emb, now); err != nil { // version 3
		t.Fatal(err)
	}
	tampered := serveRepo(t, dir)
	tampered.set(tamperTarget(dir))
	down := downURL(t)
	cl.Mirrors = []string{down, stale.url, tampered.url, endless.url, stall.url}
	start := time.Now()
	res, err = cl.Update(context.Background())
	var ue *Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "all 5 mirrors failed") {
		t.Fatalf("every mirror bad: %v", err)
	}
	for _, u := range cl.Mirrors {
		if m := report(t, res, u); m.Status != "failed" || !strings.Contains(err.Error(), u) {
			t.Errorf("%s: %+v", u, m)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if _, st, _ := Active(cache); st == nil || st.Version != 2 {
		t.Errorf("previous list not kept: %+v", st)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsSuffix(list []string, s string) bool {
	for _, x := range list {
		if strings.HasSuffix(x, s) {
			return true
		}
	}
	return false
}

// A killed run leaves temporaries: the next run removes the old ones, and
// leaves a fresh one that may be a concurrent run's.
func TestStaleTemporaries(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	srv := serveRepo(t, dir)
	cache := t.TempDir()
	os.MkdirAll(filepath.Join(cache, "metadata"), 0o755)
	old := []string{
		filepath.Join(cache, ".active.json.tmp-1234"),
		filepath.Join(cache, ".state.json.tmp-99"),
		filepath.Join(cache, "metadata", "tuf_tmp5678"),
	}
	fresh := filepath.Join(cache, ".active.json.tmp-4321")
	for _, p := range append(old, fresh) {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range old {
		os.Chtimes(p, now.Add(-time.Hour), now.Add(-time.Hour))
	}
	cl := &Client{Mirrors: []string{srv.url}, TrustedRoot: root, Dir: cache}
	if _, err := cl.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range old {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary was removed: %v", err)
	}
}
