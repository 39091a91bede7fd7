//go:build windows

package distrust

import (
	"context"

	"github.com/mitmguard/mitmguard/winstore"
)

func readLiveWindows(ctx context.Context) ([]*winstore.Store, error) { return winstore.ReadLive(ctx) }

func applyLiveWindows(ctx context.Context, p *winstore.Plan) ([]winstore.Step, error) {
	return winstore.Apply(ctx, p)
}
