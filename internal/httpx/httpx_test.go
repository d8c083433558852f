package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

type hit struct {
	method, body, requestID string
}

// upstream is an httptest server that answers with the scripted handlers in
// turn (the last one repeats) and records every request it receives.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

func newUpstream(t *testing.T, script ...http.HandlerFunc) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		n := len(u.hits)
		u.hits = append(u.hits, hit{r.Method, string(body), r.Header.Get("MS-RequestId")})
		u.mu.Unlock()
		script[min(n, len(script)-1)](w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) Hits() []hit {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]hit(nil), u.hits...)
}

func status(code int, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

var ok200 = status(http.StatusOK)

func fakeBudget(cfg throttle.Config) (*throttle.Budget, *clock.Fake) {
	fc := clock.NewFake(t0)
	cfg.Clock = fc
	return throttle.New("pipedrive", cfg), fc
}

// hangGuard bounds every wait for another goroutine. It is not a time
// budget: the waits end on events, and the guard only turns a hang into a
// failure.
const hangGuard = time.Minute

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

type result struct {
	resp *http.Response
	body string
	err  error
}

// do sends req in a goroutine, so the test can move the fake clock while the
// transport waits on it.
func do(c *http.Client, req *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := c.Do(req)
		r := result{resp: resp, err: err}
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			r.body = string(b)
		}
		ch <- r
	}()
	return ch
}

func wait(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(hangGuard):
		t.Fatal("request did not finish")
		return result{}
	}
}

// drive moves the fake clock on by step whenever something waits on it,
// until the request finishes. (A single Advance may fire several back-off
// timers, because a timer armed while Advance runs fires in the same call
// if it falls due before Advance's target; so tests do not count timers.)
func drive(t *testing.T, fc *clock.Fake, ch <-chan result, step time.Duration) result {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	finished := make(chan result, 1)
	go func() {
		defer cancel() // ends the wait for timers below
		select {
		case r := <-ch:
			finished <- r
		case <-ctx.Done():
		}
	}()
	// Blocks until a timer is armed or the request has finished.
	for fc.WaitForWaiters(ctx, 1) == nil {
		fc.Advance(step)
	}
	select {
	case r := <-finished:
		return r
	default:
		t.Fatal("request did not finish")
		return result{}
	}
}

// advanceWhenWaiting moves the fake clock by d as soon as something waits on it.
func advanceWhenWaiting(t *testing.T, fc *clock.Fake, d time.Duration) {
	t.Helper()
	require.NoError(t, fc.WaitForWaiters(testCtx(t), 1))
	fc.Advance(d)
}

func get(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	return req
}

func TestBudgetSpentPerAttempt(t *testing.T) {
	u := newUpstream(t, status(503), status(502), ok200)
	b, fc := fakeBudget(throttle.Config{Limit: 10})
	client := &http.Client{Transport: Chain(b, nil)}

	r := drive(t, fc, do(client, get(t, u.URL)), 100*time.Millisecond)
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.resp.StatusCode)
	assert.Len(t, u.Hits(), 3)
	assert.Equal(t, 3, b.Status().Used, "every attempt spends budget")
}

func TestRetriesExhaustedReturnsLastResponse(t *testing.T) {
	u := newUpstream(t, status(504))
	b, fc := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: Chain(b, nil)}
	r := drive(t, fc, do(client, get(t, u.URL)), 100*time.Millisecond)
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusGatewayTimeout, r.resp.StatusCode)
	assert.Equal(t, "Gateway Timeout", r.body, "the last body is left readable")
	assert.Len(t, u.Hits(), 1+DefaultMaxRetries)
}

func TestBudgetRefusalSurfacesAsThrottledError(t *testing.T) {
	u := newUpstream(t, ok200)
	b, _ := fakeBudget(throttle.Config{Limit: 5, MaxWait: -1})
	client := NewClient(b, time.Hour) // a timeout that is never reached: errors pass its wrapping

	var okCount, throttled atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(u.URL)
			if err == nil {
				_ = resp.Body.Close()
				okCount.Add(1)
				return
			}
			var te *throttle.ThrottledError
			if assert.ErrorAs(t, err, &te) {
				assert.Equal(t, "pipedrive", te.Connection)
				assert.Equal(t, time.Minute, te.RetryAfter)
				throttled.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(5), okCount.Load())
	assert.Equal(t, int64(25), throttled.Load())
	assert.Len(t, u.Hits(), 5, "a refused request never leaves")
}

