package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

func (c *suite) cursorsNeverGoBackwards(t *testing.T) {
	s := c.open(t, store.Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")
	evs, err := s.Append(ctx, "trigger://a", newEvents("k", 0, 10))
	require.NoError(t, err)

	cur, err := s.Cursor(ctx, "alice", "trigger://a")
	require.NoError(t, err)
	assert.Zero(t, cur)

	require.NoError(t, s.SetCursor(ctx, "alice", "trigger://a", evs[5].Seq))
	cur, err = s.Cursor(ctx, "alice", "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, evs[5].Seq, cur)

	require.NoError(t, s.SetCursor(ctx, "alice", "trigger://a", evs[2].Seq), "moving back is a no-op")
	require.NoError(t, s.SetCursor(ctx, "alice", "trigger://a", 0))
	require.NoError(t, s.SetCursor(ctx, "alice", "trigger://a", evs[5].Seq), "setting the same position is a no-op")
	cur, err = s.Cursor(ctx, "alice", "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, evs[5].Seq, cur)

	require.NoError(t, s.SetCursor(ctx, "alice", "trigger://a", evs[9].Seq))
	cur, err = s.Cursor(ctx, "alice", "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, evs[9].Seq, cur)

	// Cursors are per consumer and per trigger.
	cur, err = s.Cursor(ctx, "bob", "trigger://a")
	require.NoError(t, err)
	assert.Zero(t, cur)
	cur, err = s.Cursor(ctx, "alice", "trigger://b")
	require.NoError(t, err)
	assert.Zero(t, cur)

	require.Error(t, s.SetCursor(ctx, "alice", "trigger://a", evs[9].Seq+1), "beyond the latest event")
	require.Error(t, s.SetCursor(ctx, "bob", "trigger://b", 1), "beyond the latest event of a trigger without events")
	require.NoError(t, s.SetCursor(ctx, "bob", "trigger://b", 0), "0 on a trigger without events")
	require.Error(t, s.SetCursor(ctx, "alice", "trigger://a", -1))
	require.Error(t, s.SetCursor(ctx, "", "trigger://a", 1))
	require.ErrorIs(t, s.SetCursor(ctx, "alice", "trigger://missing", 0), store.ErrNotFound)
	cur, err = s.Cursor(ctx, "alice", "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, evs[9].Seq, cur, "refused moves change nothing")

	// ReadAndAdvance picks up from a cursor set explicitly, and SetCursor
	// cannot move a cursor that ReadAndAdvance moved back.
	require.NoError(t, s.SetCursor(ctx, "carol", "trigger://a", evs[3].Seq))
	got, err := s.ReadAndAdvance(ctx, "carol", "trigger://a", 2)
	require.NoError(t, err)
	assert.Equal(t, evs[4:6], got)
	require.NoError(t, s.SetCursor(ctx, "carol", "trigger://a", evs[0].Seq))
	got, err = s.ReadAndAdvance(ctx, "carol", "trigger://a", 0)
	require.NoError(t, err)
	assert.Equal(t, evs[6:], got)

	// Cursors survive pruning of the events they point at.
	require.NoError(t, s.SetCursor(ctx, "dave", "trigger://a", evs[9].Seq))
	more, err := s.Append(ctx, "trigger://a", newEvents("k", 10, 1))
	require.NoError(t, err)
	got, err = s.ReadAndAdvance(ctx, "dave", "trigger://a", 0)
	require.NoError(t, err)
	assert.Equal(t, more, got)
}

// concurrentSetCursor moves one cursor from many goroutines (and replicas)
// in scrambled orders: every reading after a move is at least that move,
// readings never decrease, and the cursor ends at the largest position.
func (c *suite) concurrentSetCursor(t *testing.T) {
	opts := store.Options{}
	s := c.open(t, opts)
	ctx := testCtx(t)
	const uri = "trigger://cur"
	addTrigger(t, s, uri)
	evs, err := s.Append(ctx, uri, newEvents("k", 0, 60))
	require.NoError(t, err)
	stores := c.instances(t, s, opts, 3)

	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[g%len(stores)]
			var seen int64
			for i := range 30 {
				seq := evs[(g*17+i*23)%len(evs)].Seq
				if !assert.NoError(t, st.SetCursor(ctx, "shared", uri, seq)) {
					return
				}
				cur, err := st.Cursor(ctx, "shared", uri)
				if !assert.NoError(t, err) {
					return
				}
				assert.GreaterOrEqual(t, cur, seq, "the cursor is at least where it was just moved")
				assert.GreaterOrEqual(t, cur, seen, "the cursor never moves backwards")
				seen = cur
			}
		}()
	}
	wg.Wait()
	// (g*17+i*23) mod 60 reaches 59 for some g, i: the largest position.
	cur, err := s.Cursor(ctx, "shared", uri)
	require.NoError(t, err)
	assert.Equal(t, evs[len(evs)-1].Seq, cur)
}

func (c *suite) readAndAdvance(t *testing.T) {
	s := c.open(t, store.Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")

	got, err := s.ReadAndAdvance(ctx, "c", "trigger://a", 10)
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = s.ReadAndAdvance(ctx, "c", "trigger://missing", 10)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ReadAndAdvance(ctx, "", "trigger://a", 10)
	require.Error(t, err)

	evs, err := s.Append(ctx, "trigger://a", newEvents("k", 0, 5))
	require.NoError(t, err)
	got, err = s.ReadAndAdvance(ctx, "c", "trigger://a", 3)
	require.NoError(t, err)
	assert.Equal(t, evs[:3], got)
	cur, err := s.Cursor(ctx, "c", "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, evs[2].Seq, cur)

	// Another consumer has its own cursor.
	got, err = s.ReadAndAdvance(ctx, "other", "trigger://a", 0)
	require.NoError(t, err)
	assert.Equal(t, evs, got)

	more, err := s.Append(ctx, "trigger://a", newEvents("k", 5, 2))
	require.NoError(t, err)
	got, err = s.ReadAndAdvance(ctx, "c", "trigger://a", 0)
	require.NoError(t, err)
	assert.Equal(t, append(append([]store.Event(nil), evs[3:]...), more...), got)
	got, err = s.ReadAndAdvance(ctx, "c", "trigger://a", 0)
	require.NoError(t, err)
	assert.Empty(t, got)

	// A cancelled read moves nothing.
	_, err = s.Append(ctx, "trigger://a", newEvents("k", 7, 1))
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.ReadAndAdvance(cctx, "c", "trigger://a", 0)
	require.Error(t, err)
	got, err = s.ReadAndAdvance(ctx, "c", "trigger://a", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"k7"}, keysOf(got))

	// A limit of zero or less means DefaultLimit.
	_, err = s.Append(ctx, "trigger://a", newEvents("x", 0, store.DefaultLimit+3))
	require.NoError(t, err)
	got, err = s.ReadAndAdvance(ctx, "c", "trigger://a", -1)
	require.NoError(t, err)
	assert.Len(t, got, store.DefaultLimit)
	got, err = s.ReadAndAdvance(ctx, "c", "trigger://a", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{fmt.Sprintf("x%d", store.DefaultLimit), fmt.Sprintf("x%d", store.DefaultLimit+1), fmt.Sprintf("x%d", store.DefaultLimit+2)}, keysOf(got))
}
