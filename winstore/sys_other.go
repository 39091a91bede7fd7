//go:build !unix

package winstore

// openFlags: Windows has no FIFO to block an open; the type of the opened
// file is still checked.
const openFlags = 0
