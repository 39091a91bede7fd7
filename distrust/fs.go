package distrust

import (
	"github.com/mitmguard/mitmguard/internal/rootfs"
	"github.com/mitmguard/mitmguard/truststore"
)

// maxFileSize bounds a store file read while planning or applying.
const maxFileSize = 32 << 20

// Debian's layout, as truststore reads it.
const (
	debianCerts = truststore.DebianCertsDir
	debianLocal = truststore.DebianLocalDir
	debianShare = truststore.DebianShareDir
	debianConf  = truststore.DebianConf
)

// rootFS is the device tree every path is taken under: a link is followed
// inside the root as a chroot would, never out of it (a disk image may be
// hostile).
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
