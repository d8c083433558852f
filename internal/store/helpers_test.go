package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(at time.Time) *fakeClock { return &fakeClock{now: at} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
}

func tempDBPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "state", "state.db")
}

func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	return openAt(t, tempDBPath(t), opts)
}

func addTrigger(t testing.TB, s *Store, uri string) {
	t.Helper()
	require.NoError(t, s.UpsertTrigger(testCtx(t), Trigger{
		URI: uri, Kind: "test.kind", Params: json.RawMessage(`{"a":1}`), Active: true,
	}))
}

// newEvents returns events with keys prefix0..prefix(n-1).
func newEvents(prefix string, from, n int) []NewEvent {
	out := make([]NewEvent, n)
	for i := range out {
		k := fmt.Sprintf("%s%d", prefix, from+i)
		out[i] = NewEvent{Key: k, Payload: json.RawMessage(fmt.Sprintf(`{"key":%q}`, k))}
	}
	return out
}

func seqsOf(evs []Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func keysOf(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Key
	}
	return out
}

func allEvents(t testing.TB, s *Store, uri string) []Event {
	t.Helper()
	evs, err := s.EventsAfter(testCtx(t), uri, 0, 1<<30)
	require.NoError(t, err)
	return evs
}