func TestThrottleTransport429PausesBudget(t *testing.T) {
	u := newUpstream(t, status(429, "Retry-After", "7"), ok200)
	b, fc := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: &ThrottleTransport{Budget: b}}

	r := wait(t, do(client, get(t, u.URL)))
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusTooManyRequests, r.resp.StatusCode)
	assert.Equal(t, t0.Add(7*time.Second), b.Status().PausedUntil)

	res := do(client, get(t, u.URL))
	// The budget arms its timer when the request queues for the end of
	// the pause.
	require.NoError(t, fc.WaitForWaiters(testCtx(t), 1))
	assert.Equal(t, 1, b.Status().Waiting)
	fc.Advance(7*time.Second - time.Millisecond)
	assert.Len(t, u.Hits(), 1, "nothing leaves during the pause")
	fc.Advance(time.Millisecond)
	r = wait(t, res)
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.resp.StatusCode)
	assert.Len(t, u.Hits(), 2)
}

func TestRetryHonoursRetryAfterAndPause(t *testing.T) {
	u := newUpstream(t, status(429, "Retry-After", "7"), ok200)
	b, fc := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: Chain(b, nil)}
	res := do(client, get(t, u.URL))
	advanceWhenWaiting(t, fc, 7*time.Second-time.Millisecond)
	assert.Len(t, u.Hits(), 1)
	fc.Advance(time.Millisecond)
	r := wait(t, res)
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.resp.StatusCode)
	assert.Equal(t, 2, b.Status().Used)
}

func TestUpstreamPause(t *testing.T) {
	now := time.Now()
	httpDate := func(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
	for _, tc := range []struct {
		name    string
		code    int
		headers []string
		want    time.Duration
		ok      bool
	}{
		{"429 seconds", 429, []string{"Retry-After", "12"}, 12 * time.Second, true},
		{"429 without Retry-After", 429, nil, DefaultPause, true},
		{"429 HTTP-date", 429, []string{"Retry-After", httpDate(now.Add(30 * time.Second)), "Date", httpDate(now)}, 30 * time.Second, true},
		{"429 HTTP-date beyond the maximum", 429, []string{"Retry-After", httpDate(now.Add(time.Hour)), "Date", httpDate(now)}, time.Minute, true},
		{"429 Retry-After 0", 429, []string{"Retry-After", "0"}, 0, true},
		{"pipedrive remaining 0", 200, []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "2"}, 2 * time.Second, true},
		{"pipedrive 429 longest wins", 429, []string{"Retry-After", "1", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "3"}, 3 * time.Second, true},
		{"pipedrive remaining left", 200, []string{"X-Ratelimit-Remaining", "4", "X-Ratelimit-Reset", "2"}, 0, false},
		{"503 Retry-After is not a rate limit", 503, []string{"Retry-After", "5"}, 0, false},
		{"plain 200", 200, nil, 0, false},
		// issue finding 6: hostile Retry-After — every upstream pause is held to the maximum.
		{"429 a year of seconds", 429, []string{"Retry-After", "31536000"}, time.Minute, true},
		{"429 beyond int64", 429, []string{"Retry-After", "99999999999999999999999"}, time.Minute, true},
		{"429 far-future HTTP-date", 429, []string{"Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"}, time.Minute, true},
		{"429 negative", 429, []string{"Retry-After", "-5"}, 0, true},
		{"pipedrive reset beyond int64", 200, []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "99999999999999999999999"}, time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.code, Header: http.Header{}}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				resp.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			d, ok := UpstreamPause(resp, time.Now(), time.Minute)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, d)
		})
	}
}

func TestPipedriveHeadersPauseBudget(t *testing.T) {
	u := newUpstream(t, status(200, "X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "2"))
	b, _ := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: &ThrottleTransport{Budget: b}}
	r := wait(t, do(client, get(t, u.URL)))
	require.NoError(t, r.err)
	assert.Equal(t, t0.Add(2*time.Second), b.Status().PausedUntil)
}

func TestPostWithoutIdempotencyKeyNotRetried(t *testing.T) {
	u := newUpstream(t, status(503), ok200)
	b, _ := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: Chain(b, nil)}
	req, err := http.NewRequest(http.MethodPost, u.URL, strings.NewReader(`{"title":"x"}`))
	require.NoError(t, err)
	r := wait(t, do(client, req))
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusServiceUnavailable, r.resp.StatusCode)
	assert.Len(t, u.Hits(), 1)
}

