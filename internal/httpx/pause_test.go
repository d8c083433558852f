package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	up "github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// hostileDelays are upstream wait signals that once froze a connection for
// a year or overflowed the arithmetic on them.
var hostileDelays = map[string][]string{
	"Retry-After a year":               {"Retry-After", "31536000"},
	"Retry-After beyond int64":         {"Retry-After", "9223372036854775808000"},
	"Retry-After far-future HTTP-date": {"Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"},
	"x-ratelimit-reset a year":         {"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "31536000"},
}

// issue finding 6: hostile Retry-After — a 429 asking for a year (or a
// far-future date) pauses the connection for one budget window, the budget's
// status shows a sane positive number, and the reply a caller sees asks for
// no more than that.
func TestHostileRetryAfterPausesOneWindow(t *testing.T) {
	for name, headers := range hostileDelays {
		t.Run(name, func(t *testing.T) {
			u := newUpstream(t, status(429, headers...))
			b, _ := fakeBudget(throttle.Config{})
			client := &http.Client{Transport: &ThrottleTransport{Budget: b}}
			r := wait(t, do(client, get(t, u.URL)))
			require.NoError(t, r.err)

			st := b.Status()
			assert.Equal(t, t0.Add(throttle.DefaultWindow), st.PausedUntil, "the pause is the clamp: one window")
			assert.Equal(t, 60, st.ResetSeconds(), "throttle status shows a sane positive number")
			raw, err := st.MarshalJSON()
			require.NoError(t, err)
			var fields map[string]any
			require.NoError(t, json.Unmarshal(raw, &fields))
			for k, v := range fields {
				if n, isNum := v.(float64); isNum {
					assert.GreaterOrEqual(t, n, 0.0, "%s: no negative (overflowed) number in the status: %s", k, raw)
				}
			}

			// Every later reader of the reply sees the clamped delay.
			if r.resp.Header.Get("Retry-After") != "" {
				assert.Equal(t, "60", r.resp.Header.Get("Retry-After"))
				d, ok := up.RetryAfter(r.resp.Header, t0)
				assert.True(t, ok)
				assert.Equal(t, time.Minute, d)
			}
			if r.resp.Header.Get("X-Ratelimit-Reset") != "" {
				assert.Equal(t, "60", r.resp.Header.Get("X-Ratelimit-Reset"))
			}
		})
	}
}

// issue finding 6: hostile Retry-After — the maximum is an option of the
// chain (the server's --max-upstream-pause), and the pause follows a
// budget's own window when none is given.
func TestMaxPauseIsConfigurable(t *testing.T) {
	u := newUpstream(t, status(429, "Retry-After", "31536000"))

	b, _ := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: &ThrottleTransport{Budget: b, MaxPause: 5 * time.Second}}
	r := wait(t, do(client, get(t, u.URL)))
	require.NoError(t, r.err)
	assert.Equal(t, t0.Add(5*time.Second), b.Status().PausedUntil)

	b2, _ := fakeBudget(throttle.Config{Window: 10 * time.Second})
	client = &http.Client{Transport: &ThrottleTransport{Budget: b2}}
	r = wait(t, do(client, get(t, u.URL)))
	require.NoError(t, r.err)
	assert.Equal(t, t0.Add(10*time.Second), b2.Status().PausedUntil, "default: one window of the budget")
	assert.Equal(t, "10", r.resp.Header.Get("Retry-After"))

	assert.Equal(t, throttle.DefaultWindow, MaxPauseOf(nil, 0))
	assert.Equal(t, 10*time.Second, MaxPauseOf(b2, 0))
	assert.Equal(t, time.Second, MaxPauseOf(b2, time.Second))
}

// issue finding 6: hostile Retry-After — the retry transport never waits
// longer than the maximum either: with a maximum below its MaxDelay it
// retries after the maximum, not after a year.
func TestRetryWaitIsClamped(t *testing.T) {
	u := newUpstream(t, status(429, "Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"), ok200)
	b, fc := fakeBudget(throttle.Config{})
	client := &http.Client{Transport: ChainWith(b, nil, Options{MaxPause: 3 * time.Second})}
	res := do(client, get(t, u.URL))
	advanceWhenWaiting(t, fc, 3*time.Second-time.Millisecond)
	assert.Len(t, u.Hits(), 1)
	fc.Advance(time.Millisecond)
	r := wait(t, res)
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.resp.StatusCode)
	assert.Len(t, u.Hits(), 2)

	// Standalone, a RetryTransport clamps to throttle.DefaultWindow, which is
	// beyond its MaxDelay: it hands the 429 back at once.
	rt := &RetryTransport{Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		h := http.Header{"Retry-After": {strconv.Itoa(365 * 24 * 3600)}}
		return &http.Response{StatusCode: 429, Header: h, Body: http.NoBody}, nil
	})}
	resp, err := rt.RoundTrip(get(t, "http://upstream.invalid/"))
	require.NoError(t, err)
	assert.Equal(t, 429, resp.StatusCode)
}
