package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var _ storetest.StoreAPI = (*Store)(nil)

// hangGuard bounds a test's context. It is not a time budget: it only turns
// a hung test into a failure well before the go test timeout.
const hangGuard = 5 * time.Minute

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

func openDSN(t testing.TB, dsn string, opts store.Options) *Store {
	t.Helper()
	s, err := Open(testCtx(t), dsn, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newTestDB returns the DSN of a fresh database for t.
func newTestDB(t testing.TB) string {
	t.Helper()
	return pgtest.Start(t)
}

func addTrigger(t testing.TB, s *Store, uri string) {
	t.Helper()
	require.NoError(t, s.UpsertTrigger(testCtx(t), store.Trigger{URI: uri, Kind: "test.kind", Active: true}))
}

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

func allEvents(t testing.TB, s *Store, uri string) []store.Event {
	t.Helper()
	evs, err := s.EventsAfter(testCtx(t), uri, 0, 1<<30)
	require.NoError(t, err)
	return evs
}

// TestSuite runs the behaviour suite shared with the SQLite store, each
// store on a fresh database, with replicas opened on the same database.
func TestSuite(t *testing.T) {
	var dsns sync.Map // StoreAPI → DSN
	storetest.Run(t,
		func(t *testing.T, opts store.Options) storetest.StoreAPI {
			dsn := newTestDB(t)
			s := openDSN(t, dsn, opts)
			dsns.Store(storetest.StoreAPI(s), dsn)
			return s
		},
		storetest.WithReplicas(func(t *testing.T, of storetest.StoreAPI, opts store.Options) storetest.StoreAPI {
			dsn, ok := dsns.Load(of)
			require.True(t, ok, "replica of a store the suite did not open")
			return openDSN(t, dsn.(string), opts)
		}),
		storetest.WithBeforeCommit(func(s storetest.StoreAPI, hook func(context.Context) error) {
			s.(*Store).beforeCommit = hook
		}),
	)
}

func migrationCount(t *testing.T, dsn string) (rows int, max int) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), COALESCE(max(version), 0) FROM schema_migrations`).Scan(&rows, &max))
	return rows, max
}

// TestOpenConcurrentlyMigratesOnce opens several replicas on a fresh
// database at the same moment: all succeed, and each migration is recorded
// once.
func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	dsn := newTestDB(t)
	const n = 6
	for round := range 2 { // a fresh database, then an up-to-date one
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			stores = make([]*Store, n)
			errs   = make([]error, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				stores[i], errs[i] = Open(testCtx(t), dsn, store.Options{})
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i], "round %d, store %d", round, i)
			t.Cleanup(func() { _ = stores[i].Close() })
		}
		rows, max := migrationCount(t, dsn)
		assert.Equal(t, schemaVersion, rows)
		assert.Equal(t, schemaVersion, max)
	}

	// The stores work together.
	ctx := testCtx(t)
	a := openDSN(t, dsn, store.Options{})
	addTrigger(t, a, "trigger://x")
	b := openDSN(t, dsn, store.Options{})
	evs, err := b.Append(ctx, "trigger://x", newEvents("k", 0, 2))
	require.NoError(t, err)
	assert.Equal(t, evs, allEvents(t, a, "trigger://x"))
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	dsn := newTestDB(t)
	ctx := testCtx(t)
	s, err := Open(ctx, dsn, store.Options{})
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES (999)`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(ctx, dsn, store.Options{})
	require.ErrorContains(t, err, "newer than this build supports")
}

func TestOpenErrors(t *testing.T) {
	ctx := testCtx(t)
	_, err := Open(ctx, "postgres://%zz", store.Options{})
	require.Error(t, err)
	// Nothing listens on port 1 of the loopback.
	_, err = Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=5", store.Options{})
	require.Error(t, err)
}

func TestPathAndSettings(t *testing.T) {
	dsn := newTestDB(t)
	ctx := testCtx(t)
	s := openDSN(t, dsn, store.Options{})
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database), s.Path())

	var sync string
	require.NoError(t, s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&sync))
	assert.Equal(t, "on", sync)
	relaxed := openDSN(t, dsn, store.Options{RelaxedSync: true})
	require.NoError(t, relaxed.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&sync))
	assert.Equal(t, "off", sync)

	// A password never shows in Path.
	withPassword := openDSN(t, dsn+"&password=s3cret", store.Options{})
	assert.NotContains(t, withPassword.Path(), "s3cret")
}

// TestReopenKeepsData closes every store and opens a new one: triggers,
// events, cursors and sequences carry on.
func TestReopenKeepsData(t *testing.T) {
	dsn := newTestDB(t)
	ctx := testCtx(t)
	var want []store.Event
	for round := range 4 {
		s, err := Open(ctx, dsn, store.Options{RelaxedSync: round%2 == 1})
		require.NoError(t, err)
		if round == 0 {
			addTrigger(t, s, "trigger://a")
		}
		require.Equal(t, want, allEvents(t, s, "trigger://a"))
		evs, err := s.AppendWithState(ctx, "trigger://a", newEvents("k", round*10, 10), fmt.Appendf(nil, `{"round":%d}`, round))
		require.NoError(t, err)
		want = append(want, evs...)
		_, err = s.ReadAndAdvance(ctx, "reader", "trigger://a", 4)
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
	s := openDSN(t, dsn, store.Options{})
	assert.Equal(t, want, allEvents(t, s, "trigger://a"))
	cur, err := s.Cursor(ctx, "reader", "trigger://a")
	require.NoError(t, err)
	assert.Equal(t, want[15].Seq, cur, "four reads of four")
	tr, _, err := s.Trigger(ctx, "trigger://a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"round":3}`, string(tr.State))
	for i, e := range want {
		assert.Equal(t, int64(i+1), e.Seq, "sequences carry on across reopens")
	}
}

// TestSequencesArePerTrigger documents the difference from the SQLite
// store: each trigger numbers its events 1, 2, 3, …
func TestSequencesArePerTrigger(t *testing.T) {
	s := openDSN(t, newTestDB(t), store.Options{})
	ctx := testCtx(t)
	addTrigger(t, s, "trigger://a")
	addTrigger(t, s, "trigger://b")
	a, err := s.Append(ctx, "trigger://a", newEvents("k", 0, 3))
	require.NoError(t, err)
	b, err := s.Append(ctx, "trigger://b", newEvents("k", 0, 2))
	require.NoError(t, err)
	a2, err := s.Append(ctx, "trigger://a", newEvents("k", 2, 3)) // k2 is known
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3}, seqsOf(a))
	assert.Equal(t, []int64{1, 2}, seqsOf(b))
	assert.Equal(t, []int64{4, 5}, seqsOf(a2))
}

