package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

func (c *suite) appendDedupAndOrder(t *testing.T) {
	clk := clock.NewFake(t0)
	s := c.open(t, store.Options{Clock: clk})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")

	first, err := s.Append(ctx, "trigger://a", []store.NewEvent{
		{Key: "d1", Payload: json.RawMessage(`{"id":1}`)},
		{Key: "d2", Payload: json.RawMessage(`{"id":2}`)},
		{Key: "d1", Payload: json.RawMessage(`{"id":"dup in batch"}`)},
		{Key: "d3"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"d1", "d2", "d3"}, keysOf(first))
	assert.Positive(t, first[0].Seq)
	assert.Less(t, first[0].Seq, first[1].Seq)
	assert.Less(t, first[1].Seq, first[2].Seq)
	assert.JSONEq(t, `{"id":1}`, string(first[0].Payload), "the first of a batch's duplicates wins")
	assert.Equal(t, "null", string(first[2].Payload), "an empty payload is JSON null")
	for _, e := range first {
		assert.Equal(t, "trigger://a", e.TriggerURI)
		assert.True(t, e.ReceivedAt.Equal(t0))
	}

	// The same key on another trigger is a different event.
	other, err := s.Append(ctx, "trigger://b", []store.NewEvent{{Key: "d1", Payload: json.RawMessage(`{}`)}})
	require.NoError(t, err)
	require.Len(t, other, 1)
	assert.Equal(t, "trigger://b", other[0].TriggerURI)
	assert.Positive(t, other[0].Seq)

	// Re-appending known keys stores nothing and returns nothing.
	clk.Set(t0.Add(time.Hour))
	again, err := s.Append(ctx, "trigger://a", []store.NewEvent{
		{Key: "d2", Payload: json.RawMessage(`{"id":"changed"}`)},
		{Key: "d4", Payload: json.RawMessage(`{"id":4}`)},
		{Key: "d1"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"d4"}, keysOf(again))
	assert.True(t, again[0].ReceivedAt.Equal(t0.Add(time.Hour)))
	assert.Greater(t, again[0].Seq, first[2].Seq)

	none, err := s.Append(ctx, "trigger://a", newEvents("d", 1, 4))
	require.NoError(t, err)
	assert.Empty(t, none)
	empty, err := s.Append(ctx, "trigger://a", nil)
	require.NoError(t, err)
	assert.Empty(t, empty)

	stored := allEvents(t, s, "trigger://a")
	assert.Equal(t, append(append([]store.Event(nil), first...), again...), stored, "returned events are exactly what is stored")
	assert.JSONEq(t, `{"id":2}`, string(stored[1].Payload), "first payload kept")
	assert.Equal(t, other, allEvents(t, s, "trigger://b"))

	latest, err := s.LatestSeq(ctx, "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, again[0].Seq, latest)
	latest, err = s.LatestSeq(ctx, "trigger://b")
	require.NoError(t, err)
	assert.Equal(t, other[0].Seq, latest)

	// Invalid input is rejected before anything is stored.
	_, err = s.Append(ctx, "trigger://a", []store.NewEvent{{Key: "ok"}, {Key: ""}})
	require.Error(t, err)
	_, err = s.Append(ctx, "trigger://a", []store.NewEvent{{Key: "ok"}, {Key: "bad", Payload: json.RawMessage(`{`)}})
	require.Error(t, err)
	assert.Len(t, allEvents(t, s, "trigger://a"), 4)
	latest, err = s.LatestSeq(ctx, "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, again[0].Seq, latest, "a refused batch does not move LatestSeq")

	// Inactive triggers still accept events (a late webhook delivery).
	require.NoError(t, s.DeactivateTrigger(ctx, "trigger://a"))
	late, err := s.Append(ctx, "trigger://a", newEvents("late", 0, 1))
	require.NoError(t, err)
	require.Len(t, late, 1)
	assert.Greater(t, late[0].Seq, again[0].Seq)
}

func (c *suite) appendWithStateStoresBoth(t *testing.T) {
	s := c.open(t, store.Options{})
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

	// No events at all: the mark still moves.
	evs, err = s.AppendWithState(ctx, "trigger://p", nil, json.RawMessage(`{"hwm":6}`))
	require.NoError(t, err)
	assert.Empty(t, evs)
	tr, _, err = s.Trigger(ctx, "trigger://p")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":6}`, string(tr.State))

	// Nil state leaves it alone.
	_, err = s.AppendWithState(ctx, "trigger://p", newEvents("k", 2, 1), nil)
	require.NoError(t, err)
	tr, _, err = s.Trigger(ctx, "trigger://p")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":6}`, string(tr.State))

	_, err = s.AppendWithState(ctx, "trigger://p", newEvents("k", 3, 1), json.RawMessage(`{bad`))
	require.Error(t, err)
	_, err = s.AppendWithState(ctx, "trigger://missing", newEvents("k", 0, 1), json.RawMessage(`{}`))
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Len(t, allEvents(t, s, "trigger://p"), 3)
	tr, _, err = s.Trigger(ctx, "trigger://p")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":6}`, string(tr.State))
}

func (c *suite) appendWithStateIsAtomic(t *testing.T) {
	s := c.open(t, store.Options{})
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

	t.Run("invalid event after valid ones", func(t *testing.T) {
		batch := append(newEvents("k", 2, 5), store.NewEvent{Key: "bad", Raw: json.RawMessage(`{`)})
		evs, err := s.AppendWithState(ctx, "trigger://p", batch, json.RawMessage(`{"hwm":7}`))
		require.Error(t, err)
		assert.Nil(t, evs)
		assertUnchanged(t)
	})

	t.Run("failure after the events and the state were written", func(t *testing.T) {
		if c.beforeCommit == nil {
			t.Skip("the store offers no hook to fail a transaction before commit")
		}
		boom := errors.New("boom")
		c.beforeCommit(s, func(context.Context) error { return boom })
		t.Cleanup(func() { c.beforeCommit(s, nil) })
		evs, err := s.AppendWithState(ctx, "trigger://p", newEvents("k", 2, 5), json.RawMessage(`{"hwm":7}`))
		require.ErrorIs(t, err, boom)
		assert.Nil(t, evs)
		assertUnchanged(t)
	})

	t.Run("context cancelled before commit", func(t *testing.T) {
		if c.beforeCommit == nil {
			t.Skip("the store offers no hook to fail a transaction before commit")
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c.beforeCommit(s, func(context.Context) error { cancel(); return nil })
		t.Cleanup(func() { c.beforeCommit(s, nil) })
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

	// The store is healthy afterwards, and the keys of the failed attempts
	// were not consumed by deduplication.
	evs, err := s.AppendWithState(ctx, "trigger://p", newEvents("k", 2, 5), json.RawMessage(`{"hwm":7}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"k3", "k4", "k5", "k6"}, keysOf(evs))
	assert.Greater(t, evs[0].Seq, before[2].Seq)
	tr, _, err := s.Trigger(ctx, "trigger://p")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":7}`, string(tr.State))
}

// rawRecordAndBytes checks the raw record round trip and that payloads come
// back byte for byte.
func (c *suite) rawRecordAndBytes(t *testing.T) {
	s := c.open(t, store.Options{Clock: clock.NewFake(t0)})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")

	added, err := s.Append(ctx, "trigger://a", []store.NewEvent{
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
	assert.Nil(t, added[1].Raw)

	_, err = s.Append(ctx, "trigger://a", []store.NewEvent{{Key: "bad", Payload: json.RawMessage(`{}`), Raw: json.RawMessage(`{"cut`)}})
	require.ErrorContains(t, err, "raw record is not valid JSON")
	after, err := s.EventsAfter(ctx, "trigger://a", 0, 0)
	require.NoError(t, err)
	assert.Len(t, after, 2, "a refused batch stores nothing")

	// Payloads, raw records, params and state keep their bytes: spacing,
	// key order, number spelling and escapes.
	const (
		payload = "{ \"b\" : [1, 2.50, 1e3],\n  \"a\": \"\\u00e9\\n\", \"c\":\"é 日本 🙂\" }"
		raw     = "[ {\"z\":null} , true ]"
		state   = "{\"hwm\" : \"2026-03-01T12:00:00Z\" }"
	)
	exact, err := s.AppendWithState(ctx, "trigger://a", []store.NewEvent{
		{Key: "exact", Payload: json.RawMessage(payload), Raw: json.RawMessage(raw)},
	}, json.RawMessage(state))
	require.NoError(t, err)
	require.Len(t, exact, 1)
	got, err := s.EventsAfter(ctx, "trigger://a", added[1].Seq, 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, payload, string(got[0].Payload))
	assert.Equal(t, raw, string(got[0].Raw))
	assert.Equal(t, exact, got)
	tr, _, err := s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, state, string(tr.State))
	assert.Equal(t, `{"a":1}`, string(tr.Params))

	// Bytes that are not UTF-8 inside a JSON string are valid JSON to
	// encoding/json; whatever a store keeps, they decode to the same value.
	odd := []byte("{\"name\":\"caf\xe9 \xff\xfe ok\"}")
	require.True(t, json.Valid(odd))
	_, err = s.Append(ctx, "trigger://a", []store.NewEvent{{Key: "odd", Payload: odd, Raw: odd}})
	require.NoError(t, err)
	got, err = s.EventsAfter(ctx, "trigger://a", exact[0].Seq, 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	var want, back, backRaw any
	require.NoError(t, json.Unmarshal(odd, &want))
	require.NoError(t, json.Unmarshal(got[0].Payload, &back))
	require.NoError(t, json.Unmarshal(got[0].Raw, &backRaw))
	assert.Equal(t, want, back)
	assert.Equal(t, want, backRaw)
}

func (c *suite) eventsAfterPaging(t *testing.T) {
	s := c.open(t, store.Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")
	var want []store.Event
	for i := range 10 {
		a, err := s.Append(ctx, "trigger://a", newEvents("a", i*5, 5))
		require.NoError(t, err)
		want = append(want, a...)
		_, err = s.Append(ctx, "trigger://b", newEvents("b", i*3, 3))
		require.NoError(t, err)
	}

	var got []store.Event
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

	// Starting in the middle; a limit of zero or less means DefaultLimit.
	mid, err := s.EventsAfter(ctx, "trigger://a", want[24].Seq, 0)
	require.NoError(t, err)
	assert.Equal(t, want[25:], mid)
	mid, err = s.EventsAfter(ctx, "trigger://a", want[24].Seq, -1)
	require.NoError(t, err)
	assert.Equal(t, want[25:], mid)
	one, err := s.EventsAfter(ctx, "trigger://a", want[24].Seq, 1)
	require.NoError(t, err)
	assert.Equal(t, want[25:26], one)

	end, err := s.EventsAfter(ctx, "trigger://a", want[len(want)-1].Seq, 10)
	require.NoError(t, err)
	assert.Empty(t, end)
	unknown, err := s.EventsAfter(ctx, "trigger://missing", 0, 10)
	require.NoError(t, err)
	assert.Empty(t, unknown)

	// DefaultLimit bounds a page.
	addTrigger(t, s, "trigger://big")
	_, err = s.Append(ctx, "trigger://big", newEvents("x", 0, store.DefaultLimit+5))
	require.NoError(t, err)
	page, err := s.EventsAfter(ctx, "trigger://big", 0, 0)
	require.NoError(t, err)
	assert.Len(t, page, store.DefaultLimit)
	rest, err := s.EventsAfter(ctx, "trigger://big", page[len(page)-1].Seq, 0)
	require.NoError(t, err)
	assert.Len(t, rest, 5)
}