func TestPostWithRequestIDRetriedWithSameBodyAndHeader(t *testing.T) {
	u := newUpstream(t, status(503), status(429), ok200)
	b, fc := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: Chain(b, nil)}
	req, err := http.NewRequest(http.MethodPost, u.URL, bytes.NewReader([]byte(`{"name":"Contoso"}`)))
	require.NoError(t, err)
	req.Header.Set("MS-RequestId", "7f1c9a7e-0000-4000-8000-000000000001")
	// The 429 (no Retry-After) pauses the budget for DefaultPause; the
	// third attempt waits for it in the budget.
	r := drive(t, fc, do(client, req), 100*time.Millisecond)
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.resp.StatusCode)
	want := hit{http.MethodPost, `{"name":"Contoso"}`, "7f1c9a7e-0000-4000-8000-000000000001"}
	assert.Equal(t, []hit{want, want, want}, u.Hits())
	assert.Equal(t, 3, b.Status().Used)
}

func TestIdempotencyKeyWithUnreplayableBodyNotRetried(t *testing.T) {
	u := newUpstream(t, status(503), ok200)
	client := &http.Client{Transport: Chain(nil, nil)}
	req, err := http.NewRequest(http.MethodPut, u.URL, io.NopCloser(strings.NewReader("data")))
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	req.Header.Set("Idempotency-Key", "k1")
	r := wait(t, do(client, req))
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusServiceUnavailable, r.resp.StatusCode)
	assert.Len(t, u.Hits(), 1)
}

func TestReplayable(t *testing.T) {
	mk := func(method string, body io.Reader, hdr ...string) *http.Request {
		req, err := http.NewRequest(method, "http://example.invalid/", body)
		require.NoError(t, err)
		if len(hdr) == 2 {
			req.Header.Set(hdr[0], hdr[1])
		}
		return req
	}
	assert.True(t, Replayable(mk(http.MethodGet, nil)))
	assert.True(t, Replayable(mk(http.MethodHead, nil)))
	assert.True(t, Replayable(mk(http.MethodOptions, nil)))
	assert.False(t, Replayable(mk(http.MethodPost, strings.NewReader("x"))))
	assert.False(t, Replayable(mk(http.MethodPatch, strings.NewReader("x"))))
	assert.False(t, Replayable(mk(http.MethodDelete, nil)))
	assert.True(t, Replayable(mk(http.MethodPost, strings.NewReader("x"), "MS-RequestId", "id")))
	assert.True(t, Replayable(mk(http.MethodPatch, strings.NewReader("x"), "idempotency-key", "k")))
	assert.False(t, Replayable(mk(http.MethodPost, io.NopCloser(strings.NewReader("x")), "MS-RequestId", "id")))
}

func TestRetryAfterPastDeadlineReturnsResponseAsIs(t *testing.T) {
	// The deadline is far beyond how long the first attempt can take, and
	// the Retry-After further still (within MaxDelay). Waits would be on
	// the fake clock, which never moves: a wait would hang, not pass.
	u := newUpstream(t, status(503, "Retry-After", "7200"), ok200)
	fc := clock.NewFake(t0)
	client := &http.Client{Transport: &RetryTransport{Clock: fc, MaxDelay: 3 * time.Hour, MaxPause: 3 * time.Hour}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	r := wait(t, do(client, get(t, u.URL).WithContext(ctx)))
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusServiceUnavailable, r.resp.StatusCode)
	assert.Equal(t, "7200", r.resp.Header.Get("Retry-After"))
	assert.Equal(t, "Service Unavailable", r.body)
	assert.Len(t, u.Hits(), 1)
}

func TestRetryAfterBeyondMaxDelayReturnsResponseAsIs(t *testing.T) {
	u := newUpstream(t, status(429, "Retry-After", "120"), ok200)
	b, _ := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: Chain(b, nil)}
	r := wait(t, do(client, get(t, u.URL)))
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusTooManyRequests, r.resp.StatusCode)
	assert.Len(t, u.Hits(), 1)
	assert.Equal(t, t0.Add(time.Minute), b.Status().PausedUntil, "the budget still honours the pause, held to one window")
	assert.Equal(t, "60", r.resp.Header.Get("Retry-After"), "the reply asks for the pause taken")
}

