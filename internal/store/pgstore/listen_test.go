package pgstore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// listener runs s.Listen in the background, collecting notices, until the
// test ends.
type listener struct {
	notices   chan string
	listening chan uint32 // backend pid of each connection that starts listening
	done      chan error  // Listen's result
	cancel    context.CancelFunc
}

func startListener(t *testing.T, s *Store, hooks *listenHooks) *listener {
	t.Helper()
	l := &listener{
		notices:   make(chan string, 1000),
		listening: make(chan uint32, 10),
		done:      make(chan error, 1),
	}
	if hooks == nil {
		hooks = &listenHooks{}
	}
	hooks.listening = func(pid uint32) { l.listening <- pid }
	s.listenHooks = hooks
	ctx, cancel := context.WithCancel(testCtx(t))
	l.cancel = cancel
	go func() { l.done <- s.Listen(ctx, func(uri string) { l.notices <- uri }) }()
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	return l
}

func (l *listener) waitListening(t *testing.T) uint32 {
	t.Helper()
	select {
	case pid := <-l.listening:
		return pid
	case err := <-l.done:
		t.Fatalf("Listen returned: %v", err)
	case <-testCtx(t).Done():
		t.Fatal("listener never started listening")
	}
	return 0
}

// next returns the next notice.
func (l *listener) next(t *testing.T) string {
	t.Helper()
	select {
	case uri := <-l.notices:
		return uri
	case err := <-l.done:
		t.Fatalf("Listen returned: %v", err)
	case <-testCtx(t).Done():
		t.Fatal("no notice came")
	}
	return ""
}

// TestListenAcrossReplicas listens on one instance and appends through
// another: every append that stores new events is announced, in commit
// order, and appends that store nothing are not.
func TestListenAcrossReplicas(t *testing.T) {
	dsn := newTestDB(t)
	ctx := testCtx(t)
	a := openDSN(t, dsn, store.Options{})
	b := openDSN(t, dsn, store.Options{})
	addTrigger(t, a, "trigger://x")
	addTrigger(t, a, "trigger://y")
	_, err := a.Append(ctx, "trigger://x", newEvents("old", 0, 1)) // before listening
	require.NoError(t, err)

	l := startListener(t, a, nil)
	l.waitListening(t)

	_, err = b.Append(ctx, "trigger://x", newEvents("k", 0, 2))
	require.NoError(t, err)
	assert.Equal(t, "trigger://x", l.next(t))

	// Appends storing nothing new are silent: the next notice is y's.
	_, err = b.Append(ctx, "trigger://x", newEvents("k", 0, 2))
	require.NoError(t, err)
	_, err = b.AppendWithState(ctx, "trigger://x", newEvents("k", 1, 1), json.RawMessage(`{"hwm":1}`))
	require.NoError(t, err)
	_, err = b.Append(ctx, "trigger://x", nil)
	require.NoError(t, err)
	_, err = b.Append(ctx, "trigger://missing", newEvents("k", 0, 1))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.AppendWithState(ctx, "trigger://y", newEvents("k", 0, 1), json.RawMessage(`{"hwm":1}`))
	require.NoError(t, err)
	assert.Equal(t, "trigger://y", l.next(t))

	// A failed append is not announced.
	b.beforeCommit = func(context.Context) error { return context.DeadlineExceeded }
	_, err = b.Append(ctx, "trigger://x", newEvents("k", 10, 1))
	require.Error(t, err)
	b.beforeCommit = nil

	// Appends through the listening instance itself are announced too.
	_, err = a.Append(ctx, "trigger://y", newEvents("k", 1, 1))
	require.NoError(t, err)
	assert.Equal(t, "trigger://y", l.next(t))

	// A URI too long for a notice payload is still announced by name, with
	// the triggers that moved since the listener connected (x and y again).
	long := "trigger://long/" + strings.Repeat("x", maxNotifyPayload)
	addTrigger(t, a, long)
	_, err = b.Append(ctx, long, newEvents("k", 0, 1))
	require.NoError(t, err)
	addTrigger(t, a, "trigger://z")
	_, err = b.Append(ctx, "trigger://z", newEvents("k", 0, 1))
	require.NoError(t, err)
	want := map[string]bool{"trigger://x": true, "trigger://y": true, long: true, "trigger://z": true}
	for seen := map[string]bool{}; len(seen) < len(want); {
		uri := l.next(t)
		require.True(t, want[uri], "unexpected notice %.40q", uri)
		seen[uri] = true
	}

	l.cancel()
	assert.ErrorIs(t, <-l.done, context.Canceled)
	l.done <- nil // for the cleanup
}

// TestListenReconnects kills the listener's connection and appends while it
// is away: after reconnecting it announces the trigger whose events it may
// have missed, and then receives notices again.
func TestListenReconnects(t *testing.T) {
	dsn := newTestDB(t)
	ctx := testCtx(t)
	a := openDSN(t, dsn, store.Options{})
	b := openDSN(t, dsn, store.Options{})
	addTrigger(t, a, "trigger://x")
	addTrigger(t, a, "trigger://y")
	addTrigger(t, a, "trigger://quiet")
	_, err := a.Append(ctx, "trigger://quiet", newEvents("k", 0, 1))
	require.NoError(t, err)

	away := make(chan struct{}, 10) // the listener is about to reconnect
	back := make(chan struct{})     // let it
	l := startListener(t, a, &listenHooks{reconnecting: func() {
		away <- struct{}{}
		<-back
	}})
	pid := l.waitListening(t)

	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	var killed bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&killed))
	require.True(t, killed)

	select {
	case <-away:
	case <-ctx.Done():
		t.Fatal("the listener did not notice the lost connection")
	}
	_, err = b.Append(ctx, "trigger://x", newEvents("missed", 0, 3))
	require.NoError(t, err)
	close(back)

	assert.Equal(t, "trigger://x", l.next(t), "announced after reconnecting")
	assert.NotEqual(t, pid, l.waitListening(t))
	_, err = b.Append(ctx, "trigger://y", newEvents("k", 0, 1))
	require.NoError(t, err)
	assert.Equal(t, "trigger://y", l.next(t), "listening again; quiet triggers were not announced")
}

func TestListenEndsWhenClosed(t *testing.T) {
	s := openDSN(t, newTestDB(t), store.Options{})
	l := startListener(t, s, nil)
	l.waitListening(t)
	require.NoError(t, s.Close())
	select {
	case err := <-l.done:
		assert.ErrorIs(t, err, ErrClosed)
	case <-testCtx(t).Done():
		t.Fatal("Listen did not end")
	}
	l.done <- nil // for the cleanup

	// Listening on a closed store ends at once.
	assert.ErrorIs(t, s.Listen(testCtx(t), func(string) {}), ErrClosed)
}

func TestListenFirstConnectionFails(t *testing.T) {
	s := openDSN(t, newTestDB(t), store.Options{})
	s.connCfg.Host, s.connCfg.Port = "127.0.0.1", 1 // nothing listens there
	s.connCfg.Fallbacks = nil
	err := s.Listen(testCtx(t), func(string) { t.Error("notice without a connection") })
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrClosed)
}
