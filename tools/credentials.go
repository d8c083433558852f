package tools

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

type credentialKey struct{ connector string }

// WithCredential attaches a caller's own credential for a connector (HTTP
// mode, from request headers) to the request context.
func WithCredential(ctx context.Context, connector, secret string) context.Context {
	if secret == "" {
		return ctx
	}
	return context.WithValue(ctx, credentialKey{connector}, secret)
}

// Credential returns the caller's own credential for a connector, if any.
func Credential(ctx context.Context, connector string) string {
	s, _ := ctx.Value(credentialKey{connector}).(string)
	return s
}

// ConnectionName names the connection of a credential without revealing
// it: "pipedrive" for the server's own, "pipedrive:<hash prefix>" for a
// caller's.
func ConnectionName(connector, secret string) string {
	if secret == "" {
		return connector
	}
	sum := sha256.Sum256([]byte(connector + "\x00" + secret))
	return connector + ":" + hex.EncodeToString(sum[:6])
}

// ConnectionOf returns the connection a call spends from for connector:
// that of the caller's own credential (ConnectionName), or the bare
// connector name for the server's own.
func ConnectionOf(ctx context.Context, connector string) string {
	return ConnectionName(connector, Credential(ctx, connector))
}

// Default bounds of per-connection state: the same as the throttle
// registry's, so that clients, caches and budgets are dropped alike.
const (
	DefaultMaxConnections    = throttle.DefaultMaxConnections
	DefaultConnectionIdleTTL = throttle.DefaultIdleTTL
)

// CacheOption bounds per-connection state: a Pool, a PerClient or an
// IdleCache.
type CacheOption func(*cacheConfig)

type cacheConfig struct {
	max   int
	ttl   time.Duration
	clock clock.Clock
}

// WithMaxEntries keeps at most n entries, dropping the least recently used
// one to make room (DefaultMaxConnections when n <= 0).
func WithMaxEntries(n int) CacheOption {
	return func(c *cacheConfig) {
		if n > 0 {
			c.max = n
		}
	}
}

// WithIdleTTL drops an entry unused for d (DefaultConnectionIdleTTL when
// d <= 0).
func WithIdleTTL(d time.Duration) CacheOption {
	return func(c *cacheConfig) {
		if d > 0 {
			c.ttl = d
		}
	}
}

// WithCacheClock tells idleness on c (the real clock when nil).
func WithCacheClock(c clock.Clock) CacheOption {
	return func(cfg *cacheConfig) {
		if c != nil {
			cfg.clock = c
		}
	}
}

// IdleCache keeps values by key: a value unused for its idle TTL is
// dropped, and when it holds its maximum the least recently used one makes
// room. Expiry is lazy, on access; no goroutine runs. It is safe for
// concurrent use.
type IdleCache[K comparable, V any] struct {
	cfg cacheConfig

	mu    sync.Mutex
	items map[K]*list.Element // of *idleItem[K, V]
	order list.List           // front = most recently used
}

type idleItem[K comparable, V any] struct {
	key  K
	val  V
	used time.Time
}

// NewIdleCache returns an empty cache bounded by opts.
func NewIdleCache[K comparable, V any](opts ...CacheOption) *IdleCache[K, V] {
	cfg := cacheConfig{max: DefaultMaxConnections, ttl: DefaultConnectionIdleTTL, clock: clock.Real()}
	for _, o := range opts {
		o(&cfg)
	}
	return &IdleCache[K, V]{cfg: cfg, items: map[K]*list.Element{}}
}

// Get returns the value of key, if held, and marks it used.
func (c *IdleCache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(key, c.cfg.clock.Now())
}

// Put holds v under key, making room if needed.
func (c *IdleCache[K, V]) Put(key K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.clock.Now()
	if el, ok := c.items[key]; ok {
		it := el.Value.(*idleItem[K, V])
		it.val, it.used = v, now
		c.order.MoveToFront(el)
		return
	}
	c.putLocked(key, v, now)
}

