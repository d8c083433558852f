// Package tokencache caches an OAuth access token for the connector
// clients: it hands out the cached token until it is due for renewal, lets
// concurrent callers share one fetch, and drops a token the API rejected.
package tokencache

import (
	"context"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// RefreshEarly is how long before expiry a token is replaced.
const RefreshEarly = 2 * time.Minute

// FetchTimeout bounds one shared fetch.
const FetchTimeout = time.Minute

// FetchFunc gets a new token and the time to stop using it.
type FetchFunc func(ctx context.Context) (token string, useUntil time.Time, err error)

// Cache holds one token. It is safe for concurrent use.
type Cache struct {
	fetch FetchFunc
	clock clock.Clock

	mu       sync.Mutex
	token    string
	useUntil time.Time
	inflight *fetchCall
}

type fetchCall struct {
	done  chan struct{}
	token string
	err   error
}

// New returns a cache that fetches with fetch and tells expiry by c (nil
// means the real clock).
func New(fetch FetchFunc, c clock.Clock) *Cache {
	return &Cache{fetch: fetch, clock: clock.OrReal(c)}
}

// Token returns the cached token, or waits for a fresh one. The fetch
// outlives the caller that started it, so a caller giving up does not fail
// the others waiting on it; failures are not cached.
func (c *Cache) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	if c.token != "" && c.clock.Now().Before(c.useUntil) {
		t := c.token
		c.mu.Unlock()
		return t, nil
	}
	f := c.inflight
	if f == nil {
		f = &fetchCall{done: make(chan struct{})}
		c.inflight = f
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FetchTimeout)
		go func() {
			defer cancel()
			token, until, err := c.fetch(fctx)
			c.mu.Lock()
			if err == nil {
				c.token, c.useUntil = token, until
			}
			c.inflight = nil
			c.mu.Unlock()
			f.token, f.err = token, err
			close(f.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Invalidate drops the cached token if it is still token (so many
// concurrent 401s cannot throw away a token that was just renewed).
func (c *Cache) Invalidate(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token, c.useUntil = "", time.Time{}
	}
}

// UseUntil is when to replace a token issued at start that lives for life:
// RefreshEarly before it expires, or halfway through its life if shorter.
func UseUntil(start time.Time, life time.Duration) time.Time {
	return start.Add(life - min(RefreshEarly, life/2))
}
