package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/sealed"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// hangGuard is a deadline only a hung test reaches.
func hangGuard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t *testing.T) *store.Store {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// countingPoller marks "now" on its first poll and then reports one event a poll.
type countingPoller struct {
	polls  atomic.Int64
	polled chan struct{}
}

func (p *countingPoller) Poll(context.Context, url.Values, json.RawMessage) ([]store.NewEvent, json.RawMessage, error) {
	n := p.polls.Add(1)
	defer func() { p.polled <- struct{}{} }()
	state, _ := json.Marshal(map[string]int64{"polls": n})
	if n == 1 {
		return nil, state, nil
	}
	return []store.NewEvent{{Key: string(state), Payload: state}}, state, nil
}

// A new polling trigger makes its first poll before Start returns, then
// polls once per interval of the injected clock — never on its own.
func TestPollerPrimesOnStartThenFollowsTheClock(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	p := &countingPoller{polled: make(chan struct{}, 10)}
	notified := make(chan string, 10)
	m := NewManager(openStore(t), []Kind{{Name: "t.poll", Base: "test://poll", Poller: p, Interval: time.Minute}},
		Options{Clock: fc, Notify: func(uri string) { notified <- uri }})
	t.Cleanup(m.Close)

	uri, err := m.Start(context.Background(), "test://poll")
	require.NoError(t, err)
	assert.EqualValues(t, 1, p.polls.Load(), "the first poll happened inside Start")
	<-p.polled

	ctx := hangGuard(t)
	require.NoError(t, fc.WaitForWaiters(ctx, 1))
	fc.Advance(time.Minute - time.Nanosecond)
	assert.EqualValues(t, 1, p.polls.Load(), "no poll before the interval has passed")
	fc.Advance(time.Nanosecond)
	select {
	case <-p.polled:
	case <-ctx.Done():
		t.Fatal("no poll after one interval")
	}
	select {
	case got := <-notified:
		assert.Equal(t, uri, got)
	case <-ctx.Done():
		t.Fatal("the stored event was not announced")
	}
	assert.EqualValues(t, 2, p.polls.Load())
}

// blockingWebhook blocks in Exists until its context ends.
type blockingWebhook struct {
	entered chan struct{}
	ended   chan error
}

func (w blockingWebhook) Register(context.Context, url.Values, string) (string, error) {
	return "sub-1", nil
}
func (w blockingWebhook) Unregister(context.Context, string) error { return nil }
func (w blockingWebhook) Exists(ctx context.Context, _ string) (bool, error) {
	close(w.entered)
	<-ctx.Done()
	w.ended <- ctx.Err()
	return false, ctx.Err()
}

// The restore at start-up belongs to the manager: Close cancels it and
// waits for it, so nothing outlives the server.
func TestCloseStopsARestoreInProgress(t *testing.T) {
	st := openStore(t)
	state, _ := json.Marshal(webhookState{ID: "a", Secret: "b", SubscriberID: "sub-0"})
	require.NoError(t, st.UpsertTrigger(context.Background(), store.Trigger{URI: "test://hook", Kind: "t.hook", Params: json.RawMessage(`{}`), State: state, Active: true}))
	wh := blockingWebhook{entered: make(chan struct{}), ended: make(chan error, 1)}
	m := NewManager(st, []Kind{{Name: "t.hook", Base: "test://hook", Webhook: wh}}, Options{PublicURL: "http://127.0.0.1:1"})

	m.StartRestore()
	ctx := hangGuard(t)
	select {
	case <-wh.entered:
	case <-ctx.Done():
		t.Fatal("the restore never reached the upstream")
	}
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not stop the restore")
	}
	select {
	case err := <-wh.ended:
		assert.ErrorIs(t, err, context.Canceled, "the restore's upstream call was cancelled by Close")
	default:
		t.Fatal("Close returned before the restore had finished")
	}
	m.StartRestore() // after Close: starts nothing
	m.StartRetention()
	m.Close()
}

type secretKey struct{}

// secretPoller records the credential each poll ran with.
type secretPoller struct{ seen chan string }