// TestMultiReplicaAppendAndRead runs three Store instances on one database,
// as three server replicas would: each polls the same trigger (overlapping
// keys, moving the state with AppendWithState), shares one consumer name
// with the others through ReadAndAdvance, and pages on its own with
// EventsAfter, waking up on its own Listen notices when it has caught up.
// Every key is stored once, numbered 1..N without gaps; the shared
// consumer's events are split with no duplicate and no gap; every pager sees
// every event once, in order.
func TestMultiReplicaAppendAndRead(t *testing.T) {
	dsn := newTestDB(t)
	ctx := testCtx(t)
	const (
		n      = 3
		uri    = "trigger://cluster"
		rounds = 40
		batch  = 5
	)
	stores := make([]*Store, n)
	wake := make([]*storetest.Progress, n)
	var listeners sync.WaitGroup
	lctx, stopListening := context.WithCancel(ctx)
	defer func() { stopListening(); listeners.Wait() }()
	for i := range stores {
		stores[i] = openDSN(t, dsn, store.Options{RelaxedSync: true})
		wake[i] = storetest.NewProgress()
		ready, once := make(chan struct{}), new(sync.Once)
		stores[i].listenHooks = &listenHooks{listening: func(uint32) { once.Do(func() { close(ready) }) }}
		listeners.Add(1)
		go func() {
			defer listeners.Done()
			err := stores[i].Listen(lctx, func(got string) {
				if assert.Equal(t, uri, got) {
					wake[i].Committed()
				}
			})
			assert.ErrorIs(t, err, context.Canceled)
		}()
		select {
		case <-ready:
		case <-ctx.Done():
			t.Fatal("listener never ready")
		}
	}
	// Each replica registers the trigger at start-up, as the server does.
	for _, s := range stores {
		addTrigger(t, s, uri)
	}

	var (
		mu            sync.Mutex
		appended      []store.Event
		writers, rest sync.WaitGroup
	)
	for i, s := range stores {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for r := range rounds {
				// Replica i polls a window that overlaps the next one's.
				from := (i*rounds + r) * batch
				evs, err := s.AppendWithState(ctx, uri, newEvents("k", from, 2*batch), fmt.Appendf(nil, `{"replica":%d,"round":%d}`, i, r))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				appended = append(appended, evs...)
				mu.Unlock()
			}
		}()
	}
	go func() {
		writers.Wait()
		for _, w := range wake {
			w.Finish()
		}
	}()

	shared := make([][]store.Event, n)
	paged := make([][]store.Event, n)
	for i, s := range stores {
		rest.Add(2)
		go func() {
			defer rest.Done()
			for {
				done, next := wake[i].State()
				evs, err := s.ReadAndAdvance(ctx, "everyone", uri, 3+i)
				if !assert.NoError(t, err) {
					return
				}
				shared[i] = append(shared[i], evs...)
				if len(evs) > 0 {
					continue
				}
				if done {
					return
				}
				if !assert.True(t, storetest.Wait(ctx, next), "waiting for a notice: %v", ctx.Err()) {
					return
				}
			}
		}()
		go func() {
			defer rest.Done()
			var after int64
			for {
				done, next := wake[i].State()
				evs, err := s.EventsAfter(ctx, uri, after, 7+i)
				if !assert.NoError(t, err) {
					return
				}
				if len(evs) > 0 {
					after = evs[len(evs)-1].Seq
					paged[i] = append(paged[i], evs...)
					continue
				}
				if done {
					return
				}
				if !assert.True(t, storetest.Wait(ctx, next), "waiting for a notice: %v", ctx.Err()) {
					return
				}
			}
		}()
	}
	rest.Wait()

	stored := allEvents(t, stores[0], uri)
	wantKeys := (n*rounds + 1) * batch // windows overlap; the last one reaches one batch further
	require.Len(t, stored, wantKeys)
	for i, e := range stored {
		assert.Equal(t, int64(i+1), e.Seq, "gap-free per-trigger sequence")
	}
	bySeq := func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) }
	slices.SortFunc(appended, bySeq)
	assert.Equal(t, stored, appended, "each stored event was acknowledged to exactly one replica")
	var union []store.Event
	for i := range n {
		assert.Equal(t, stored, paged[i], "pager on replica %d", i)
		union = append(union, shared[i]...)
	}
	slices.SortFunc(union, bySeq)
	assert.Equal(t, stored, union, "the shared consumer got every event exactly once")
	for i := range n {
		latest, err := stores[i].LatestSeq(ctx, uri)
		require.NoError(t, err)
		assert.Equal(t, int64(wantKeys), latest)
	}
}
