//go:build !unix

package storetest

import "io/fs"

// owner: Windows has no numeric owner for Tree to record.
func owner(fs.FileInfo) string { return "" }
