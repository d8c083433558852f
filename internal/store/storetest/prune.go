package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

func (c *suite) pruneByAge(t *testing.T) {
	clk := clock.NewFake(t0)
	s := c.open(t, store.Options{Clock: clk, MaxAge: 30 * 24 * time.Hour, MaxEventsPerTrigger: -1})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")

	var all []store.Event
	for i, day := range []int{0, 10, 20} {
		clk.Set(t0.Add(time.Duration(day) * 24 * time.Hour))
		evs, err := s.Append(ctx, "trigger://a", newEvents("a", i*2, 2))
		require.NoError(t, err)
		all = append(all, evs...)
		_, err = s.Append(ctx, "trigger://b", newEvents("b", i, 1))
		require.NoError(t, err)
	}
	require.NoError(t, s.SetCursor(ctx, "reader", "trigger://a", all[1].Seq))

	clk.Set(t0.Add(29 * 24 * time.Hour))
	removed, err := s.Prune(ctx)
	require.NoError(t, err)
	assert.Zero(t, removed)

	// An event exactly MaxAge old is kept.
	clk.Set(t0.Add(30 * 24 * time.Hour))
	removed, err = s.Prune(ctx)
	require.NoError(t, err)
	assert.Zero(t, removed)

	clk.Set(t0.Add(35 * 24 * time.Hour)) // cutoff: day 5
	removed, err = s.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, removed) // two of a, one of b from day 0
	assert.Equal(t, all[2:], allEvents(t, s, "trigger://a"))
	assert.Len(t, allEvents(t, s, "trigger://b"), 2)

	// A cursor at a pruned event reads on from the oldest kept one.
	got, err := s.ReadAndAdvance(ctx, "reader", "trigger://a", 1)
	require.NoError(t, err)
	assert.Equal(t, all[2:3], got)

	clk.Set(t0.Add(100 * 24 * time.Hour))
	removed, err = s.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, 6, removed)
	assert.Empty(t, allEvents(t, s, "trigger://a"))
	assert.Empty(t, allEvents(t, s, "trigger://b"))

	// Sequences are never reused, and LatestSeq remembers the last one.
	latest, err := s.LatestSeq(ctx, "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, all[len(all)-1].Seq, latest)
	evs, err := s.Append(ctx, "trigger://a", newEvents("new", 0, 1))
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Greater(t, evs[0].Seq, all[len(all)-1].Seq)
	// Pruned keys are no longer deduplicated (documented).
	again, err := s.Append(ctx, "trigger://a", newEvents("a", 0, 1))
	require.NoError(t, err)
	assert.Len(t, again, 1)
	// Triggers are never pruned.
	trs, err := s.Triggers(ctx, false)
	require.NoError(t, err)
	assert.Len(t, trs, 2)
}

func (c *suite) pruneByCount(t *testing.T) {
	s := c.open(t, store.Options{MaxEventsPerTrigger: 10})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")
	addTrigger(t, s, "trigger://empty")
	var a []store.Event
	for i := range 5 {
		evs, err := s.Append(ctx, "trigger://a", newEvents("a", i*5, 5))
		require.NoError(t, err)
		a = append(a, evs...)
		_, err = s.Append(ctx, "trigger://b", newEvents("b", i, 1))
		require.NoError(t, err)
	}

	removed, err := s.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, 15, removed)
	assert.Equal(t, a[15:], allEvents(t, s, "trigger://a"), "the newest ten are kept")
	assert.Len(t, allEvents(t, s, "trigger://b"), 5)

	removed, err = s.Prune(ctx)
	require.NoError(t, err)
	assert.Zero(t, removed, "pruning is idempotent")

	latest, err := s.LatestSeq(ctx, "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, a[len(a)-1].Seq, latest)

	// Age and count together, in one call.
	clk := clock.NewFake(t0)
	both := c.open(t, store.Options{Clock: clk, MaxAge: time.Hour, MaxEventsPerTrigger: 3})
	addTrigger(t, both, "trigger://a")
	old, err := both.Append(ctx, "trigger://a", newEvents("old", 0, 2))
	require.NoError(t, err)
	clk.Set(t0.Add(2 * time.Hour))
	fresh, err := both.Append(ctx, "trigger://a", newEvents("new", 0, 5))
	require.NoError(t, err)
	require.Len(t, old, 2)
	removed, err = both.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, removed, "two by age, two more by count")
	assert.Equal(t, fresh[2:], allEvents(t, both, "trigger://a"))

	// Negative limits disable pruning.
	off := c.open(t, store.Options{MaxEventsPerTrigger: -1, MaxAge: -1, Clock: clk})
	addTrigger(t, off, "trigger://a")
	_, err = off.Append(ctx, "trigger://a", newEvents("a", 0, 20))
	require.NoError(t, err)
	clk.Set(t0.Add(1000 * 24 * time.Hour))
	removed, err = off.Prune(ctx)
	require.NoError(t, err)
	assert.Zero(t, removed)
	assert.Len(t, allEvents(t, off, "trigger://a"), 20)
}
