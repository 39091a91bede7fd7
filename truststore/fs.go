package truststore

import (
	"github.com/mitmguard/mitmguard/internal/rootfs"
)

// maxFileSize bounds any store file read; the largest real bundles are
// around 250 KB and Java keystores around 200 KB.
const maxFileSize = 32 << 20

// ErrSymlinkLoop is returned for a symlink chain that does not end.
var ErrSymlinkLoop = rootfs.ErrSymlinkLoop

// rootFS is the device tree every store path is taken under: a link is
// followed inside the root as a chroot would, never out of it (a disk image
// may be hostile).
type rootFS struct{ *rootfs.FS }

// readFile reads a device path, following links inside the root, bounded.
func (r rootFS) readFile(devicePath string) ([]byte, error) {
	return r.ReadFile(devicePath, maxFileSize)
}

// glob expands a device-path pattern under the root, sorted; a tree too
// large to expand gives what was found before.
func (r rootFS) glob(pattern string) []string {
	out, _ := r.Glob(pattern)
	return out
}
