//go:build unix

package winstore

import "syscall"

// openFlags are added to a hive's open: a FIFO planted in an image opens
// at once instead of blocking, and is then refused by its type.
const openFlags = syscall.O_NONBLOCK
