package pgstore

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// One replica holds a trigger's lease at a time; a poll stores its events
// and state only under the lease it polled with, so a replica that lost the
// lease (paused, partitioned, expired) cannot write stale state.
func TestLeasesFenceAppends(t *testing.T) {
	dsn := newTestDB(t)
	a, b := openDSN(t, dsn, store.Options{}), openDSN(t, dsn, store.Options{})
	ctx := testCtx(t)
	const uri = "pipedrive://triggers/new-deals"
	addTrigger(t, a, uri)

	epochA, held, err := a.HoldLease(ctx, uri, "replica-a", time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	_, held, err = b.HoldLease(ctx, uri, "replica-b", time.Minute)
	require.NoError(t, err)
	assert.False(t, held, "another replica's unexpired lease is not taken")
	again, held, err := a.HoldLease(ctx, uri, "replica-a", time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	assert.Equal(t, epochA, again, "renewing in time keeps the epoch")

	fenceA := store.WithFence(ctx, store.Fence{Owner: "replica-a", Epoch: epochA})
	_, err = a.AppendWithState(fenceA, uri, newEvents("d", 1, 2), json.RawMessage(`{"last_id":2}`))
	require.NoError(t, err, "the holder stores its poll")
	_, err = b.AppendWithState(store.WithFence(ctx, store.Fence{Owner: "replica-b", Epoch: epochA}), uri, newEvents("d", 3, 1), json.RawMessage(`{"last_id":3}`))
	require.True(t, errors.Is(err, store.ErrFenced), "%v", err)

	// A's lease runs out (it stopped renewing): B takes it over with a new
	// epoch, and A's late poll is refused whole.
	_, err = a.pool.Exec(ctx, `UPDATE trigger_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE uri = $1`, uri)
	require.NoError(t, err)
	epochB, held, err := b.HoldLease(ctx, uri, "replica-b", time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	assert.Greater(t, epochB, epochA)
	_, err = a.AppendWithState(fenceA, uri, newEvents("late", 1, 1), json.RawMessage(`{"last_id":99}`))
	require.True(t, errors.Is(err, store.ErrFenced), "%v", err)
	tr, _, err := a.Trigger(ctx, uri)
	require.NoError(t, err)
	assert.JSONEq(t, `{"last_id":2}`, string(tr.State), "the stale poll changed nothing")
	evs, err := a.EventsAfter(ctx, uri, 0, 0)
	require.NoError(t, err)
	assert.Len(t, evs, 2)

	// A released lease is free at once.
	require.NoError(t, b.ReleaseLease(ctx, uri, "replica-b", epochB))
	epochA2, held, err := a.HoldLease(ctx, uri, "replica-a", time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	assert.Greater(t, epochA2, epochB)
}
