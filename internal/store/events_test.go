package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

func TestAppendDedupAndOrder(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, Options{Clock: clk})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")

	_, err := s.Append(ctx, "trigger://missing", newEvents("k", 0, 1))
	require.ErrorIs(t, err, ErrNotFound)

	first, err := s.Append(ctx, "trigger://a", []NewEvent{
		{Key: "d1", Payload: json.RawMessage(`{"id":1}`)},
		{Key: "d2", Payload: json.RawMessage(`{"id":2}`)},
		{Key: "d1", Payload: json.RawMessage(`{"id":"dup in batch"}`)},
		{Key: "d3"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"d1", "d2", "d3"}, keysOf(first))
	assert.Less(t, first[0].Seq, first[1].Seq)
	assert.Less(t, first[1].Seq, first[2].Seq)
	assert.JSONEq(t, `{"id":1}`, string(first[0].Payload))
	assert.Equal(t, "null", string(first[2].Payload))
	for _, e := range first {
		assert.Equal(t, "trigger://a", e.TriggerURI)
		assert.True(t, e.ReceivedAt.Equal(t0))
	}

	// The same key on another trigger is a different event.
	other, err := s.Append(ctx, "trigger://b", []NewEvent{{Key: "d1", Payload: json.RawMessage(`{}`)}})
	require.NoError(t, err)
	require.Len(t, other, 1)
	assert.Greater(t, other[0].Seq, first[2].Seq, "one sequence for the whole store")

	// Re-appending known keys stores nothing and returns nothing.
	clk.Set(t0.Add(time.Hour))
	again, err := s.Append(ctx, "trigger://a", []NewEvent{
		{Key: "d2", Payload: json.RawMessage(`{"id":"changed"}`)},
		{Key: "d4", Payload: json.RawMessage(`{"id":4}`)},
		{Key: "d1"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"d4"}, keysOf(again))
	assert.True(t, again[0].ReceivedAt.Equal(t0.Add(time.Hour)))

	none, err := s.Append(ctx, "trigger://a", newEvents("d", 1, 4))
	require.NoError(t, err)
	assert.Empty(t, none)

	stored := allEvents(t, s, "trigger://a")
	assert.Equal(t, append(first, again...), stored, "returned events are exactly what is stored")
	assert.JSONEq(t, `{"id":2}`, string(stored[1].Payload), "first payload kept")

	latest, err := s.LatestSeq(ctx, "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, again[0].Seq, latest)
	latest, err = s.LatestSeq(ctx, "trigger://missing")
	require.NoError(t, err)
	assert.Zero(t, latest)

	// Invalid input is rejected before anything is stored.
	_, err = s.Append(ctx, "trigger://a", []NewEvent{{Key: "ok"}, {Key: ""}})
	require.Error(t, err)
	_, err = s.Append(ctx, "trigger://a", []NewEvent{{Key: "ok"}, {Key: "bad", Payload: json.RawMessage(`{`)}})
	require.Error(t, err)
	assert.Len(t, allEvents(t, s, "trigger://a"), 4)

	// Inactive triggers still accept events (a late webhook delivery).
	require.NoError(t, s.DeactivateTrigger(ctx, "trigger://a"))
	late, err := s.Append(ctx, "trigger://a", newEvents("late", 0, 1))
	require.NoError(t, err)
	assert.Len(t, late, 1)
}

func TestAppendWithStateStoresBoth(t *testing.T) {
	s := openTest(t, Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://p")

	evs, err := s.AppendWithState(ctx, "trigger://p", newEvents("k", 0, 2), json.RawMessage(`{"hwm":2}`))
	require.NoError(t, err)
	require.Len(t, evs, 2)
	tr, _, err := s.Trigger(ctx, "trigger://p")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":2}`, string(tr.State))

	// No new events: the mark still moves.
	evs, err = s.AppendWithState(ctx, "trigger://p", newEvents("k", 0, 2), json.RawMessage(`{"hwm":5}`))
	require.NoError(t, err)
	assert.Empty(t, evs)
	tr, _, err = s.Trigger(ctx, "trigger://p")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":5}`, string(tr.State))

	// Nil state leaves it alone.
	_, err = s.AppendWithState(ctx, "trigger://p", newEvents("k", 2, 1), nil)
	require.NoError(t, err)
	tr, _, err = s.Trigger(ctx, "trigger://p")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":5}`, string(tr.State))

	_, err = s.AppendWithState(ctx, "trigger://p", newEvents("k", 3, 1), json.RawMessage(`{bad`))
	require.Error(t, err)
	_, err = s.AppendWithState(ctx, "trigger://missing", newEvents("k", 0, 1), json.RawMessage(`{}`))
	require.ErrorIs(t, err, ErrNotFound)
	assert.Len(t, allEvents(t, s, "trigger://p"), 3)
}

func TestAppendWithStateIsAtomic(t *testing.T) {
	s := openTest(t, Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://p")
	before, err := s.AppendWithState(ctx, "trigger://p", newEvents("k", 0, 3), json.RawMessage(`{"hwm":3}`))
	require.NoError(t, err)

	assertUnchanged := func(t *testing.T) {
		t.Helper()
		assert.Equal(t, before, allEvents(t, s, "trigger://p"))
		tr, _, err := s.Trigger(testCtx(t), "trigger://p")
		require.NoError(t, err)
		assert.JSONEq(t, `{"hwm":3}`, string(tr.State))
		latest, err := s.LatestSeq(testCtx(t), "trigger://p")
		require.NoError(t, err)
		assert.Equal(t, before[2].Seq, latest)
	}

	t.Run("failure after the events and the state were written", func(t *testing.T) {
		boom := errors.New("boom")
		s.beforeCommit = func(context.Context) error { return boom }
		t.Cleanup(func() { s.beforeCommit = nil })
		evs, err := s.AppendWithState(ctx, "trigger://p", newEvents("k", 2, 5), json.RawMessage(`{"hwm":7}`))
		require.ErrorIs(t, err, boom)
		assert.Nil(t, evs)
		assertUnchanged(t)
	})

	t.Run("context cancelled before commit", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s.beforeCommit = func(context.Context) error { cancel(); return nil }
		t.Cleanup(func() { s.beforeCommit = nil })
		evs, err := s.AppendWithState(cctx, "trigger://p", newEvents("k", 2, 5), json.RawMessage(`{"hwm":7}`))
		require.Error(t, err)
		assert.Nil(t, evs)
		assertUnchanged(t)
	})

	t.Run("context already cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.AppendWithState(cctx, "trigger://p", newEvents("k", 2, 5), json.RawMessage(`{"hwm":7}`))
		require.ErrorIs(t, err, context.Canceled)
		assertUnchanged(t)
	})

	// The writer is healthy afterwards, and the keys of the failed attempts
	// were not consumed by deduplication.
	evs, err := s.AppendWithState(ctx, "trigger://p", newEvents("k", 2, 5), json.RawMessage(`{"hwm":7}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"k3", "k4", "k5", "k6"}, keysOf(evs))
	assert.Greater(t, evs[0].Seq, before[2].Seq)
}

func TestEventsAfterPaging(t *testing.T) {
	s := openTest(t, Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")
	var want []Event
	for i := range 10 {
		a, err := s.Append(ctx, "trigger://a", newEvents("a", i*5, 5))
		require.NoError(t, err)
		want = append(want, a...)
		_, err = s.Append(ctx, "trigger://b", newEvents("b", i*3, 3))
		require.NoError(t, err)
	}

	var got []Event
	after := int64(0)
	pages := 0
	for {
		page, err := s.EventsAfter(ctx, "trigger://a", after, 7)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		assert.LessOrEqual(t, len(page), 7)
		got = append(got, page...)
		after = page[len(page)-1].Seq
		pages++
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 8, pages) // 50 events, 7 a page
	for i := 1; i < len(got); i++ {
		assert.Less(t, got[i-1].Seq, got[i].Seq)
	}

	// Starting in the middle, including at a seq belonging to another trigger.
	mid, err := s.EventsAfter(ctx, "trigger://a", want[24].Seq, 0)
	require.NoError(t, err)
	assert.Equal(t, want[25:], mid)
	mid, err = s.EventsAfter(ctx, "trigger://a", want[24].Seq+1, 0)
	require.NoError(t, err)
	assert.Equal(t, want[25:], mid)

	end, err := s.EventsAfter(ctx, "trigger://a", want[len(want)-1].Seq, 10)
	require.NoError(t, err)
	assert.Empty(t, end)
	unknown, err := s.EventsAfter(ctx, "trigger://missing", 0, 10)
	require.NoError(t, err)
	assert.Empty(t, unknown)
}

func TestCursorsNeverGoBackwards(t *testing.T) {
	s := openTest(t, Options{})
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
	require.Error(t, s.SetCursor(ctx, "alice", "trigger://a", -1))
	require.Error(t, s.SetCursor(ctx, "", "trigger://a", 1))
	require.ErrorIs(t, s.SetCursor(ctx, "alice", "trigger://missing", 0), ErrNotFound)

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
}

func TestReadAndAdvance(t *testing.T) {
	s := openTest(t, Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")

	got, err := s.ReadAndAdvance(ctx, "c", "trigger://a", 10)
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = s.ReadAndAdvance(ctx, "c", "trigger://missing", 10)
	require.ErrorIs(t, err, ErrNotFound)
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

	more, err := s.Append(ctx, "trigger://a", newEvents("k", 5, 2))
	require.NoError(t, err)
	got, err = s.ReadAndAdvance(ctx, "c", "trigger://a", 0)
	require.NoError(t, err)
	assert.Equal(t, append(evs[3:], more...), got)
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
}

func TestDurableAcrossCloseOpen(t *testing.T) {
	path := tempDBPath(t)
	ctx := testCtx(t)
	var want []Event
	for round := range 5 {
		s, err := Open(path, Options{RelaxedSync: round%2 == 1})
		require.NoError(t, err)
		if round == 0 {
			addTrigger(t, s, "trigger://a")
		}
		require.Equal(t, want, allEvents(t, s, "trigger://a"))
		evs, err := s.Append(ctx, "trigger://a", newEvents("k", round*10, 10))
		require.NoError(t, err)
		want = append(want, evs...)
		_, err = s.ReadAndAdvance(ctx, "reader", "trigger://a", 4)
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
	s := openAt(t, path, Options{})
	assert.Equal(t, want, allEvents(t, s, "trigger://a"))
	cur, err := s.Cursor(ctx, "reader", "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, want[19].Seq, cur, "five reads of four")
}

func TestPruneByAge(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, Options{Clock: clk, MaxAge: 30 * 24 * time.Hour})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")

	var all []Event
	for i, day := range []int{0, 10, 20} {
		clk.Set(t0.Add(time.Duration(day) * 24 * time.Hour))
		evs, err := s.Append(ctx, "trigger://a", newEvents("a", i*2, 2))
		require.NoError(t, err)
		all = append(all, evs...)
		_, err = s.Append(ctx, "trigger://b", newEvents("b", i, 1))
		require.NoError(t, err)
	}

	clk.Set(t0.Add(29 * 24 * time.Hour))
	removed, err := s.Prune(ctx)
	require.NoError(t, err)
	assert.Zero(t, removed)

	clk.Set(t0.Add(35 * 24 * time.Hour)) // cutoff: day 5
	removed, err = s.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, removed) // two of a, one of b from day 0
	assert.Equal(t, all[2:], allEvents(t, s, "trigger://a"))
	assert.Len(t, allEvents(t, s, "trigger://b"), 2)

	clk.Set(t0.Add(100 * 24 * time.Hour))
	removed, err = s.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, 6, removed)
	assert.Empty(t, allEvents(t, s, "trigger://a"))

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
}

func TestPruneByCount(t *testing.T) {
	s := openTest(t, Options{MaxEventsPerTrigger: 10})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")
	addTrigger(t, s, "trigger://empty")
	var a []Event
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

	// Negative limits disable pruning.
	s2 := openTest(t, Options{MaxEventsPerTrigger: -1, MaxAge: -1})
	addTrigger(t, s2, "trigger://a")
	_, err = s2.Append(ctx, "trigger://a", newEvents("a", 0, 20))
	require.NoError(t, err)
	removed, err = s2.Prune(ctx)
	require.NoError(t, err)
	assert.Zero(t, removed)
}

func TestAppendKeepsTheRawRecord(t *testing.T) {
	s := openTest(t, Options{Clock: clock.NewFake(t0)})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")

	added, err := s.Append(ctx, "trigger://a", []NewEvent{
		{Key: "shaped", Payload: json.RawMessage(`{"id":1,"stage_name":"Won"}`), Raw: json.RawMessage(`{"id":1,"stage_id":4}`)},
		{Key: "plain", Payload: json.RawMessage(`{"id":2}`)},
	})
	require.NoError(t, err)
	require.Len(t, added, 2)
	assert.JSONEq(t, `{"id":1,"stage_id":4}`, string(added[0].Raw))

	read, err := s.EventsAfter(ctx, "trigger://a", 0, 0)
	require.NoError(t, err)
	require.Len(t, read, 2)
	assert.JSONEq(t, `{"id":1,"stage_name":"Won"}`, string(read[0].Payload))
	assert.JSONEq(t, `{"id":1,"stage_id":4}`, string(read[0].Raw))
	assert.Nil(t, read[1].Raw, "an event stored without a raw record reads back without one")

	_, err = s.Append(ctx, "trigger://a", []NewEvent{{Key: "bad", Payload: json.RawMessage(`{}`), Raw: json.RawMessage(`{"cut`)}})
	require.ErrorContains(t, err, "raw record is not valid JSON")
	after, err := s.EventsAfter(ctx, "trigger://a", 0, 0)
	require.NoError(t, err)
	assert.Len(t, after, 2, "a refused batch stores nothing")
}
