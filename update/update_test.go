package update

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/lab"
)

// server serves a repository folder on loopback, and lets a test play the
// network attacker: replace any response, or stall.
type server struct {
	url string
	mu  sync.Mutex
	// attack, if set, handles the request instead of the file server; it
	// returns false to let the real file through.
	attack func(w http.ResponseWriter, r *http.Request) bool
}

func serveRepo(t *testing.T, dir string) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{url: "http://" + ln.Addr().String()}
	files := http.FileServer(http.Dir(filepath.Join(dir, "repository")))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		a := s.attack
		s.mu.Unlock()
		if a != nil && a(w, r) {
			return
		}
		files.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *server) set(a func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.attack = a
	s.mu.Unlock()
}

func listWith(t *testing.T, extra *blocklist.List) []byte {
	out, err := blocklist.Merge(blocklist.Embedded(), extra).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUpdateAndAttacks(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	if err := InitRepo(dir, now); err != nil {
		t.Fatal(err)
	}
	emb, _ := blocklist.Embedded().Marshal()
	if v, err := Publish(dir, emb, now); err != nil || v != 1 {
		t.Fatalf("publish: %d %v", v, err)
	}
	srv := serveRepo(t, dir)
	root, err := os.ReadFile(filepath.Join(dir, "repository", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	c := &Client{Mirrors: []string{srv.url}, TrustedRoot: root, Dir: cache, MirrorTimeout: time.Second}
	ctx := context.Background()

	// A first update.
	st, err := c.Update(ctx)
	if err != nil || st.Status != "installed" || st.Version != 1 || st.Entries != 15 {
		t.Fatalf("first update: %+v %v", st, err)
	}
	if res, err := c.Update(ctx); err != nil || res.Status != "current" {
		t.Errorf("second update: %+v %v", res, err)
	}

	// A newer list arrives: the lab's national root is added.
	l, err := lab.Start(lab.Config{Targets: map[string]lab.Action{}})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	national, _ := blocklist.FromPEM(lab.PEM(l.NationalRoot), "lab")
	if v, err := Publish(dir, listWith(t, national), now); err != nil || v != 2 {
		t.Fatalf("publish 2: %d %v", v, err)
	}
	st, err = c.Update(ctx)
	if err != nil || st.Version != 2 {
		t.Fatalf("newer list: %+v %v", st, err)
	}
	active, _, _ := Active(cache)
	if active.Len() != 16 || active.Version != 2 {
		t.Fatalf("active: %d entries, version %d", active.Len(), active.Version)
	}
	oldTimestamp, _ := os.ReadFile(filepath.Join(dir, "repository", "timestamp.json"))

	// Version 3 is published; each attack on it must be refused and leave
	// version 2 in force.
	if _, err := Publish(dir, listWith(t, national), now); err != nil {
		t.Fatal(err)
	}
	otherKey := signedWithOtherKey(t, dir)
	attacks := []struct {
		name   string
		attack func(w http.ResponseWriter, r *http.Request) bool
		client func(*Client)
		want   string
	}{
		{"tampered target", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "."+TargetName) {
				return false
			}
			data, _ := os.ReadFile(filepath.Join(dir, "repository", r.URL.Path))
			w.Write([]byte(strings.Replace(string(data), "Qaznet", "Qazn3t", 1)))
			return true
		}, nil, "target"},
		{"metadata signed with a wrong key", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/timestamp.json") {
				return false
			}
			w.Write(otherKey)
			return true
		}, nil, "metadata"},
		{"rollback to an older version", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/timestamp.json") {
				return false
			}
			w.Write(oldTimestamp)
			return true
		}, nil, "metadata"},
		{"freeze (expired timestamp)", nil, func(c *Client) { c.now = now.Add(3 * 24 * time.Hour) }, "expired"},
		{"endless data", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/timestamp.json") {
				return false
			}
			chunk := make([]byte, 1<<16)
			for i := 0; i < 4096; i++ { // 256 MB at most, should the client keep reading
				if _, err := w.Write(chunk); err != nil {
					break
				}
			}
			return true
		}, nil, "metadata"},
		{"a server that stalls", func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return true
		}, nil, "metadata"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			srv.set(a.attack)
			defer srv.set(nil)
			ac := *c
			if a.client != nil {
				a.client(&ac)
			}
			start := time.Now()
			_, err := ac.Update(ctx)
			var ue *Error
			t.Logf("refused: %v", err)
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), a.want) {
				t.Fatalf("err = %v, want an *update.Error about %q", err, a.want)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("took %v", d)
			}
			if act, st, _ := Active(cache); st == nil || st.Version != 2 || act.Version != 2 {
				t.Errorf("active list changed: %+v", st)
			}
		})
	}
	// Without an attacker, version 3 installs.
	if st, err := c.Update(ctx); err != nil || st.Version != 3 {
		t.Fatalf("clean update to 3: %+v %v", st, err)
	}
}

