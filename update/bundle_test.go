package update

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/mitmguard/mitmguard/blocklist"
)

func bundleOf(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := WriteBundle(&buf, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readBundle(t *testing.T, data []byte) *Bundle {
	t.Helper()
	b, err := ReadBundle(bytes.NewReader(data), "test")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A client that may not touch the network: its default channel names a
// mirror that fails the test if asked anything.
func offlineClient(t *testing.T, root []byte, dir string) *Client {
	srv := serveRepo(t, t.TempDir())
	srv.set(func(w http.ResponseWriter, r *http.Request) bool {
		t.Errorf("network used: %s", r.URL)
		return true
	})
	return &Client{TrustedRoot: root, Dir: dir, channel: &Channel{Mirrors: []string{srv.url}}}
}

// A bundle installs without network; a bundle with an older list, one
// signed by another repository's keys, a truncated one, a tampered one and
// an expired one are refused and the previous list stays; a bundle that
// spans root rotations installs.
func TestBundle(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	v1 := bundleOf(t, dir)
	cache := t.TempDir()
	ctx := context.Background()

	c := offlineClient(t, root, cache)
	c.Bundle = readBundle(t, v1)
	res, err := c.Update(ctx)
	if err != nil || res.Status != "installed" || res.Version != 1 || !strings.HasPrefix(res.Source, "bundle ") {
		t.Fatalf("bundle install: %+v %v", res, err)
	}
	emb, _ := blocklist.Embedded().Marshal()
	Publish(dir, emb, now) // version 2
	c.Bundle = readBundle(t, bundleOf(t, dir))
	if res, err := c.Update(ctx); err != nil || res.Version != 2 {
		t.Fatalf("bundle of version 2: %+v %v", res, err)
	}

	otherDir, _ := newTestRepo(t, now)
	Publish(otherDir, emb, now)
	Publish(otherDir, emb, now) // version 3, signed by other keys
	Publish(dir, emb, now)      // version 3
	v3 := bundleOf(t, dir)
	refused := []struct {
		name, want string
		bundle     []byte
		now        time.Time
	}{
		{"older list", "metadata refused", v1, time.Time{}},
		{"wrong key", "metadata refused", bundleOf(t, otherDir), time.Time{}},
		{"tampered list", "target refused", tamperBundle(t, v3, func(name string, data []byte) []byte {
			if strings.HasSuffix(name, TargetName) {
				return bytes.Replace(data, []byte("Qaznet"), []byte("Qazn3t"), 1)
			}
			return data
		}), time.Time{}},
		{"expired (frozen)", "ask for a fresher one", v3, now.Add(3 * 24 * time.Hour)},
		{"truncated", "truncated", v3[:len(v3)*2/3], time.Time{}},
		{"truncated at the end", "truncated", v3[:len(v3)-4], time.Time{}},
		{"not a bundle", "not a mitmguard bundle", emb, time.Time{}},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			b, err := ReadBundle(bytes.NewReader(r.bundle), r.name)
			if err == nil {
				cc := *c
				cc.Bundle, cc.now = b, r.now
				_, err = cc.Update(ctx)
			}
			t.Logf("refused: %v", err)
			if err == nil || !strings.Contains(err.Error(), r.want) {
				t.Fatalf("err = %v, want %q", err, r.want)
			}
			if _, st, _ := Active(cache); st == nil || st.Version != 2 {
				t.Errorf("the previous list changed: %+v", st)
			}
		})
	}
	c.Bundle = readBundle(t, v3)
	if res, err := c.Update(ctx); err != nil || res.Version != 3 {
		t.Fatalf("clean bundle of version 3: %+v %v", res, err)
	}
}

// tamperBundle rewrites each file of a bundle through edit.
func tamperBundle(t *testing.T, data []byte, edit func(name string, data []byte) []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		body = edit(h.Name, body)
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// A client that trusts 1.root.json installs a bundle made after the root
// key was rotated twice and two other keys once (root versions 2 to 5).
func TestBundleAcrossRootRotation(t *testing.T) {
	now := time.Now()
	dir, root := newTestRepo(t, now)
	emb, _ := blocklist.Embedded().Marshal()
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.ROOT, metadata.TARGETS} {
		if err := RotateKey(dir, role, now); err != nil {
			t.Fatal(err)
		}
	}
	Publish(dir, emb, now)
	b := readBundle(t, bundleOf(t, dir))
	if !contains(b.Files(), "5.root.json") {
		t.Fatalf("the bundle lacks the root chain: %v", b.Files())
	}
	c := offlineClient(t, root, t.TempDir())
	c.Bundle = b
	res, err := c.Update(context.Background())
	if err != nil || res.Status != "installed" {
		t.Fatalf("%+v %v", res, err)
	}
	trusted, _ := os.ReadFile(filepath.Join(c.Dir, "metadata", "root.json"))
	if info, _ := rootInfo(trusted); info.Version != 5 {
		t.Errorf("trusted root version %d, want 5", info.Version)
	}
}

// Bundles are refused when malformed in form: unknown entries, paths that
// climb out, duplicates, links.
func TestReadBundleForm(t *testing.T) {
	mk := func(entries ...*tar.Header) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, h := range entries {
			tw.WriteHeader(h)
			tw.Write(make([]byte, h.Size))
		}
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 2, Mode: 0o644}
	}
	cases := map[string][]byte{
		"climbs out":     mk(reg("timestamp.json"), reg("../1.root.json")),
		"unknown":        mk(reg("timestamp.json"), reg("keys/root.pem")),
		"duplicate":      mk(reg("timestamp.json"), reg("timestamp.json")),
		"symlink":        mk(reg("timestamp.json"), &tar.Header{Name: "1.root.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}),
		"no timestamp":   mk(reg("1.root.json")),
		"empty":          mk(),
		"version zero":   mk(reg("timestamp.json"), reg("0.root.json")),
		"not even gzip":  []byte("hello"),
		"nothing at all": nil,
	}
	for name, data := range cases {
		if _, err := ReadBundle(bytes.NewReader(data), name); err == nil {
			t.Errorf("%s: accepted", name)
		} else if be := (*BundleError)(nil); !errors.As(err, &be) {
			t.Errorf("%s: %T %v", name, err, err)
		}
	}
	if _, err := ReadBundle(bytes.NewReader(mk(reg("timestamp.json"), reg("1.root.json"), reg("targets/"+strings.Repeat("ab", 32)+"."+TargetName))), "ok"); err != nil {
		t.Errorf("a well-formed bundle: %v", err)
	}
}

// FuzzReadBundle: a bundle comes from strangers. Reading one must not
// panic or hold more than the limit, and whatever it accepts is named as a
// repository file.
func FuzzReadBundle(f *testing.F) {
	dir, _ := newTestRepo(f, time.Now())
	var buf bytes.Buffer
	if _, err := WriteBundle(&buf, dir); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:100])
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBundle(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		total := 0
		for _, n := range b.Files() {
			if !bundleName.MatchString(n) {
				t.Fatalf("accepted %q", n)
			}
			total += len(b.files[n])
		}
		if total > MaxBundleSize {
			t.Fatalf("holds %d bytes", total)
		}
	})
}
