// Package storetest is a behaviour suite shared by the implementations of
// the trigger, event and cursor store: the SQLite store (package store) and
// the PostgreSQL one (package pgstore). Each runs it from its tests with Run.
//
// The suite checks what callers may rely on whichever store they have. What
// differs by design stays out: the SQLite store's store-wide sequence (the
// PostgreSQL store numbers each trigger's events on their own), files, WAL
// settings and crash behaviour are tested by each store's own tests.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// StoreAPI is the method set both stores implement.
type StoreAPI = store.Backend

// Opener opens a fresh, empty store for t with opts; the store is closed
// when t ends (the suite also closes it).
type Opener func(t *testing.T, opts store.Options) StoreAPI

// Option adds an implementation's capabilities to the suite.
type Option func(*config)

type config struct {
	replica      func(t *testing.T, of StoreAPI, opts store.Options) StoreAPI
	beforeCommit func(s StoreAPI, hook func(ctx context.Context) error)
}

// WithReplicas tells the suite how to open another instance on the data of
// store of (as another server replica would), opened with the same opts and
// closed when t ends. The concurrency tests then spread their goroutines
// over several instances. Without it they share one instance.
func WithReplicas(open func(t *testing.T, of StoreAPI, opts store.Options) StoreAPI) Option {
	return func(c *config) { c.replica = open }
}

// WithBeforeCommit tells the suite how to make s run hook inside each append
// transaction just before it commits (hook nil: stop); an error from hook
// must abort the transaction. Without it the suite cannot fail an append
// midway and skips those cases.
func WithBeforeCommit(set func(s StoreAPI, hook func(ctx context.Context) error)) Option {
	return func(c *config) { c.beforeCommit = set }
}

// Run runs the suite as subtests of t, each on stores from open.
func Run(t *testing.T, open Opener, options ...Option) {
	s := &suite{}
	for _, o := range options {
		o(&s.config)
	}
	s.open = func(t *testing.T, opts store.Options) StoreAPI {
		t.Helper()
		st := open(t, opts)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"TriggersCRUD", s.triggersCRUD},
		{"NotFound", s.notFound},
		{"AppendDedupAndOrder", s.appendDedupAndOrder},
		{"AppendWithStateStoresBoth", s.appendWithStateStoresBoth},
		{"AppendWithStateIsAtomic", s.appendWithStateIsAtomic},
		{"RawRecordAndBytes", s.rawRecordAndBytes},
		{"EventsAfterPaging", s.eventsAfterPaging},
		{"CursorsNeverGoBackwards", s.cursorsNeverGoBackwards},
		{"ConcurrentSetCursor", s.concurrentSetCursor},
		{"ReadAndAdvance", s.readAndAdvance},
		{"ReadAndAdvanceExactlyOnce", s.readAndAdvanceExactlyOnce},
		{"ConcurrentReadersWhileWriting", s.concurrentReadersWhileWriting},
		{"ConcurrentAppendersWhileReading", s.concurrentAppendersWhileReading},
		{"PruneByAge", s.pruneByAge},
		{"PruneByCount", s.pruneByCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	config
	open Opener
}

// instances returns n handles on the data of s: s itself, then replicas
// (or s again when the implementation has none).
func (c *suite) instances(t *testing.T, s StoreAPI, opts store.Options, n int) []StoreAPI {
	t.Helper()
	out := []StoreAPI{s}
	for len(out) < n {
		if c.replica == nil {
			out = append(out, s)
			continue
		}
		r := c.replica(t, s, opts)
		t.Cleanup(func() { _ = r.Close() })
		out = append(out, r)
	}
	return out
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// hangGuard bounds a test's context. It is not a time budget: it only turns
// a hung test into a failure well before the go test timeout.
const hangGuard = 5 * time.Minute

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

func addTrigger(t testing.TB, s StoreAPI, uri string) {
	t.Helper()
	require.NoError(t, s.UpsertTrigger(testCtx(t), store.Trigger{
		URI: uri, Kind: "test.kind", Params: json.RawMessage(`{"a":1}`), Active: true,
	}))
}

// newEvents returns events with keys prefix<from>..prefix<from+n-1>.
func newEvents(prefix string, from, n int) []store.NewEvent {
	out := make([]store.NewEvent, n)
	for i := range out {
		k := fmt.Sprintf("%s%d", prefix, from+i)
		out[i] = store.NewEvent{Key: k, Payload: json.RawMessage(fmt.Sprintf(`{"key":%q}`, k))}
	}
	return out
}

func seqsOf(evs []store.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func keysOf(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Key
	}
	return out
}

func allEvents(t testing.TB, s StoreAPI, uri string) []store.Event {
	t.Helper()
	evs, err := s.EventsAfter(testCtx(t), uri, 0, 1<<30)
	require.NoError(t, err)
	return evs
}

// Progress lets goroutines that have caught up with writers wait for their
// next commit (or notice) instead of polling with sleeps.
type Progress struct {
	mu      sync.Mutex
	done    bool
	changed chan struct{} // closed and replaced at every commit and at Finish
}

// NewProgress returns a Progress with nothing committed yet.
func NewProgress() *Progress { return &Progress{changed: make(chan struct{})} }

// Committed tells the waiters that a writer has acknowledged more.
func (p *Progress) Committed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.changed)
	p.changed = make(chan struct{})
}

// Finish tells the waiters that the writers will commit nothing more.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	close(p.changed)
	p.changed = make(chan struct{})
}

// State reports whether the writers have finished and returns a channel that
// is closed at their next commit (or Finish). Take it before reading: a
// commit that lands during the read then still wakes the reader.
func (p *Progress) State() (done bool, next <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.changed
}

// Wait blocks until next is closed, or ctx is done (it then returns false).
func Wait(ctx context.Context, next <-chan struct{}) bool {
	select {
	case <-next:
		return true
	case <-ctx.Done():
		return false
	}
}