// signedWithOtherKey returns the repository's timestamp with a higher
// version, signed by a key the root does not list.
func signedWithOtherKey(t *testing.T, dir string) []byte {
	ts, err := metadata.Timestamp().FromFile(filepath.Join(dir, "repository", "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts.Signed.Version += 10
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := signature.LoadSigner(priv, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts.ClearSignatures()
	ts.Sign(s)
	b, err := ts.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Key rotation: the client follows a rotated timestamp key and a rotated
// root key (the new root signed by the old root key too).
func TestKeyRotation(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	emb, _ := blocklist.Embedded().Marshal()
	srv := serveRepo(t, dir)
	c := &Client{Mirrors: []string{srv.url}, TrustedRoot: root, Dir: t.TempDir()}
	if _, err := c.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, role := range []string{metadata.TIMESTAMP, metadata.ROOT, metadata.TARGETS} {
		if err := RotateKey(dir, role, now); err != nil {
			t.Fatalf("rotate %s: %v", role, err)
		}
		if _, err := Publish(dir, emb, now); err != nil {
			t.Fatal(err)
		}
		st, err := c.Update(context.Background())
		if err != nil || st.Version != 2+i {
			t.Fatalf("after rotating %s: %+v %v", role, st, err)
		}
	}
	if err := RotateKey(dir, "nobody", now); err == nil {
		t.Error("an unknown role was rotated")
	}
}

// An install interrupted before its rename leaves the old list whole.
func TestInterruptedInstall(t *testing.T) {
	cache := t.TempDir()
	c := &Client{Dir: cache}
	old, _ := blocklist.Embedded().Marshal()
	if err := c.install(old, &State{Version: 1}); err != nil {
		t.Fatal(err)
	}
	c.beforeRename = func() error { return errors.New("power cut") }
	newer := []byte(strings.Replace(string(old), `"list_version": 1`, `"list_version": 9`, 1))
	if err := c.install(newer, &State{Version: 9}); err == nil {
		t.Fatal("the interrupted install reported success")
	}
	got, _ := os.ReadFile(filepath.Join(cache, "active.json"))
	if string(got) != string(old) {
		t.Error("the active list changed")
	}
	left, _ := filepath.Glob(filepath.Join(cache, ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// The embedded list is the floor: an installed list without an entry does
// not remove it, unless the list is newer and withdraws it by id.
func TestFloor(t *testing.T) {
	cache := t.TempDir()
	c := &Client{Dir: cache}
	emb := blocklist.Embedded()
	small, _ := blocklist.New(emb.Entries()[:3], 5, time.Now())
	data, _ := small.Marshal()
	c.install(data, &State{Version: 5})
	act, st, err := Active(cache)
	if err != nil || act.Len() != emb.Len() || st.Version != 5 {
		t.Fatalf("floor: %d entries, %+v, %v", act.Len(), st, err)
	}
	withdrawing := strings.Replace(string(data), `"entries": [`, `"withdrawn": ["superfish"], "entries": [`, 1)
	c.install([]byte(withdrawing), &State{Version: 5})
	act, _, err = Active(cache)
	if err != nil || act.Len() != emb.Len()-1 || act.ByID("superfish") != nil {
		t.Fatalf("withdrawal: %d entries, %v", act.Len(), err)
	}
}
