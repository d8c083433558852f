package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testTimeout bounds every wait in these tests; it is never expected to
// pass.
const testTimeout = 2 * time.Minute

var (
	testKey  = bytes.Repeat([]byte{0x42}, 32)
	otherKey = bytes.Repeat([]byte{0x17}, 32)
	expiry   = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
)

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func open(t testing.TB, pool *pgxpool.Pool, key []byte, cfg Config) *PG {
	t.Helper()
	s, err := Open(testContext(t), pool, key, cfg)
	require.NoError(t, err)
	return s
}

// replicas opens n stores on n pools of dsn at once, as n replicas would.
func replicas(t testing.TB, dsn string, n int, cfg Config) []*PG {
	t.Helper()
	stores := make([]*PG, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		pool := newPool(t, dsn)
		wg.Go(func() { stores[i], errs[i] = Open(testContext(t), pool, testKey, cfg) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return stores
}

func set(st State) RefreshFunc { return func(State) (State, error) { return st, nil } }

func TestOpenIsIdempotent(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	stores := replicas(t, dsn, 5, Config{})
	_, err := stores[0].Refresh(testContext(t), "k", set(State{RefreshToken: "rt-1"}))
	require.NoError(t, err)
	// Opening again keeps the table and its rows.
	s := open(t, newPool(t, dsn), testKey, Config{})
	st, err := s.Load(testContext(t), "k")
	require.NoError(t, err)
	assert.Equal(t, "rt-1", st.RefreshToken)
	assert.Equal(t, DefaultTable, s.Config().Table)
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), nil, testKey, Config{Table: "Robert'); DROP TABLE x;--"})
	assert.ErrorContains(t, err, "invalid table name")
	_, err = Open(context.Background(), nil, testKey, Config{})
	assert.Error(t, err)
	_, err = Open(context.Background(), &pgxpool.Pool{}, []byte("short"), Config{})
	assert.ErrorContains(t, err, "key")
}

func TestRefreshAndLoad(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := open(t, newPool(t, pgtest.Start(t)), testKey, Config{Table: "my_tokens"})

	st, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, State{}, st, "nothing stored yet")

	var seen State
	st, err = s.Refresh(ctx, "k", func(cur State) (State, error) {
		seen = cur
		return State{RefreshToken: "rt-2", AccessToken: "at-1", Expiry: expiry}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, State{}, seen, "the first Refresh sees no state")
	assert.Equal(t, int64(1), st.Version)
	assert.Equal(t, "at-1", st.AccessToken)

	st, err = s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "rt-2", st.RefreshToken)
	assert.Equal(t, "at-1", st.AccessToken)
	assert.True(t, expiry.Equal(st.Expiry), "expiry %v", st.Expiry)
	assert.Equal(t, int64(1), st.Version)

	// Returning the current state writes nothing.
	st, err = s.Refresh(ctx, "k", func(cur State) (State, error) { return cur, nil })
	require.NoError(t, err)
	assert.Equal(t, int64(1), st.Version)
	assert.Equal(t, "at-1", st.AccessToken)

	// An error stores nothing and comes back as is.
	boom := errors.New("boom")
	_, err = s.Refresh(ctx, "k", func(State) (State, error) { return State{}, boom })
	assert.Same(t, boom, err)
	st, err = s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, int64(1), st.Version)
	assert.Equal(t, "rt-2", st.RefreshToken)

	// The first Refresh of a key that fails leaves no row.
	_, err = s.Refresh(ctx, "other", func(State) (State, error) { return State{}, boom })
	assert.Same(t, boom, err)
	var rows int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM my_tokens`).Scan(&rows))
	assert.Equal(t, 1, rows)

	// Tokens may be cleared.
	st, err = s.Refresh(ctx, "k", set(State{RefreshToken: "rt-3"}))
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Version)
	st, err = s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, State{RefreshToken: "rt-3", Version: 2}, st)

	_, err = s.Load(ctx, "")
	assert.Error(t, err)
	_, err = s.Refresh(ctx, "", set(State{}))
	assert.Error(t, err)
}

// TestRefreshSerializes runs many Refresh calls on several replicas at
// once, round after round: each round one of them renews the state (the
// others find it renewed), and no two functions run at the same time.
func TestRefreshSerializes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(testContext(t), 20*time.Second)
	defer cancel()
	stores := replicas(t, pgtest.Start(t), 3, Config{})
	const (
		rounds  = 5
		callers = 24
	)
	var inside, renewals atomic.Int32
	for round := 1; round <= rounds; round++ {
		started := make(chan struct{}, callers)
		var wg sync.WaitGroup
		results := make([]State, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Go(func() {
				started <- struct{}{}
				results[i], errs[i] = stores[i%len(stores)].Refresh(ctx, "k", func(cur State) (State, error) {
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d functions run at once", n)
					}
					defer inside.Add(-1)
					if cur.Version >= int64(round) {
						return cur, nil // renewed by another caller meanwhile
					}
					// Hold the lock until every caller is on its way to it.
					for range callers {
						select {
						case <-started:
						case <-ctx.Done():
							return State{}, ctx.Err()
						}
					}
					renewals.Add(1)
					return State{RefreshToken: fmt.Sprintf("rt-%d", round), AccessToken: fmt.Sprintf("at-%d", round), Expiry: expiry}, nil
				})
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		assert.Equal(t, int32(round), renewals.Load(), "one renewal per round")
		for _, st := range results {
			assert.Equal(t, fmt.Sprintf("at-%d", round), st.AccessToken)
			assert.Equal(t, int64(round), st.Version)
		}
	}
}

func TestSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := pgtest.Start(t)
	pool := newPool(t, dsn)
	s := open(t, pool, testKey, Config{})
	secrets := []string{"refresh-token-PLAINTEXT-1", "access-token-PLAINTEXT-2"}
	for _, key := range []string{"a", "b"} {
		_, err := s.Refresh(ctx, key, set(State{RefreshToken: secrets[0], AccessToken: secrets[1], Expiry: expiry}))
		require.NoError(t, err)
	}

	rows, err := pool.Query(ctx, `SELECT t::text, coalesce(refresh_token, ''), coalesce(access_token, '') FROM cosell_oauth_tokens t`)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var text string
		var rt, at []byte
		require.NoError(t, rows.Scan(&text, &rt, &at))
		n++
		for _, sec := range secrets {
			assert.NotContains(t, text, sec)
			assert.False(t, bytes.Contains(rt, []byte(sec)) || bytes.Contains(at, []byte(sec)), "plaintext token in the table")
		}
		assert.NotEmpty(t, rt)
		assert.NotEmpty(t, at)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 2, n)

	// Another state key cannot open them.
	other := open(t, pool, otherKey, Config{})
	_, err = other.Load(ctx, "a")
	assert.ErrorIs(t, err, ErrSealed)
	called := false
	_, err = other.Refresh(ctx, "a", func(State) (State, error) { called = true; return State{}, nil })
	assert.ErrorIs(t, err, ErrSealed)
	assert.False(t, called)

	// A sealed value moved to another row or column cannot be opened.
	_, err = pool.Exec(ctx, `UPDATE cosell_oauth_tokens SET access_token = (SELECT access_token FROM cosell_oauth_tokens WHERE key = 'a') WHERE key = 'b'`)
	require.NoError(t, err)
	_, err = s.Load(ctx, "b")
	assert.ErrorIs(t, err, ErrSealed)
	_, err = pool.Exec(ctx, `UPDATE cosell_oauth_tokens SET access_token = refresh_token WHERE key = 'a'`)
	require.NoError(t, err)
	_, err = s.Load(ctx, "a")
	assert.ErrorIs(t, err, ErrSealed)
}

// TestUnavailable: with the database down, Load and Refresh fail with
// ErrUnavailable and the function is not called; once it is back, they
// work again (on fresh connections).
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := pgtest.StartServer(t)
	s := open(t, newPool(t, srv.NewDatabase(t)), testKey, Config{OpTimeout: 3 * time.Second})
	_, err := s.Refresh(ctx, "k", set(State{RefreshToken: "rt-1"}))
	require.NoError(t, err)

	for _, outage := range []struct {
		name string
		stop func() error
	}{{"stop", srv.Stop}, {"crash", srv.Kill}} {
		require.NoError(t, outage.stop())
		_, err := s.Load(ctx, "k")
		assert.ErrorIs(t, err, ErrUnavailable, outage.name)
		called := false
		_, err = s.Refresh(ctx, "k", func(State) (State, error) { called = true; return State{}, nil })
		assert.ErrorIs(t, err, ErrUnavailable, outage.name)
		assert.False(t, called, "%s: no refresh without the lock", outage.name)

		require.NoError(t, srv.Start())
		st, err := s.Load(ctx, "k")
		require.NoError(t, err, outage.name)
		assert.Equal(t, "rt-1", st.RefreshToken)
		st, err = s.Refresh(ctx, "k", func(cur State) (State, error) { return cur, nil })
		require.NoError(t, err, outage.name)
		assert.Equal(t, "rt-1", st.RefreshToken)
	}
}

// TestWaiterGivesUp: a caller waiting for the lock gives up with its
// context, without calling its function.
func TestWaiterGivesUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := pgtest.Start(t)
	holder := open(t, newPool(t, dsn), testKey, Config{})
	tracer := &lockTracer{asked: make(chan struct{}, 1)}
	pcfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	pcfg.ConnConfig.Tracer = tracer
	wpool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(wpool.Close)
	waiter := open(t, wpool, testKey, Config{})
	stores := []*PG{holder, waiter}
	_, err = stores[0].Refresh(ctx, "k", set(State{RefreshToken: "rt-1"}))
	require.NoError(t, err)

	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := stores[0].Refresh(ctx, "k", func(State) (State, error) {
			close(locked)
			<-release
			return State{RefreshToken: "rt-2"}, nil
		})
		done <- err
	}()
	<-locked
	wctx, cancel := context.WithCancel(ctx)
	waiting := make(chan error, 1)
	go func() {
		_, err := stores[1].Refresh(wctx, "k", func(State) (State, error) {
			t.Error("the function of a caller that gave up was called")
			return State{}, nil
		})
		waiting <- err
	}()
	<-tracer.asked // the waiter has asked for the lock
	cancel()
	assert.ErrorIs(t, <-waiting, context.Canceled)
	close(release)
	require.NoError(t, <-done)
	st, err := stores[1].Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "rt-2", st.RefreshToken)
}

// TestMaxHold: a replica that hangs while holding the lock loses it after
// MaxHold; another takes over, and the hung one's late write fails.
func TestMaxHold(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := pgtest.Start(t)
	cfg := Config{MaxHold: 300 * time.Millisecond}
	stores := replicas(t, dsn, 2, cfg)
	_, err := stores[0].Refresh(ctx, "k", set(State{RefreshToken: "rt-1"}))
	require.NoError(t, err)

	locked, release := make(chan struct{}), make(chan struct{})
	hung := make(chan error, 1)
	go func() {
		_, err := stores[0].Refresh(ctx, "k", func(State) (State, error) {
			close(locked)
			<-release // until the other replica has taken over
			return State{RefreshToken: "rt-late"}, nil
		})
		hung <- err
	}()
	<-locked
	st, err := stores[1].Refresh(ctx, "k", func(cur State) (State, error) {
		assert.Equal(t, "rt-1", cur.RefreshToken)
		close(release)
		return State{RefreshToken: "rt-2"}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, "rt-2", st.RefreshToken)
	assert.ErrorIs(t, <-hung, ErrUnavailable, "the write after the lock was lost fails")
	st, err = stores[1].Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "rt-2", st.RefreshToken)
}

// lockTracer reports each time a session of its pool asks for a row lock.
type lockTracer struct{ asked chan struct{} }

func (lt *lockTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, "FOR UPDATE") {
		select {
		case lt.asked <- struct{}{}:
		default:
		}
	}
	return ctx
}

func (*lockTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
