package throttle

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

func newFakeRegistry(cfg Config, opts ...RegistryOption) (*Registry, *clock.Fake) {
	fc := clock.NewFake(t0)
	cfg.Clock = fc
	return NewRegistry(cfg, opts...), fc
}

func mustGet(t *testing.T, r *Registry, connection string) *Budget {
	t.Helper()
	b, err := r.Get(connection)
	require.NoError(t, err, connection)
	return b
}

func held(r *Registry) []string {
	var out []string
	for _, st := range r.Statuses() {
		out = append(out, st.Connection)
	}
	return out
}

func TestCallerConnection(t *testing.T) {
	c, ok := CallerConnection("pipedrive:0123456789ab")
	assert.True(t, ok)
	assert.Equal(t, "pipedrive", c)
	_, ok = CallerConnection("pipedrive")
	assert.False(t, ok)
}

// issue finding 5: per-credential state bounded — a caller's budget unused
// for the idle TTL, with no grant for as long, is dropped; the server's own
// connections never are.
func TestRegistryDropsIdleCallerBudgets(t *testing.T) {
	r, fc := newFakeRegistry(Config{Limit: 5, Window: time.Minute}, WithIdleTTL(10*time.Minute))
	mustGet(t, r, "pipedrive")
	a := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	require.NoError(t, a.Acquire(context.Background()))
	fc.Advance(time.Minute)
	mustGet(t, r, "pipedrive:bbbbbbbbbbbb")

	fc.Advance(9*time.Minute - time.Second)
	assert.Equal(t, []string{"pipedrive", "pipedrive:aaaaaaaaaaaa", "pipedrive:bbbbbbbbbbbb"}, held(r))

	fc.Advance(time.Second) // a: 10 min since its use and its grant
	assert.Equal(t, []string{"pipedrive", "pipedrive:bbbbbbbbbbbb"}, held(r))

	fc.Advance(time.Hour)
	assert.Equal(t, []string{"pipedrive"}, held(r), "the server's own budget is never dropped")
	st := r.Stats()
	assert.Equal(t, RegistryStats{Own: 1, Callers: 0, Max: DefaultMaxConnections, Evicted: 2}, st)
}

// A budget used through a pointer captured earlier (an upstream client's
// transport) keeps granting without asking the Registry; its grants keep it.
func TestRegistryKeepsBudgetGrantingThroughCapturedPointer(t *testing.T) {
	r, fc := newFakeRegistry(Config{Limit: 5, Window: time.Minute}, WithIdleTTL(10*time.Minute))
	a := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	for range 3 {
		fc.Advance(4 * time.Minute)
		require.NoError(t, a.Acquire(context.Background()))
	}
	assert.Equal(t, []string{"pipedrive:aaaaaaaaaaaa"}, held(r))
	fc.Advance(10 * time.Minute)
	assert.Empty(t, held(r))
}

// issue finding 5: a budget someone waits on, or that an upstream pause
// holds, is not dropped however long since its last grant.
func TestRegistryKeepsBusyBudgets(t *testing.T) {
	r, fc := newFakeRegistry(Config{Limit: 1, Window: time.Minute, MaxWait: -1}, WithIdleTTL(10*time.Minute))
	paused := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	paused.PauseFor(30 * time.Minute)
	waited := mustGet(t, r, "pipedrive:bbbbbbbbbbbb")
	waited.PauseFor(time.Hour)
	ctx, cancel := context.WithCancel(WithPriority(context.Background(), Background))
	defer cancel()
	ch := acquireAsync(t, ctx, waited)
	requireWaiting(t, waited, 1)

	fc.Advance(20 * time.Minute)
	assert.Equal(t, []string{"pipedrive:aaaaaaaaaaaa", "pipedrive:bbbbbbbbbbbb"}, held(r))
	fc.Advance(20 * time.Minute) // a's pause is over; both unused since
	assert.Equal(t, []string{"pipedrive:bbbbbbbbbbbb"}, held(r))
	cancel()
	require.ErrorIs(t, receive(t, ch), context.Canceled)
	fc.Advance(time.Hour) // the pause ends; nobody waits any more
	assert.Empty(t, held(r))
}

// When full, a new caller connection takes the place of the least recently
// used droppable one.
func TestRegistryFullDropsLeastRecentlyUsedIdle(t *testing.T) {
	r, fc := newFakeRegistry(Config{Limit: 5, Window: time.Minute}, WithMaxConnections(3))
	mustGet(t, r, "pipedrive")
	for _, c := range []string{"a", "b", "c"} {
		mustGet(t, r, "pipedrive:"+c)
		fc.Advance(time.Second)
	}
	mustGet(t, r, "pipedrive:a") // a is now the most recently used
	mustGet(t, r, "pipedrive:d")
	assert.Equal(t, []string{"pipedrive", "pipedrive:a", "pipedrive:c", "pipedrive:d"}, held(r))
	assert.Equal(t, uint64(1), r.Stats().Evicted)
}