func TestNetworkErrorRetried(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	b, fc := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: Chain(b, nil)}
	res := do(client, get(t, srv.URL))
	advanceWhenWaiting(t, fc, time.Second)
	r := wait(t, res)
	require.NoError(t, r.err)
	assert.Equal(t, "ok", r.body)
	assert.Equal(t, int64(2), n.Load())
	assert.Equal(t, 2, b.Status().Used)
}

func TestCancelDuringBackoffNotRetried(t *testing.T) {
	u := newUpstream(t, status(503))
	b, fc := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: Chain(b, nil)}
	ctx, cancel := context.WithCancel(context.Background())
	res := do(client, get(t, u.URL).WithContext(ctx))
	require.NoError(t, fc.WaitForWaiters(testCtx(t), 1))
	cancel()
	r := wait(t, res)
	assert.ErrorIs(t, r.err, context.Canceled)
	assert.Len(t, u.Hits(), 1)
	assert.Equal(t, 0, fc.Waiters(), "the back-off timer is stopped")
}

func TestNoRetryWhenDisabled(t *testing.T) {
	u := newUpstream(t, status(503), ok200)
	client := &http.Client{Transport: &RetryTransport{MaxRetries: -1}}
	r := wait(t, do(client, get(t, u.URL)))
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusServiceUnavailable, r.resp.StatusCode)
	assert.Len(t, u.Hits(), 1)
}

// countingBody records whether it was closed.
type countingBody struct {
	io.Reader
	closed atomic.Bool
}

func (c *countingBody) Close() error { c.closed.Store(true); return nil }

func TestDiscardedBodiesAreClosed(t *testing.T) {
	var bodies []*countingBody
	var closedBefore []bool
	var calls atomic.Int64
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if n := len(bodies); n > 0 {
			// The previous answer was discarded before this attempt.
			closedBefore = append(closedBefore, bodies[n-1].closed.Load())
		}
		body := &countingBody{Reader: strings.NewReader("busy")}
		bodies = append(bodies, body)
		code := http.StatusServiceUnavailable
		if calls.Add(1) == 3 {
			code = http.StatusOK
		}
		return &http.Response{StatusCode: code, Header: http.Header{}, Body: body, Request: req}, nil
	})
	fc := clock.NewFake(t0)
	client := &http.Client{Transport: &RetryTransport{Base: rt, Clock: fc}}
	r := drive(t, fc, do(client, get(t, "http://example.invalid/")), 100*time.Millisecond)
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.resp.StatusCode)
	assert.Equal(t, "busy", r.body)
	require.Len(t, bodies, 3)
	assert.Equal(t, []bool{true, true}, closedBefore)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	tr := &RetryTransport{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for attempt, limits := range [][2]time.Duration{
		{50 * time.Millisecond, 100 * time.Millisecond},
		{100 * time.Millisecond, 200 * time.Millisecond},
		{200 * time.Millisecond, 400 * time.Millisecond},
		{400 * time.Millisecond, 800 * time.Millisecond},
		{500 * time.Millisecond, time.Second},
		{500 * time.Millisecond, time.Second},
	} {
		for range 50 {
			d, ok := tr.delay(nil, attempt, time.Now())
			require.True(t, ok)
			require.GreaterOrEqual(t, d, limits[0], "attempt %d", attempt)
			require.LessOrEqual(t, d, limits[1], "attempt %d", attempt)
		}
	}
	d, ok := tr.delay(nil, 1000, time.Now())
	assert.True(t, ok)
	assert.LessOrEqual(t, d, time.Second)
}

func TestThrottledErrorIsNotRetried(t *testing.T) {
	var calls atomic.Int64
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, &throttle.ThrottledError{Connection: "x", RetryAfter: time.Second}
	})
	_, err := (&RetryTransport{Base: rt}).RoundTrip(get(t, "http://example.invalid/"))
	var te *throttle.ThrottledError
	require.True(t, errors.As(err, &te))
	assert.Equal(t, int64(1), calls.Load())
}

func TestNewClient(t *testing.T) {
	b := throttle.New("workspan", throttle.Config{})
	c := NewClient(b, 10*time.Minute)
	assert.Equal(t, 10*time.Minute, c.Timeout)
	rt, ok := c.Transport.(*RetryTransport)
	require.True(t, ok)
	tt, ok := rt.Base.(*ThrottleTransport)
	require.True(t, ok)
	assert.Same(t, b, tt.Budget)
	assert.Nil(t, tt.Base, "sends through http.DefaultTransport")

	u := newUpstream(t, ok200)
	resp, err := c.Get(u.URL)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, 1, b.Status().Used)
}
