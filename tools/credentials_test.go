package tools_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/metrics"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

var start = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// client stands for an upstream client: it knows its connection and spends
// from that connection's budget on every call, as the transport does.
type client struct {
	connection string
	budgets    *throttle.Registry
	metrics    *metrics.Metrics
}

// call spends one request of the client's budget, as the transport would,
// and counts it as an upstream exchange the upstream refused (401).
func (c *client) call(ctx context.Context) error {
	b, err := c.budgets.Get(c.connection)
	if err != nil {
		return err
	}
	if err := b.Acquire(ctx); err != nil {
		return err
	}
	if c.metrics != nil {
		c.metrics.ObserveUpstream(c.connection, 401, 0)
	}
	return nil
}

func withToken(token string) context.Context {
	return tools.WithCredential(context.Background(), "pipedrive", token)
}

func TestPoolServesEachCredentialItsOwnClient(t *testing.T) {
	fallback := &client{connection: "pipedrive"}
	made := 0
	p := tools.NewPool("pipedrive", fallback, func(connection, _ string) *client {
		made++
		return &client{connection: connection}
	})
	assert.Same(t, fallback, p.For(context.Background()))
	a := p.For(withToken("token-a"))
	assert.Same(t, a, p.For(withToken("token-a")))
	b := p.For(withToken("token-b"))
	assert.NotSame(t, a, b)
	assert.Equal(t, tools.ConnectionName("pipedrive", "token-a"), a.connection)
	assert.Equal(t, tools.ConnectionOf(withToken("token-b"), "pipedrive"), b.connection)
	assert.Equal(t, "pipedrive", tools.ConnectionOf(context.Background(), "pipedrive"))
	assert.Equal(t, 2, made)
	assert.Equal(t, 2, p.Len())
}

// issue finding 5: per-credential state bounded — a client unused for the
// idle TTL is dropped (on the injected clock) and made again when needed.
func TestPoolDropsIdleClients(t *testing.T) {
	fc := clock.NewFake(start)
	made := map[string]int{}
	p := tools.NewPool("pipedrive", &client{}, func(connection, _ string) *client {
		made[connection]++
		return &client{connection: connection}
	}, tools.WithIdleTTL(10*time.Minute), tools.WithCacheClock(fc))
	p.For(withToken("token-a"))
	fc.Advance(5 * time.Minute)
	p.For(withToken("token-b"))
	fc.Advance(5 * time.Minute)
	assert.Equal(t, 1, p.Len(), "a idle for 10 minutes")
	fc.Advance(5 * time.Minute)
	assert.Zero(t, p.Len())
	p.For(withToken("token-a"))
	assert.Equal(t, 2, made[tools.ConnectionName("pipedrive", "token-a")])
}

// issue finding 5: when full, the pool drops its least recently used
// client — never all of them, so active callers keep theirs.
func TestPoolFullDropsLeastRecentlyUsed(t *testing.T) {
	fc := clock.NewFake(start)
	p := tools.NewPool("pipedrive", &client{}, func(connection, _ string) *client {
		return &client{connection: connection}
	}, tools.WithMaxEntries(10), tools.WithCacheClock(fc))
	active := p.For(withToken("active"))
	for i := range 1000 {
		p.For(withToken(fmt.Sprint("flood-", i)))
		fc.Advance(time.Millisecond)
		if i%5 == 0 {
			require.Same(t, active, p.For(withToken("active")), "after %d others", i)
		}
		require.LessOrEqual(t, p.Len(), 10)
	}
}

// issue finding 5: PerClient is bounded the same way.
func TestPerClientBounded(t *testing.T) {
	fc := clock.NewFake(start)
	pc := tools.NewPerClient(func(c *client) map[string]int { return map[string]int{} },
		tools.WithMaxEntries(3), tools.WithIdleTTL(time.Minute), tools.WithCacheClock(fc))
	clients := make([]*client, 10)
	for i := range clients {
		clients[i] = &client{connection: fmt.Sprint("pipedrive:", i)}
		pc.Get(clients[i])["seen"]++
	}
	assert.Equal(t, 3, pc.Len())
	assert.Equal(t, 1, pc.Get(clients[9])["seen"], "the most recent ones are kept")
	assert.Zero(t, pc.Get(clients[0])["seen"], "the oldest was dropped and made anew")
	fc.Advance(time.Minute)
	assert.Zero(t, pc.Len())
}

