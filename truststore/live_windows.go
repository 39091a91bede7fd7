//go:build windows

package truststore

import (
	"context"

	"github.com/mitmguard/mitmguard/winstore"
)

// readWindowsLive reads the running Windows's stores through CryptoAPI.
func readWindowsLive() []*Store {
	stores, err := winstore.ReadLive(context.Background())
	if err != nil {
		return []*Store{{Kind: WindowsVolume, Path: "CryptoAPI", Owner: "system", Problems: []Problem{{Path: "CryptoAPI", Err: err}}}}
	}
	return fromWindows(stores, nil)
}
