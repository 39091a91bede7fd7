//go:build unix

package rootfs

import (
	"io/fs"
	"syscall"
)

// openFlags are added to every open: a final link is never followed (the
// path was resolved inside the root first) and a FIFO planted in an image
// does not block the open.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true
}