// issue finding 5: per-credential state bounded — a budget whose window
// still holds grants is never dropped, however many new credentials press
// for room: they are refused, and the limit of the active connection holds.
func TestRegistryNeverDropsBudgetWithGrantsInWindow(t *testing.T) {
	r, fc := newFakeRegistry(Config{Limit: 3, Window: time.Minute, MaxWait: -1}, WithMaxConnections(2))
	a := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	for range 3 {
		require.NoError(t, a.Acquire(context.Background()))
	}
	b := mustGet(t, r, "pipedrive:bbbbbbbbbbbb")
	require.NoError(t, b.Acquire(context.Background()))

	for i := range 1000 {
		_, err := r.Get(fmt.Sprintf("pipedrive:%012x", 0xc000+i))
		require.ErrorIs(t, err, ErrTooManyConnections)
		var full *ConnectionsFullError
		require.ErrorAs(t, err, &full)
		assert.Equal(t, 2, full.Max)
		assert.Equal(t, 120, full.RetryAfterSeconds(), "until the grants are two windows old")
		assert.NotContains(t, err.Error(), "pipedrive:", "the error names no connection")
	}
	st := r.Stats()
	assert.Equal(t, 2, st.Callers)
	assert.Equal(t, uint64(1000), st.Refused)
	assert.Zero(t, st.Evicted)

	again := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	assert.Same(t, a, again, "the active budget is kept")
	var thr *ThrottledError
	require.ErrorAs(t, again.Acquire(context.Background()), &thr, "its limit still holds")

	// The own connections are never refused.
	mustGet(t, r, "partnercenter")

	// Budget never refuses: it holds the newcomer beyond the cap.
	over := r.Budget("pipedrive:dddddddddddd")
	require.NotNil(t, over)
	assert.Equal(t, 3, r.Stats().Callers)
	assert.Equal(t, uint64(1), r.Stats().Overflows)

	fc.Advance(2 * time.Minute) // every grant is two windows old
	mustGet(t, r, "pipedrive:eeeeeeeeeeee")
	assert.LessOrEqual(t, r.Stats().Callers, 3)
}

// A dropped budget that is still referenced (by an upstream client) is
// handed out again rather than replaced: a connection never has two live
// budgets, so grants made through the old pointer still count.
func TestRegistryReadoptsReferencedBudget(t *testing.T) {
	r, fc := newFakeRegistry(Config{Limit: 2, Window: time.Minute, MaxWait: -1}, WithMaxConnections(1))
	a := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	require.NoError(t, a.Acquire(context.Background()))
	fc.Advance(2 * time.Minute)
	mustGet(t, r, "pipedrive:bbbbbbbbbbbb") // a was droppable: dropped
	assert.Equal(t, []string{"pipedrive:bbbbbbbbbbbb"}, held(r))

	require.NoError(t, a.Acquire(context.Background())) // through the captured pointer
	require.NoError(t, a.Acquire(context.Background()))
	assert.Same(t, a, r.Lookup("pipedrive:aaaaaaaaaaaa"))
	again := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	assert.Same(t, a, again)
	var thr *ThrottledError
	require.ErrorAs(t, again.Acquire(context.Background()), &thr)
	assert.Equal(t, []string{"pipedrive:aaaaaaaaaaaa"}, held(r), "b, idle, made room")
	runtime.KeepAlive(a)
}

// A dropped budget nobody references is reclaimed, and its entry with it.
func TestRegistryForgetsCollectedBudgets(t *testing.T) {
	r, fc := newFakeRegistry(Config{Window: time.Minute}, WithMaxConnections(10))
	for i := range 100 {
		mustGet(t, r, fmt.Sprintf("pipedrive:%012x", i))
		fc.Advance(time.Second)
	}
	assert.Equal(t, 10, r.Stats().Callers)
	entries := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.callers)
	}
	// The runtime runs cleanups after a collection; each round is a
	// collection, not a timed wait.
	for range 100 {
		if entries() == 10 {
			break
		}
		runtime.GC()
		runtime.Gosched()
	}
	assert.Equal(t, 10, entries())
}

// Lookup and Status never create a budget, so a refused call leaves none.
func TestRegistryLookupCreatesNothing(t *testing.T) {
	r, _ := newFakeRegistry(Config{Limit: 7, Window: time.Minute})
	assert.Nil(t, r.Lookup("pipedrive:aaaaaaaaaaaa"))
	assert.Nil(t, r.Lookup("pipedrive"))
	st := r.Status("pipedrive:aaaaaaaaaaaa")
	assert.Equal(t, 7, st.Limit)
	assert.Equal(t, 7, st.Remaining)
	assert.Equal(t, "pipedrive:aaaaaaaaaaaa", st.Connection)
	assert.Empty(t, r.Statuses())

	b := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	require.NoError(t, b.Acquire(context.Background()))
	assert.Equal(t, 1, r.Status("pipedrive:aaaaaaaaaaaa").Used)
}

// issue finding 5: 20,000 distinct credentials, each spending once, leave at
// most the cap of budgets — refused once the cap is active, bounded by
// eviction when the flood is slow enough for budgets to go quiet.
func TestRegistryBoundedUnderCredentialFlood(t *testing.T) {
	for _, step := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(fmt.Sprint("every ", step), func(t *testing.T) {
			r, fc := newFakeRegistry(Config{Window: time.Minute}, WithMaxConnections(1000))
			refused := 0
			for i := range 20000 {
				b, err := r.Get(fmt.Sprintf("pipedrive:%012x", i))
				if errors.Is(err, ErrTooManyConnections) {
					refused++
				} else {
					require.NoError(t, err)
					require.NoError(t, b.Acquire(context.Background()))
				}
				require.LessOrEqual(t, r.Stats().Callers, 1000)
				fc.Advance(step)
			}
			st := r.Stats()
			t.Logf("held %d, evicted %d, refused %d", st.Callers, st.Evicted, st.Refused)
			assert.Equal(t, refused, int(st.Refused))
			if step == 0 {
				assert.Equal(t, 19000, refused)
			} else {
				assert.Zero(t, refused)
				assert.Equal(t, 20000-st.Callers, int(st.Evicted))
			}
		})
	}
}
