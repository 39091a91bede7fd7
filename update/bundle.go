package update

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A bundle is an offline copy of a repository's current state, to carry an
// update where every mirror is blocked (a USB stick, a file sent by
// messenger). It is a gzip-compressed tar (see docs/release-channel.md)
// holding, under their names in the repository folder:
//
//	N.root.json                       every root version (the chain a client follows)
//	timestamp.json                    the current timestamp
//	N.snapshot.json, N.targets.json   the snapshot and targets it points at
//	targets/HASH.blocklist.json       the list the targets metadata points at
//
// Nothing in it is trusted: a client reads it as it reads a mirror, through
// the same TUF verification against the root it already trusts.
type Bundle struct {
	name  string
	files map[string][]byte
}

// Limits on a bundle: a client reads bundles from strangers.
const (
	MaxBundleSize    = 64 << 20 // bytes, uncompressed
	maxBundleEntries = 300      // 256 root rotations (go-tuf's cap) and the rest
)

var bundleName = regexp.MustCompile(`^(?:[1-9][0-9]{0,9}\.(?:root|snapshot|targets)\.json|timestamp\.json|targets/[0-9a-f]{64}\.` + regexp.QuoteMeta(TargetName) + `)$`)

// BundleError reports a bundle that cannot be read.
type BundleError struct {
	Name string
	Err  error
}

func (e *BundleError) Error() string { return fmt.Sprintf("update: bundle %s: %v", e.Name, e.Err) }
func (e *BundleError) Unwrap() error { return e.Err }

// ReadBundle reads a bundle; name says where it came from, in messages.
// Only its form is checked here; its content is verified by the update.
func ReadBundle(r io.Reader, name string) (*Bundle, error) {
	fail := func(err error) (*Bundle, error) { return nil, &BundleError{name, err} }
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fail(fmt.Errorf("not a mitmguard bundle (gzip-compressed tar): %w", err))
	}
	lr := &io.LimitedReader{R: zr, N: MaxBundleSize + 1}
	tr := tar.NewReader(lr)
	b := &Bundle{name: name, files: map[string][]byte{}}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(truncated(err))
		}
		if len(b.files) == maxBundleEntries {
			return fail(fmt.Errorf("more than %d files", maxBundleEntries))
		}
		if h.Typeflag != tar.TypeReg || !bundleName.MatchString(h.Name) {
			return fail(fmt.Errorf("unexpected entry %q", h.Name))
		}
		if _, dup := b.files[h.Name]; dup {
			return fail(fmt.Errorf("%s appears twice", h.Name))
		}
		if h.Size < 0 || h.Size > MaxBundleSize {
			return fail(fmt.Errorf("%s: size %d", h.Name, h.Size))
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fail(truncated(err))
		}
		b.files[h.Name] = data
	}
	// Read to the end, so that gzip checks its length and checksum: a
	// bundle cut short is refused here, not half-read.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return fail(truncated(err))
	}
	if lr.N <= 0 {
		return fail(fmt.Errorf("larger than %d bytes uncompressed", MaxBundleSize))
	}
	if _, ok := b.files["timestamp.json"]; !ok {
		return fail(errors.New("no timestamp.json"))
	}
	return b, nil
}

func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated (the file was cut short in transfer?)")
	}
	return err
}

// ReadBundleFile reads a bundle from a file.
func ReadBundleFile(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadBundle(f, path)
}

// Files lists the bundle's file names, sorted.
func (b *Bundle) Files() []string {
	var out []string
	for n := range b.files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// FirstRoot returns the oldest root metadata in the bundle (nil if none).
func (b *Bundle) FirstRoot() []byte {
	first := 0
	for n := range b.files {
		if strings.HasSuffix(n, ".root.json") {
			if v := versionOf(n); first == 0 || v < first {
				first = v
			}
		}
	}
	return b.files[fmt.Sprintf("%d.root.json", first)]
}

func (b *Bundle) String() string { return "bundle " + b.name }

func (b *Bundle) fetch(_ context.Context, rel string, max int64) ([]byte, error) {
	data, ok := b.files[rel]
	if !ok {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: rel}
	}
	if int64(len(data)) > max {
		return nil, tooLong(rel, max)
	}
	return data, nil
}

type bundleFile struct {
	name string
	data []byte
}

// WriteBundle writes a bundle of the repository in dir (a folder made by
// repo init, or a mirror's copy of its repository folder) to w: every root
// version, the current timestamp and the snapshot, targets and list it
// points at. It returns the timestamp's expiry, after which clients refuse
// the bundle as they would a frozen mirror.
func WriteBundle(w io.Writer, dir string) (time.Time, error) {
	meta := filepath.Join(dir, "repository")
	if _, err := os.Stat(filepath.Join(meta, "timestamp.json")); err != nil {
		meta = dir
	}
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(meta, name)) }
	ts, err := read("timestamp.json")
	if err != nil {
		return time.Time{}, fmt.Errorf("update: %s is not a repository: %w", dir, err)
	}
	tsm, err := metadata.Timestamp().FromBytes(ts)
	if err != nil {
		return time.Time{}, err
	}
	snapName := fmt.Sprintf("%d.snapshot.json", tsm.Signed.Meta["snapshot.json"].Version)
	snap, err := read(snapName)
	if err != nil {
		return time.Time{}, err
	}
	snm, err := metadata.Snapshot().FromBytes(snap)
	if err != nil {
		return time.Time{}, err
	}
	tv, ok := snm.Signed.Meta["targets.json"]
	if !ok {
		return time.Time{}, errors.New("update: the snapshot lists no targets metadata")
	}
	targName := fmt.Sprintf("%d.targets.json", tv.Version)
	targ, err := read(targName)
	if err != nil {
		return time.Time{}, err
	}
	tm, err := metadata.Targets().FromBytes(targ)
	if err != nil {
		return time.Time{}, err
	}
	tf, ok := tm.Signed.Targets[TargetName]
	if !ok || len(tf.Hashes["sha256"]) == 0 {
		return time.Time{}, fmt.Errorf("update: %s lists no %s (run mitmguard repo publish)", targName, TargetName)
	}
	listName := "targets/" + hex.EncodeToString(tf.Hashes["sha256"]) + "." + TargetName
	list, err := read(listName)
	if err != nil {
		return time.Time{}, err
	}
	roots, _ := filepath.Glob(filepath.Join(meta, "*.root.json"))
	sort.Slice(roots, func(i, j int) bool { return versionOf(roots[i]) < versionOf(roots[j]) })
	var files []bundleFile
	for _, p := range roots {
		data, err := os.ReadFile(p)
		if err != nil {
			return time.Time{}, err
		}
		files = append(files, bundleFile{filepath.Base(p), data})
	}
	files = append(files, bundleFile{"timestamp.json", ts}, bundleFile{snapName, snap}, bundleFile{targName, targ}, bundleFile{listName, list})
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		// Fixed times and modes: the same repository state gives the same
		// bundle, whoever makes it.
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return time.Time{}, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return time.Time{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return time.Time{}, err
	}
	if err := zw.Close(); err != nil {
		return time.Time{}, err
	}
	_, err = w.Write(buf.Bytes())
	return tsm.Signed.Expires, err
}
