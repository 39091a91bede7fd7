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