func (p secretPoller) Poll(ctx context.Context, _ url.Values, _ json.RawMessage) ([]store.NewEvent, json.RawMessage, error) {
	s, _ := ctx.Value(secretKey{}).(string)
	p.seen <- s
	return nil, json.RawMessage(`{"mark":1}`), nil
}

// Issue finding 4 (credentials): a caller's trigger polls with the caller's
// own credential, kept at rest only sealed with the state key, across a
// restart; without a state key it is refused; a principal's triggers are capped.
func TestCallerTriggersPollWithTheirSealedCredential(t *testing.T) {
	st := openStore(t)
	p := secretPoller{seen: make(chan string, 10)}
	kinds := []Kind{{Name: "pipedrive.x", Base: "pipedrive://triggers/x", Poller: p, Interval: time.Hour}, {Name: "pipedrive.y", Base: "pipedrive://triggers/y", Poller: p, Interval: time.Hour}}
	asAlice := func(context.Context, string) Scope {
		return Scope{Owner: "api_key:alice", Secret: "alice-pipedrive-token"}
	}
	withSecret := func(ctx context.Context, _, secret string) context.Context {
		return context.WithValue(ctx, secretKey{}, secret)
	}

	noKey := NewManager(st, kinds, Options{ScopeOf: asAlice, WithSecret: withSecret})
	_, err := noKey.Start(context.Background(), "pipedrive://triggers/x")
	require.ErrorIs(t, err, ErrNeedsStateKey)
	assert.ErrorIs(t, noKey.CanStart(context.Background(), "pipedrive://triggers/x"), ErrNeedsStateKey)
	noKey.Close()

	box, err := sealed.New(make([]byte, sealed.KeySize))
	require.NoError(t, err)
	m := NewManager(st, kinds, Options{ScopeOf: asAlice, WithSecret: withSecret, Box: box, MaxPerOwner: 1})
	key, err := m.Start(context.Background(), "pipedrive://triggers/x")
	require.NoError(t, err)
	assert.Equal(t, "alice-pipedrive-token", <-p.seen, "the first poll used alice's credential")
	assert.NotEqual(t, "pipedrive://triggers/x", key, "a principal's trigger has its own key")
	assert.Equal(t, "pipedrive://triggers/x", PublicURI(key))
	stored, ok, err := st.Trigger(context.Background(), key)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "api_key:alice", stored.Owner)
	assert.NotContains(t, string(stored.Credential), "alice-pipedrive-token", "sealed at rest")
	_, err = m.Start(context.Background(), "pipedrive://triggers/y")
	assert.ErrorIs(t, err, ErrTooManyTriggers, "alice is at her cap")
	_, err = m.Start(context.Background(), "pipedrive://triggers/x")
	assert.NoError(t, err, "restarting an active trigger does not count twice")
	m.Close()

	// After a restart the trigger catches up, still with alice's credential.
	// Restored pollers spread their first polls over one interval: the fake clock jumps there.
	fc := clock.NewFake(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	t.Cleanup(fc.AutoAdvance(context.Background()))
	restored := NewManager(st, kinds, Options{Box: box, WithSecret: withSecret, Clock: fc})
	t.Cleanup(restored.Close)
	require.NoError(t, restored.Restore(context.Background()))
	assert.Equal(t, "alice-pipedrive-token", <-p.seen)
	mine, err := restored.Active(context.Background())
	require.NoError(t, err)
	assert.Empty(t, mine, "the server's scope does not list alice's trigger")
	all, err := restored.ActiveAll(context.Background())
	require.NoError(t, err)
	assert.Len(t, all, 1)
}

// Issue finding 5 (restart burst): restored pollers spread their first
// polls over one interval instead of all polling at once.
func TestRestoredPollersSpreadTheirFirstPolls(t *testing.T) {
	const interval = 120 * time.Second
	seen := map[time.Duration]bool{}
	for i := range 300 {
		d := spread(fmt.Sprintf("pipedrive://triggers/new-deals#%d", i), interval)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.Less(t, d, interval)
		seen[d/time.Second] = true
	}
	assert.Greater(t, len(seen), 60, "300 triggers land in many different seconds of the interval")
	assert.Equal(t, spread("k", interval), spread("k", interval), "fixed by the key")
	assert.Zero(t, spread("k", 0))
}
