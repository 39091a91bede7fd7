package truststore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxFileSize bounds any store file read; the largest real bundles are
// around 250 KB and Java keystores around 200 KB.
const maxFileSize = 32 << 20

// maxLinkHops bounds symlink resolution, as the kernel does (ELOOP).
const maxLinkHops = 40

// ErrSymlinkLoop is returned for a symlink chain that does not end.
var ErrSymlinkLoop = errors.New("truststore: too many levels of symbolic links")

// rootFS maps device paths onto a root folder. Absolute symlink targets are
// device paths too, so they are mapped under the root as well: a disk image
// mounted at /mnt/img whose /etc/ssl/certs/x.pem points to /usr/share/... is
// read from /mnt/img/usr/share/....
type rootFS struct{ root string }

func (r rootFS) real(devicePath string) string {
	if r.root == "" || r.root == "/" {
		return devicePath
	}
	return filepath.Join(r.root, devicePath)
}

// device turns a real path back into a device path.
func (r rootFS) device(realPath string) string {
	if r.root == "" || r.root == "/" {
		return realPath
	}
	rel, err := filepath.Rel(r.root, realPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return realPath
	}
	return "/" + rel
}

// resolve follows symlinks of a device path inside the root and returns the
// real path of the final target.
func (r rootFS) resolve(devicePath string) (string, error) {
	p := r.real(devicePath)
	for range maxLinkHops {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		switch {
		case !filepath.IsAbs(target):
			p = filepath.Join(filepath.Dir(p), target)
		case r.root != "" && r.root != "/" && strings.HasPrefix(target, r.root+string(filepath.Separator)):
			p = target // a link written by a tool run with --root-prefixed paths
		default:
			p = r.real(target)
		}
	}
	return "", ErrSymlinkLoop
}

// readFile reads a device path, following links inside the root, bounded.
func (r rootFS) readFile(devicePath string) ([]byte, error) {
	p, err := r.resolve(devicePath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

// exists reports whether a device path exists (after links).
func (r rootFS) exists(devicePath string) bool {
	_, err := r.resolve(devicePath)
	return err == nil
}

// isDir reports whether a device path is a directory (after links).
func (r rootFS) isDir(devicePath string) bool {
	p, err := r.resolve(devicePath)
	if err != nil {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// glob expands a device-path pattern under the root, sorted.
func (r rootFS) glob(pattern string) []string {
	matches, _ := filepath.Glob(r.real(pattern))
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		out = append(out, r.device(m))
	}
	sort.Strings(out)
	return out
}

// walkFiles lists the regular files (after links) under a device directory,
// recursively, sorted, reporting unreadable parts and link loops to problem.
// Directory links are followed at most maxLinkHops deep.
func (r rootFS) walkFiles(dir string, match func(name string) bool, problem func(string, error)) []string {
	var out []string
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		if depth > maxLinkHops {
			problem(d, ErrSymlinkLoop)
			return
		}
		real, err := r.resolve(d)
		if err != nil {
			problem(d, err)
			return
		}
		ents, err := os.ReadDir(real)
		if err != nil {
			problem(d, err)
			return
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			rp, err := r.resolve(p)
			if err != nil {
				problem(p, err)
				continue
			}
			fi, err := os.Stat(rp)
			if err != nil {
				problem(p, err)
				continue
			}
			switch {
			case fi.IsDir():
				walk(p, depth+1)
			case fi.Mode().IsRegular() && match(e.Name()):
				out = append(out, p)
			}
		}
	}
	walk(dir, 0)
	sort.Strings(out)
	return out
}
