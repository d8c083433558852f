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
)

func TestCacheSharesAndRenews(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var fetches atomic.Int32
	release := make(chan struct{})
	c := New(func(context.Context) (string, time.Time, error) {
		n := fetches.Add(1)
		<-release
		return "tok" + string(rune('0'+n)), UseUntil(clock(), time.Hour), nil
	}, clock)

	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], _ = c.Token(context.Background()) }()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), fetches.Load(), "concurrent callers share one fetch")
	for _, g := range got {
		assert.Equal(t, "tok1", g)
	}
	mu.Lock()
	now = now.Add(57 * time.Minute)
	mu.Unlock()
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "tok1", tok, "still valid before the early renewal")
	mu.Lock()
	now = now.Add(90 * time.Second)
	mu.Unlock()
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
	}, nil)
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
