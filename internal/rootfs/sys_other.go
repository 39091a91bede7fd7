//go:build !unix

package rootfs

import "io/fs"

// openFlags: Windows has neither O_NOFOLLOW nor FIFOs to block on; the
// path was resolved inside the root first, and os.Root keeps it there.
const openFlags = 0

// idOf knows no folder identity here: a walk is then bounded by
// MaxWalkEntries alone.
func idOf(fs.FileInfo) (fileID, bool) { return fileID{}, false }
