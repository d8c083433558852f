package sessionstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testTimeout bounds every wait in these tests; it is never expected to
// pass.
const testTimeout = 2 * time.Minute

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

func open(t testing.TB, pool *pgxpool.Pool, cfg Config) *Store {
	t.Helper()
	s, err := Open(testContext(t), pool, cfg)
	require.NoError(t, err)
	return s
}

// age moves every time of the session back by d, as if d had passed.
func age(t testing.TB, s *Store, id string, d time.Duration) {
	t.Helper()
	_, err := s.pool.Exec(testContext(t), `UPDATE `+s.cfg.Table+` SET created = created - $2::bigint * interval '1 microsecond',
		last_seen = last_seen - $2::bigint * interval '1 microsecond', ended = ended - $2::bigint * interval '1 microsecond' WHERE id_hash = $1`,
		hashID(id), d.Microseconds())
	require.NoError(t, err)
}

func rows(t testing.TB, s *Store) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(testContext(t), `SELECT count(*) FROM `+s.cfg.Table).Scan(&n))
	return n
}

func TestSessionLifecycle(t *testing.T) {
	ctx := testContext(t)
	s := open(t, newPool(t, pgtest.Start(t)), Config{})
	client := json.RawMessage(`{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},"clientInfo":{"name":"c","version":"1"}}`)
	id, err := s.Generate(ctx, "apikey:alice", client)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(id, IDPrefix))
	assert.Len(t, id, len(IDPrefix)+2*idBytes, "192 random bits")
	other, err := s.Generate(ctx, "apikey:alice", nil)
	require.NoError(t, err)
	assert.NotEqual(t, id, other)

	sess, err := s.Validate(ctx, id, "apikey:alice")
	require.NoError(t, err)
	assert.Equal(t, "apikey:alice", sess.Owner)
	assert.JSONEq(t, string(client), string(sess.Client))
	assert.Empty(t, sess.LogLevel)
	sess, err = s.Validate(ctx, other, "apikey:alice")
	require.NoError(t, err)
	assert.Nil(t, sess.Client)

	var stored int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM cosell_mcp_sessions t WHERE strpos(t::text, $1) > 0`,
		strings.TrimPrefix(id, IDPrefix)).Scan(&stored))
	assert.Zero(t, stored, "the table holds no usable id")

	// Another principal, an unknown id, a forged one: not found, and
	// nothing tells them apart.
	for name, check := range map[string]func() (*Session, error){
		"another principal": func() (*Session, error) { return s.Validate(ctx, id, "apikey:bob") },
		"no principal":      func() (*Session, error) { return s.Validate(ctx, id, "") },
		"unknown":           func() (*Session, error) { return s.Validate(ctx, IDPrefix+strings.Repeat("0", 48), "apikey:alice") },
		"forged":            func() (*Session, error) { return s.Validate(ctx, "x", "apikey:alice") },
		"empty":             func() (*Session, error) { return s.Validate(ctx, "", "apikey:alice") },
	} {
		_, err := check()
		assert.ErrorIs(t, err, ErrNotFound, name)
		assert.NotErrorIs(t, err, ErrEnded, name)
	}

	require.NoError(t, s.SetLogLevel(ctx, id, "apikey:alice", "warning"))
	assert.ErrorIs(t, s.SetLogLevel(ctx, id, "apikey:bob", "debug"), ErrNotFound)
	sess, err = s.Validate(ctx, id, "apikey:alice")
	require.NoError(t, err)
	assert.Equal(t, "warning", sess.LogLevel)

	// Bob cannot end it; alice can, once.
	assert.ErrorIs(t, s.Terminate(ctx, id, "apikey:bob"), ErrNotFound)
	_, err = s.Validate(ctx, id, "apikey:alice")
	require.NoError(t, err, "bob's attempt left it alone")
	require.NoError(t, s.Terminate(ctx, id, "apikey:alice"))
	assert.ErrorIs(t, s.Terminate(ctx, id, "apikey:alice"), ErrNotFound)
	_, err = s.Validate(ctx, id, "apikey:alice")
	assert.ErrorIs(t, err, ErrEnded)
	_, err = s.Validate(ctx, id, "apikey:bob")
	assert.NotErrorIs(t, err, ErrEnded, "only the owner learns that it ended")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Validate(ctx, other, "apikey:alice")
	assert.NoError(t, err, "ending one session leaves the others")
}

// last_seen is written at most once per TouchEvery; a session idle for the
// TTL is gone, and Sweep removes it and the ended ones.
func TestTouchAndExpiry(t *testing.T) {
	ctx := testContext(t)
	s := open(t, newPool(t, pgtest.Start(t)), Config{IdleTTL: 10 * time.Hour, TouchEvery: time.Hour})
	id, err := s.Generate(ctx, "o", nil)
	require.NoError(t, err)
	first, err := s.Validate(ctx, id, "o")
	require.NoError(t, err)
	assert.Equal(t, first.Created, first.LastSeen, "seen within TouchEvery: not written")

	age(t, s, id, 2*time.Hour)
	touched, err := s.Validate(ctx, id, "o")
	require.NoError(t, err)
	assert.Equal(t, 2*time.Hour, touched.LastSeen.Sub(touched.Created).Round(time.Hour), "seen again after TouchEvery: written")
	again, err := s.Validate(ctx, id, "o")
	require.NoError(t, err)
	assert.Equal(t, touched.LastSeen, again.LastSeen, "not written twice within TouchEvery")

	_, err = s.Validate(ctx, id, "someone else")
	require.ErrorIs(t, err, ErrNotFound)
	age(t, s, id, 2*time.Hour)
	_, err = s.Validate(ctx, id, "someone else")
	require.ErrorIs(t, err, ErrNotFound)
	seen, err := s.Validate(ctx, id, "o")
	require.NoError(t, err)
	assert.Equal(t, 4*time.Hour, seen.LastSeen.Sub(seen.Created).Round(time.Hour), "another principal's attempts do not keep it alive")

	idle, err := s.Generate(ctx, "o", nil)
	require.NoError(t, err)
	ended, err := s.Generate(ctx, "o", nil)
	require.NoError(t, err)
	require.NoError(t, s.Terminate(ctx, ended, "o"))
	recentlyEnded, err := s.Generate(ctx, "o", nil)
	require.NoError(t, err)
	require.NoError(t, s.Terminate(ctx, recentlyEnded, "o"))
	age(t, s, idle, 10*time.Hour)
	age(t, s, ended, 10*time.Hour)
	_, err = s.Validate(ctx, idle, "o")
	assert.ErrorIs(t, err, ErrEnded, "idle for the TTL: expired")
	assert.ErrorIs(t, s.Terminate(ctx, idle, "o"), ErrNotFound, "an expired session cannot be ended")
	assert.ErrorIs(t, s.SetLogLevel(ctx, idle, "o", "debug"), ErrNotFound)

	require.Equal(t, 4, rows(t, s))
	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "the expired session and the one ended a TTL ago")
	assert.Equal(t, 2, rows(t, s))
	_, err = s.Validate(ctx, id, "o")
	assert.NoError(t, err, "the live session stays")
	_, err = s.Validate(ctx, recentlyEnded, "o")
	assert.ErrorIs(t, err, ErrEnded, "kept for a TTL, still ended")
	n, err = s.Sweep(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "sweeping again changes nothing")
}

// RunSweeper sweeps on its clock.
func TestRunSweeper(t *testing.T) {
	ctx := testContext(t)
	s := open(t, newPool(t, pgtest.Start(t)), Config{IdleTTL: time.Hour})
	id, err := s.Generate(ctx, "o", nil)
	require.NoError(t, err)
	age(t, s, id, 2*time.Hour)

	clk := clock.NewFake(time.Unix(0, 0))
	sweepCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.RunSweeper(sweepCtx, clk, 0, func(err error) { t.Errorf("sweep: %v", err) })
	}()
	defer func() { stop(); <-done }()
	require.NoError(t, clk.WaitForWaiters(ctx, 1))
	assert.Equal(t, 1, rows(t, s), "nothing swept before the interval")
	clk.Advance(s.SweepInterval())
	require.NoError(t, clk.WaitForWaiters(ctx, 1), "re-armed once the sweep is done")
	assert.Zero(t, rows(t, s))
}

// Replicas starting together migrate once, and opening again changes
// nothing.
func TestOpenConcurrently(t *testing.T) {
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		pool := newPool(t, dsn)
		wg.Go(func() { _, errs[i] = Open(testContext(t), pool, Config{}) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	s := open(t, newPool(t, dsn), Config{})
	id, err := s.Generate(testContext(t), "o", nil)
	require.NoError(t, err)
	s2 := open(t, newPool(t, dsn), Config{})
	_, err = s2.Validate(testContext(t), id, "o")
	assert.NoError(t, err, "another replica's store sees the session")
}

// With the database down every call fails with ErrUnavailable: nothing
// is taken as valid. Once it is back, the sessions are as they were.
func TestFailClosed(t *testing.T) {
	srv := pgtest.StartServer(t)
	dsn := srv.NewDatabase(t)
	ctx := testContext(t)
	s := open(t, newPool(t, dsn), Config{OpTimeout: 3 * time.Second})
	id, err := s.Generate(ctx, "o", nil)
	require.NoError(t, err)

	require.NoError(t, srv.Stop())
	_, err = s.Validate(ctx, id, "o")
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.NotErrorIs(t, err, ErrNotFound)
	_, err = s.Generate(ctx, "o", nil)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, s.Terminate(ctx, id, "o"), ErrUnavailable)
	assert.ErrorIs(t, s.SetLogLevel(ctx, id, "o", "debug"), ErrUnavailable)
	_, err = s.Sweep(ctx)
	assert.ErrorIs(t, err, ErrUnavailable)
	_, err = Open(ctx, newPool(t, dsn), Config{OpTimeout: 3 * time.Second})
	assert.ErrorIs(t, err, ErrUnavailable)

	require.NoError(t, srv.Start())
	_, err = s.Validate(ctx, id, "o")
	assert.NoError(t, err)
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, Config{IdleTTL: DefaultIdleTTL, TouchEvery: time.Minute, Table: DefaultTable, OpTimeout: DefaultOpTimeout}, c)
	c, err = Config{IdleTTL: 10 * time.Second}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, time.Second, c.TouchEvery)
	c, err = Config{IdleTTL: 10 * time.Second, TouchEvery: time.Hour}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, c.TouchEvery, "at most half the TTL")
	_, err = Config{Table: "x; DROP TABLE y"}.withDefaults()
	assert.Error(t, err)
}

// A session's trigger subscriptions are the cluster's: listed by the hash
// of its id, gone when it ends or is swept.
func TestSubscriptionsFollowTheSession(t *testing.T) {
	ctx := testContext(t)
	s := open(t, newPool(t, pgtest.Start(t)), Config{IdleTTL: time.Hour})
	alice, err := s.Generate(ctx, "alice", nil)
	require.NoError(t, err)
	bob, err := s.Generate(ctx, "bob", nil)
	require.NoError(t, err)
	const key = "pipedrive://triggers/new-deals#abc"
	require.NoError(t, s.Subscribe(ctx, alice, key, "pipedrive://triggers/new-deals"))
	require.NoError(t, s.Subscribe(ctx, bob, key, "pipedrive://triggers/new-deals?after=0"))
	require.NoError(t, s.Subscribe(ctx, "mcp-session-unknown", key, "x"), "an unknown session subscribes nothing")

	subs, err := s.Subscribers(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{s.HashOf(alice): "pipedrive://triggers/new-deals", s.HashOf(bob): "pipedrive://triggers/new-deals?after=0"}, subs)
	assert.NotContains(t, subs, alice, "sessions are named by hash, never by a usable id")

	require.NoError(t, s.Unsubscribe(ctx, bob, key))
	require.NoError(t, s.Terminate(ctx, alice, "alice"))
	subs, err = s.Subscribers(ctx, key)
	require.NoError(t, err)
	assert.Empty(t, subs, "unsubscribed, and an ended session is told nothing")

	require.NoError(t, s.Subscribe(ctx, bob, key, "u"))
	age(t, s, bob, 2*time.Hour)
	age(t, s, alice, 2*time.Hour)
	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	var n int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM `+s.cfg.Table+`_subscriptions`).Scan(&n))
	assert.Zero(t, n, "a swept session's subscriptions go with it")
}
