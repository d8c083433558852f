package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

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

// The SQLite store numbers events in one sequence for the whole store (the
// shared suite checks the per-trigger rules every store keeps).
func TestOneSequenceForTheWholeStore(t *testing.T) {
	s := openTest(t, Options{Clock: clock.NewFake(t0)})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")
	first, err := s.Append(ctx, "trigger://a", newEvents("k", 0, 3))
	require.NoError(t, err)
	other, err := s.Append(ctx, "trigger://b", []NewEvent{{Key: "k0", Payload: json.RawMessage(`{}`)}})
	require.NoError(t, err)
	require.Len(t, other, 1)
	assert.Greater(t, other[0].Seq, first[2].Seq, "one sequence for the whole store")
}
