package watch_test

import (
	"context"
	"log/slog"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/guard/watch"
)

// A server that runs for months keeps its guarded client on the list that
// the update timer installs: the next handshake after an update enforces it.
func ExampleStart() {
	ctx := context.Background() // the program's lifetime
	policy := watch.Start(ctx, watch.Options{
		OnSwap: func(old, new *blocklist.List) {
			slog.Info("blocklist updated", "from", old.Version, "to", new.Version, "entries", new.Len())
		},
	})
	client := guard.Client(guard.Options{Policy: policy})
	_ = client // use it for every outgoing HTTPS request
}
