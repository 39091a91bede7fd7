//go:build unix

package storetest

import (
	"fmt"
	"io/fs"
	"syscall"
)

// owner is " uid:gid" for Tree.
func owner(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
	}
	return ""
}
