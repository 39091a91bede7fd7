//go:build !windows

package truststore

// readWindowsLive: the running system is not Windows.
func readWindowsLive() []*Store { return nil }
