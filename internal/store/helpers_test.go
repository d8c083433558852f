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

// hangGuard bounds a test's context. It is not a time budget: it only turns a
// hung test into a failure well before the go test timeout, and no test comes
// near it even on a loaded machine.
const hangGuard = 5 * time.Minute

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// progress lets a reader that has caught up with a writer wait for its next
// commit instead of polling with sleeps (the crash test's helper process).
type progress struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every commit
}

func newProgress() *progress { return &progress{changed: make(chan struct{})} }

// committed tells the waiters that the writer has acknowledged more.
func (p *progress) committed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.changed)
	p.changed = make(chan struct{})
}

// next returns a channel that is closed at the writer's next commit. Take
// it before reading: a commit that lands during the read still wakes the
// reader.
func (p *progress) next() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
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
