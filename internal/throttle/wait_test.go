package throttle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type waitKey struct{}

// waitLog records what a WaitHook sees.
type waitLog struct {
	mu    sync.Mutex
	began []string // connection and the context's marker, at the start of each wait
	ended []Wait
}

func (l *waitLog) hook(ctx context.Context, connection string) func(Wait) {
	marker, _ := ctx.Value(waitKey{}).(string)
	l.mu.Lock()
	l.began = append(l.began, connection+"/"+marker)
	l.mu.Unlock()
	return func(w Wait) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ended = append(l.ended, w)
	}
}

func (l *waitLog) snapshot() ([]string, []Wait) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.began...), append([]Wait(nil), l.ended...)
}

func TestOnWaitObservesGrantsAndRefusals(t *testing.T) {
	var log waitLog
	b, fc := newFakeBudget("pipedrive", Config{Limit: 1, Window: time.Minute, MaxWait: 30 * time.Second, OnWait: log.hook})
	ctx := context.WithValue(context.Background(), waitKey{}, "call-1")

	// Granted at once: waited nothing.
	s, err := b.AcquireSlot(ctx)
	require.NoError(t, err)
	s.Done()

	// The only slot counts for a minute: a background caller waits for it.
	bg := WithPriority(context.WithValue(context.Background(), waitKey{}, "poll"), Background)
	res := acquireAsync(t, bg, b)
	requireWaiting(t, b, 1)
	fc.Advance(time.Minute)
	require.NoError(t, receive(t, res))

	// An interactive caller whose turn is beyond MaxWait is refused at once.
	_, err = b.AcquireSlot(ctx)
	var te *ThrottledError
	require.ErrorAs(t, err, &te)

	began, ended := log.snapshot()
	assert.Equal(t, []string{"pipedrive/call-1", "pipedrive/poll", "pipedrive/call-1"}, began)
	require.Len(t, ended, 3)
	assert.Equal(t, Wait{Priority: Interactive}, ended[0])
	assert.Equal(t, Wait{Priority: Background, Waited: time.Minute}, ended[1])
	assert.Equal(t, Interactive, ended[2].Priority)
	assert.Zero(t, ended[2].Waited)
	assert.Same(t, te, ended[2].Err)
}

func TestOnWaitSeesTheCallerGiveUp(t *testing.T) {
	var log waitLog
	b, _ := newFakeBudget("workspan", Config{Limit: 1, Window: time.Minute, OnWait: log.hook})
	require.NoError(t, b.Acquire(context.Background()))

	ctx, cancel := context.WithCancel(WithPriority(context.Background(), Background))
	res := acquireAsync(t, ctx, b)
	requireWaiting(t, b, 1)
	cancel()
	require.ErrorIs(t, receive(t, res), context.Canceled)

	_, ended := log.snapshot()
	require.Len(t, ended, 2)
	assert.True(t, errors.Is(ended[1].Err, context.Canceled), "%v", ended[1].Err)
}

func TestOnWaitMayDeclineAWait(t *testing.T) {
	calls := 0
	b, _ := newFakeBudget("pipedrive", Config{OnWait: func(context.Context, string) func(Wait) { calls++; return nil }})
	s, err := b.AcquireSlot(context.Background())
	require.NoError(t, err)
	s.Done()
	assert.Equal(t, 1, calls)
}
