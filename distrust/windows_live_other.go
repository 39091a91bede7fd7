//go:build !windows

package distrust

import (
	"context"
	"errors"

	"github.com/mitmguard/mitmguard/winstore"
)

var errNotWindows = errors.New("distrust: the live Windows certificate stores are changed on Windows only")

func readLiveWindows(context.Context) ([]*winstore.Store, error) { return nil, errNotWindows }

func applyLiveWindows(context.Context, *winstore.Plan) ([]winstore.Step, error) {
	return nil, errNotWindows
}
