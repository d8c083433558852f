package tokencache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// waitingCtx is a context that reports the first time the code under test
// asks for its Done channel: Token does so only once the caller has joined a
// fetch and waits for it.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan<- struct{}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { c.waiting <- struct{}{} })
	return c.Context.Done()
}

func TestCacheSharesAndRenews(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var fetches atomic.Int32
	release := make(chan struct{})
	c := New(func(context.Context) (string, time.Time, error) {
		n := fetches.Add(1)
		<-release
		return "tok" + string(rune('0'+n)), UseUntil(clk.Now(), time.Hour), nil
	}, clk)

	var wg sync.WaitGroup
	got := make([]string, 10)
	waiting := make(chan struct{}, len(got))
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = c.Token(&waitingCtx{Context: context.Background(), waiting: waiting})
		}()
	}
	// Every caller waits on the fetch before it may complete.
	for range got {
		<-waiting
	}
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), fetches.Load(), "concurrent callers share one fetch")
	for _, g := range got {
		assert.Equal(t, "tok1", g)
	}
	clk.Advance(57 * time.Minute)
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "tok1", tok, "still valid before the early renewal")
	clk.Advance(90 * time.Second)
	tok, _ = c.Token(context.Background())
	assert.Equal(t, "tok2", tok, "renewed 2 minutes before expiry")

	c.Invalidate("stale")
	tok, _ = c.Token(context.Background())
	assert.Equal(t, "tok2", tok, "invalidating another token keeps this one")
	c.Invalidate("tok2")
	tok, _ = c.Token(context.Background())
	assert.Equal(t, "tok3", tok)
}

func TestCacheDoesNotCacheFailures(t *testing.T) {
	fail := true
	c := New(func(context.Context) (string, time.Time, error) {
		if fail {
			return "", time.Time{}, errors.New("boom")
		}
		return "ok", time.Now().Add(time.Hour), nil
	}, nil) // nil: the real clock
	_, err := c.Token(context.Background())
	require.Error(t, err)
	fail = false
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "ok", tok)
}

func TestUseUntil(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, start.Add(58*time.Minute), UseUntil(start, time.Hour))
	assert.Equal(t, start.Add(30*time.Second), UseUntil(start, time.Minute), "short-lived: halfway")
}
