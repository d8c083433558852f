package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

func (c *suite) triggersCRUD(t *testing.T) {
	clk := clock.NewFake(t0)
	s := c.open(t, store.Options{Clock: clk})
	ctx := testCtx(t)

	_, ok, err := s.Trigger(ctx, "trigger://missing")
	require.NoError(t, err)
	assert.False(t, ok)
	none, err := s.Triggers(ctx, false)
	require.NoError(t, err)
	assert.Empty(t, none)

	require.Error(t, s.UpsertTrigger(ctx, store.Trigger{Kind: "k"}), "empty URI")
	require.Error(t, s.UpsertTrigger(ctx, store.Trigger{URI: "trigger://a"}), "empty kind")
	require.Error(t, s.UpsertTrigger(ctx, store.Trigger{URI: "trigger://a", Kind: "k", Params: json.RawMessage(`{`)}), "bad params")
	require.Error(t, s.UpsertTrigger(ctx, store.Trigger{URI: "trigger://a", Kind: "k", State: json.RawMessage(`nope`)}), "bad state")
	_, ok, err = s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.False(t, ok, "a refused trigger is not stored")

	require.NoError(t, s.UpsertTrigger(ctx, store.Trigger{
		URI: "trigger://a", Kind: "pipedrive.new_deal", Params: json.RawMessage(`{"pipeline":1}`),
		State: json.RawMessage(`{"hwm":"2026-01-01"}`), Active: true,
	}))
	clk.Set(t0.Add(time.Minute))
	require.NoError(t, s.UpsertTrigger(ctx, store.Trigger{URI: "trigger://b", Kind: "workspan.event", Active: true}))

	a, ok, err := s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "trigger://a", a.URI)
	assert.Equal(t, "pipedrive.new_deal", a.Kind)
	assert.JSONEq(t, `{"pipeline":1}`, string(a.Params))
	assert.JSONEq(t, `{"hwm":"2026-01-01"}`, string(a.State))
	assert.True(t, a.Active)
	assert.Empty(t, a.Owner)
	assert.Nil(t, a.Credential)
	assert.True(t, a.CreatedAt.Equal(t0))
	assert.True(t, a.UpdatedAt.Equal(t0))

	b, _, err := s.Trigger(ctx, "trigger://b")
	require.NoError(t, err)
	assert.Nil(t, b.Params)
	assert.Nil(t, b.State)
	assert.True(t, b.CreatedAt.Equal(t0.Add(time.Minute)))

	// Re-registering without state keeps the stored state and CreatedAt.
	clk.Set(t0.Add(time.Hour))
	require.NoError(t, s.UpsertTrigger(ctx, store.Trigger{
		URI: "trigger://a", Kind: "pipedrive.new_deal", Params: json.RawMessage(`{"pipeline":2}`), Active: true,
		CreatedAt: t0.Add(-time.Hour), // ignored for an existing trigger
	}))
	a, _, err = s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"pipeline":2}`, string(a.Params))
	assert.JSONEq(t, `{"hwm":"2026-01-01"}`, string(a.State))
	assert.True(t, a.CreatedAt.Equal(t0))
	assert.True(t, a.UpdatedAt.Equal(t0.Add(time.Hour)))

	// A non-nil state replaces the stored one on upsert.
	require.NoError(t, s.UpsertTrigger(ctx, store.Trigger{
		URI: "trigger://a", Kind: "pipedrive.new_deal", Params: json.RawMessage(`{"pipeline":2}`),
		State: json.RawMessage(`{"hwm":"2026-01-15"}`), Active: true,
	}))
	a, _, err = s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":"2026-01-15"}`, string(a.State))

	require.NoError(t, s.SetTriggerState(ctx, "trigger://a", json.RawMessage(`{"hwm":"2026-02-01"}`)))
	a, _, err = s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":"2026-02-01"}`, string(a.State))
	require.ErrorIs(t, s.SetTriggerState(ctx, "trigger://missing", json.RawMessage(`{}`)), store.ErrNotFound)
	require.Error(t, s.SetTriggerState(ctx, "trigger://a", json.RawMessage(`nope`)))
	a, _, err = s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"hwm":"2026-02-01"}`, string(a.State), "a refused state changes nothing")

	clk.Set(t0.Add(2 * time.Hour))
	require.NoError(t, s.DeactivateTrigger(ctx, "trigger://b"))
	require.ErrorIs(t, s.DeactivateTrigger(ctx, "trigger://missing"), store.ErrNotFound)
	b, _, err = s.Trigger(ctx, "trigger://b")
	require.NoError(t, err)
	assert.False(t, b.Active)
	assert.True(t, b.UpdatedAt.Equal(t0.Add(2*time.Hour)))

	all, err := s.Triggers(ctx, false)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, "trigger://a", all[0].URI, "oldest first")
	assert.Equal(t, "trigger://b", all[1].URI)
	assert.False(t, all[1].Active)

	active, err := s.Triggers(ctx, true)
	require.NoError(t, err)
	require.Len(t, active, 1)
	assert.Equal(t, "trigger://a", active[0].URI)

	// Reactivating via upsert.
	require.NoError(t, s.UpsertTrigger(ctx, store.Trigger{URI: "trigger://b", Kind: "workspan.event", Active: true}))
	active, err = s.Triggers(ctx, true)
	require.NoError(t, err)
	assert.Len(t, active, 2)

	// Clearing state.
	require.NoError(t, s.SetTriggerState(ctx, "trigger://a", nil))
	a, _, err = s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.Nil(t, a.State)

	// Owner and sealed credential round-trip and are replaced by an upsert;
	// an explicit CreatedAt is kept on creation.
	created := t0.Add(-24 * time.Hour)
	require.NoError(t, s.UpsertTrigger(ctx, store.Trigger{
		URI: "trigger://owned", Kind: "k", Owner: "alice", Credential: []byte{0, 1, 2, 0xff}, Active: true,
		CreatedAt: created,
	}))
	o, ok, err := s.Trigger(ctx, "trigger://owned")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "alice", o.Owner)
	assert.Equal(t, []byte{0, 1, 2, 0xff}, o.Credential)
	assert.True(t, o.CreatedAt.Equal(created))
	all, err = s.Triggers(ctx, false)
	require.NoError(t, err)
	require.Len(t, all, 3)
	assert.Equal(t, "trigger://owned", all[0].URI, "ordered by CreatedAt")
	require.NoError(t, s.UpsertTrigger(ctx, store.Trigger{URI: "trigger://owned", Kind: "k", Owner: "bob", Active: true}))
	o, _, err = s.Trigger(ctx, "trigger://owned")
	require.NoError(t, err)
	assert.Equal(t, "bob", o.Owner)
	assert.Nil(t, o.Credential)
}

// notFound checks how every operation treats a trigger that is not there.
func (c *suite) notFound(t *testing.T) {
	s := c.open(t, store.Options{})
	ctx := testCtx(t)
	const missing = "trigger://missing"
	addTrigger(t, s, "trigger://present")

	_, ok, err := s.Trigger(ctx, missing)
	require.NoError(t, err)
	assert.False(t, ok)

	_, err = s.Append(ctx, missing, newEvents("k", 0, 1))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Append(ctx, missing, nil)
	require.ErrorIs(t, err, store.ErrNotFound, "even with no events")
	_, err = s.AppendWithState(ctx, missing, newEvents("k", 0, 1), json.RawMessage(`{}`))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.SetTriggerState(ctx, missing, json.RawMessage(`{}`)), store.ErrNotFound)
	require.ErrorIs(t, s.DeactivateTrigger(ctx, missing), store.ErrNotFound)
	require.ErrorIs(t, s.SetCursor(ctx, "c", missing, 0), store.ErrNotFound)
	_, err = s.ReadAndAdvance(ctx, "c", missing, 10)
	require.ErrorIs(t, err, store.ErrNotFound)

	// Reads of a missing trigger are empty, not errors.
	evs, err := s.EventsAfter(ctx, missing, 0, 10)
	require.NoError(t, err)
	assert.Empty(t, evs)
	latest, err := s.LatestSeq(ctx, missing)
	require.NoError(t, err)
	assert.Zero(t, latest)
	cur, err := s.Cursor(ctx, "c", missing)
	require.NoError(t, err)
	assert.Zero(t, cur)

	// Nothing was created along the way.
	all, err := s.Triggers(ctx, false)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "trigger://present", all[0].URI)

	// Errors other than a missing trigger do not claim it is missing.
	_, err = s.Append(ctx, "trigger://present", []store.NewEvent{{Key: ""}})
	require.Error(t, err)
	assert.NotErrorIs(t, err, store.ErrNotFound)
}
