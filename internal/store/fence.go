package store

import (
	"context"
	"errors"
)

// Fence names the lease under which a replica of a cluster polls a trigger:
// its holder and the lease's epoch, which grows whenever another replica
// takes the lease over. A store that keeps leases (internal/store/pgstore)
// stores a poll's events and state only while that lease is still held, so
// a paused or partitioned replica cannot write stale state after another
// took over; the embedded store (one process, no leases) ignores fences.
type Fence struct {
	Owner string
	Epoch int64
}

// ErrFenced is the refusal of a write made under a lease that is no longer
// held: nothing was stored.
var ErrFenced = errors.New("store: the trigger's lease is no longer held by this replica")

type fenceKey struct{}

// WithFence makes the appends made with ctx conditional on the lease f.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the lease an append made with ctx depends on, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}
