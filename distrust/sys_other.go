//go:build !unix

package distrust

import (
	"errors"
	"io/fs"
	"os"
)

// owner: Windows has no numeric owner to record.
func owner(fs.FileInfo) (uid, gid int) { return 0, 0 }

// writable approximates access(2) by the read-only attribute, which is
// what Windows maps to the write permission bits.
func writable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o200 == 0 {
		return &fs.PathError{Op: "access", Path: p, Err: errors.New("read-only")}
	}
	return nil
}
