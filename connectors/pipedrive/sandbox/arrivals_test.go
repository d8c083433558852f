package sandbox

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every request is recorded per credential at its arrival, by the sandbox's
// clock, whatever its outcome.
func TestArrivalsAreRecordedPerCredential(t *testing.T) {
	e := newEnv(t, Options{})
	e.do("GET", "/api/v2/deals/1", nil).ok(t)
	e.clock.Advance(time.Second)
	e.do("GET", "/api/v2/nothing-here", nil)
	e.clock.Advance(time.Second)
	e.doToken("GET", "/api/v2/deals/1", nil, "wrong-token")
	e.doToken("GET", "/api/v2/deals/1", nil, UserTokenPrefix+"ann").ok(t)

	assert.Equal(t, []time.Time{testNow, testNow.Add(time.Second)}, e.srv.Arrivals(DefaultToken))
	assert.Equal(t, []time.Time{testNow.Add(2 * time.Second)}, e.srv.Arrivals("wrong-token"), "a refused token is counted too")
	assert.Len(t, e.srv.Arrivals(UserTokenPrefix+"ann"), 1)
	assert.Empty(t, e.srv.Arrivals("never-seen"))
	assert.Equal(t, 4, e.srv.RequestCount())

	assert.Equal(t, 2, e.srv.MaxInWindow(DefaultToken, 2*time.Second))
	assert.Equal(t, 1, e.srv.MaxInWindow(DefaultToken, time.Second), "the window is half-open")
	assert.Zero(t, e.srv.MaxInWindow("never-seen", time.Minute))
}

// With EnforceBudget, a credential past Limit requests in a rolling Window
// gets the gateway's 429 with Retry-After, before authentication or the
// burst limit; other credentials are unaffected, and the refused requests
// count.
func TestEnforceBudget(t *testing.T) {
	e := newEnv(t, Options{EnforceBudget: BudgetLimit{Limit: 3, Window: time.Minute}})
	for range 3 {
		e.do("GET", "/api/v2/deals/1", nil).ok(t)
		e.clock.Advance(10 * time.Second)
	}
	// At 30s: the 4th request in (−30s, 30s].
	r := e.do("GET", "/api/v2/deals/1", nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	// The refused request counts too, so a 5th is admitted at 70s, once
	// the arrivals at 0s and 10s have left its window.
	assert.Equal(t, "40", r.header.Get("Retry-After"))
	assert.Equal(t, map[string]any{"statusCode": 429.0, "message": "Rate limit is exceeded. Try again in 40 seconds."}, r.body)
	assert.Empty(t, r.header.Get("x-ratelimit-remaining"), "the gateway answers, not Pipedrive")
	assert.Equal(t, 1, e.srv.GatewayRefusals(DefaultToken))

	// Another credential has its own count; a bad token is counted and
	// refused by the gateway like any other once past the limit.
	e.doToken("GET", "/api/v2/deals/1", nil, UserTokenPrefix+"bob").ok(t)
	for range 3 {
		e.doToken("GET", "/api/v2/deals/1", nil, "bad").failed(t, http.StatusUnauthorized)
	}
	assert.Equal(t, http.StatusTooManyRequests, e.doToken("GET", "/api/v2/deals/1", nil, "bad").status)

	// Coming back early is refused: at 60s the window (0s, 60s] still
	// holds the arrivals at 10s, 20s and the refused one at 30s.
	e.clock.Advance(30 * time.Second)
	r = e.do("GET", "/api/v2/deals/1", nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "20", r.header.Get("Retry-After"))
	e.clock.Advance(20 * time.Second) // 80s: (20s, 80s] holds 30s and 60s
	e.do("GET", "/api/v2/deals/1", nil).ok(t)
	assert.Equal(t, 2, e.srv.GatewayRefusals(DefaultToken))
	assert.Equal(t, 4, e.srv.MaxInWindow(DefaultToken, time.Minute), "what a strict upstream would have had to admit")
}