// scrapeSeries counts the cosell_ series /metrics serves (a histogram once,
// by its _count line).
func scrapeSeries(t *testing.T, m *metrics.Metrics) int {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	n := 0
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), "{")
		if strings.HasPrefix(name, "cosell_") && !strings.HasSuffix(name, "_bucket") && !strings.HasSuffix(name, "_sum") {
			n++
		}
	}
	require.NoError(t, sc.Err())
	return n
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// issue finding 5: per-credential state bounded — 20,000 distinct
// X-Pipedrive-Api-Token values, each making one refused (401) call, leave at
// most the cap of clients and budgets, a fixed number of metric series and
// bounded memory. Once every budget held is active the newcomers are
// refused, not added.
func TestCredentialFloodBounded(t *testing.T) {
	const flood, maxConnections = 20000, 1000
	for _, step := range []time.Duration{0, 10 * time.Millisecond, 200 * time.Millisecond} {
		t.Run(fmt.Sprint("one every ", step), func(t *testing.T) {
			fc := clock.NewFake(start)
			budgets := throttle.NewRegistry(throttle.Config{Clock: fc}, throttle.WithMaxConnections(maxConnections))
			m := metrics.New(budgets, func() int { return 0 })
			pool := tools.NewPool("pipedrive", &client{connection: "pipedrive", budgets: budgets, metrics: m},
				func(connection, _ string) *client {
					return &client{connection: connection, budgets: budgets, metrics: m}
				}, tools.WithMaxEntries(maxConnections), tools.WithCacheClock(fc))
			require.NoError(t, pool.For(context.Background()).call(context.Background()))
			seriesBefore := scrapeSeries(t, m)
			heapBefore := heapInuse()

			refused := 0
			for i := range flood {
				err := pool.For(withToken(fmt.Sprintf("stolen-or-random-%d", i))).call(context.Background())
				if errors.Is(err, throttle.ErrTooManyConnections) {
					refused++
				} else {
					require.NoError(t, err)
				}
				fc.Advance(step)
			}
			require.NoError(t, pool.For(context.Background()).call(context.Background()), "the server's own connection is never refused")

			heapAfter := heapInuse()
			series := scrapeSeries(t, m)
			st := budgets.Stats()
			growth := int64(heapAfter) - int64(heapBefore)
			t.Logf("%d credentials: %d clients, %d budgets held (%d evicted, %d refused), %d -> %d cosell_ series, HeapInuse %+d bytes",
				flood, pool.Len(), st.Callers, st.Evicted, refused, seriesBefore, series, growth)
			assert.LessOrEqual(t, pool.Len(), maxConnections)
			assert.LessOrEqual(t, st.Callers, maxConnections)
			assert.Equal(t, refused, int(st.Refused))
			assert.LessOrEqual(t, series, seriesBefore+4, "one upstream status, one wait, two caller gauges")
			assert.Less(t, growth, int64(24<<20), "memory growth bounded")
			runtime.KeepAlive(pool)
		})
	}
}

// issue finding 5: an active budget with grants in its window is never
// evicted: under pressure from new credentials (which drop its pooled
// client) its limit still holds, for the new client as for the old.
func TestActiveBudgetSurvivesEvictionPressure(t *testing.T) {
	fc := clock.NewFake(start)
	budgets := throttle.NewRegistry(throttle.Config{Limit: 5, Window: time.Minute, MaxWait: -1, Clock: fc},
		throttle.WithMaxConnections(100))
	pool := tools.NewPool("pipedrive", &client{}, func(connection, _ string) *client {
		return &client{connection: connection, budgets: budgets}
	}, tools.WithMaxEntries(100), tools.WithCacheClock(fc))
	active := withToken("active")
	first := pool.For(active)
	for range 5 {
		require.NoError(t, first.call(active))
	}
	budget, err := budgets.Get(first.connection)
	require.NoError(t, err)

	for i := range 5000 {
		_ = pool.For(withToken(fmt.Sprint("flood-", i))).call(context.Background())
		fc.Advance(time.Millisecond) // 5 s in all: the active window still holds its grants
	}
	again := pool.For(active)
	assert.NotSame(t, first, again, "its client was dropped from the pool")
	var thr *throttle.ThrottledError
	require.ErrorAs(t, again.call(active), &thr, "the limit holds across eviction")
	same, err := budgets.Get(first.connection)
	require.NoError(t, err)
	assert.Same(t, budget, same, "never evicted")
	assert.Equal(t, 5, same.Status().Used)

	fc.Advance(time.Minute)
	require.NoError(t, again.call(active), "the next window")
}