// GetOrCreate returns the value of key, made by create (with the cache
// locked, so at most once per key while it is held) if it is not held.
func (c *IdleCache[K, V]) GetOrCreate(key K, create func() V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.clock.Now()
	if v, ok := c.getLocked(key, now); ok {
		return v
	}
	v := create()
	c.putLocked(key, v, now)
	return v
}

// Len returns the number of values held, after dropping idle ones.
func (c *IdleCache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(c.cfg.clock.Now())
	return c.order.Len()
}

func (c *IdleCache[K, V]) getLocked(key K, now time.Time) (V, bool) {
	c.expireLocked(now)
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	it := el.Value.(*idleItem[K, V])
	it.used = now
	c.order.MoveToFront(el)
	return it.val, true
}

func (c *IdleCache[K, V]) putLocked(key K, v V, now time.Time) {
	c.expireLocked(now)
	for c.order.Len() >= c.cfg.max {
		c.removeLocked(c.order.Back())
	}
	c.items[key] = c.order.PushFront(&idleItem[K, V]{key: key, val: v, used: now})
}

// expireLocked drops the values unused for the idle TTL, oldest first.
func (c *IdleCache[K, V]) expireLocked(now time.Time) {
	for el := c.order.Back(); el != nil && now.Sub(el.Value.(*idleItem[K, V]).used) >= c.cfg.ttl; el = c.order.Back() {
		c.removeLocked(el)
	}
}

func (c *IdleCache[K, V]) removeLocked(el *list.Element) {
	delete(c.items, el.Value.(*idleItem[K, V]).key)
	c.order.Remove(el)
}

// Pool keeps one client per caller credential, created on first use; the
// server's own client serves callers without one. Clients unused for the
// idle TTL are dropped, and at most the maximum are kept (the least
// recently used makes room), so a flood of distinct credentials cannot grow
// it. A dropped client is simply made again on the next use; its
// connection's budget lives in the throttle registry, which hands the same
// budget to the new client.
type Pool[C any] struct {
	connector string
	fallback  C
	make      func(connection, secret string) C
	clients   *IdleCache[string, C]
}

// NewPool returns a pool whose default client is fallback and whose
// per-credential clients come from make (given the connection name, for
// its budget, and the secret), bounded by opts.
func NewPool[C any](connector string, fallback C, make func(connection, secret string) C, opts ...CacheOption) *Pool[C] {
	return &Pool[C]{connector: connector, fallback: fallback, make: make, clients: NewIdleCache[string, C](opts...)}
}

// For returns the client of the caller's credential, or the default one.
func (p *Pool[C]) For(ctx context.Context) C {
	secret := Credential(ctx, p.connector)
	if secret == "" || p.make == nil {
		return p.fallback
	}
	name := ConnectionName(p.connector, secret)
	return p.clients.GetOrCreate(name, func() C { return p.make(name, secret) })
}

// Len returns the number of per-credential clients held.
func (p *Pool[C]) Len() int { return p.clients.Len() }

// PerClient keeps one value (typically a cache) per client, created on
// first use, so callers with their own credentials never share it. Values
// are bounded like a Pool's clients (idle TTL, maximum, least recently used
// first).
type PerClient[C comparable, V any] struct {
	make   func(C) V
	values *IdleCache[C, V]
}

// NewPerClient returns an empty PerClient whose values come from make,
// bounded by opts.
func NewPerClient[C comparable, V any](make func(C) V, opts ...CacheOption) *PerClient[C, V] {
	return &PerClient[C, V]{make: make, values: NewIdleCache[C, V](opts...)}
}

// Get returns the value of client c.
func (p *PerClient[C, V]) Get(c C) V {
	return p.values.GetOrCreate(c, func() V { return p.make(c) })
}

// Len returns the number of values held.
func (p *PerClient[C, V]) Len() int { return p.values.Len() }
