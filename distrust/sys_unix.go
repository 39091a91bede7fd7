//go:build unix

package distrust

import (
	"io/fs"
	"syscall"
)

// owner is a file's owner and group, recorded in a snapshot so that an
// undo restores them.
func owner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// writable says whether this process may write the host path p, before
// anything changes.
func writable(p string) error { return syscall.Access(p, 2 /* W_OK */) }
