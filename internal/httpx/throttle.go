// Package httpx holds the HTTP transport chain every upstream client uses:
// a RetryTransport over a ThrottleTransport, so that each attempt (retries
// included) spends one slot of the connection's throttle budget, and
// upstream rate-limit signals pause that budget.
package httpx

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	up "github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// DefaultPause is how long a budget is paused after a 429 that carries no
// Retry-After header.
const DefaultPause = 2 * time.Second

// MaxPauseOf is the longest pause an upstream signal may impose on budget:
// maxPause when positive, else one window of the budget (else
// throttle.DefaultWindow for a nil budget). An upstream asking for longer
// (a Retry-After of a year, a far-future date) is held to it.
func MaxPauseOf(budget *throttle.Budget, maxPause time.Duration) time.Duration {
	if maxPause > 0 {
		return maxPause
	}
	if budget != nil {
		if w := budget.Config().Window; w > 0 {
			return w
		}
	}
	return throttle.DefaultWindow
}

// ThrottleTransport spends one slot of Budget on every request it sends and
// pauses Budget when the upstream signals a rate limit.
//
// The request's context decides the caller's priority (throttle.WithPriority)
// and deadline. When the budget refuses, RoundTrip returns the
// *throttle.ThrottledError itself (http.Client wraps it in a *url.Error,
// through which errors.As finds it) and nothing is sent.
type ThrottleTransport struct {
	// Base sends the request; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Budget is spent from; nil means unlimited.
	Budget *throttle.Budget
	// Observe, when set, learns of every request that left: its status
	// (0 without a reply) and how long it waited for budget.
	Observe func(status int, waited time.Duration)
	// MaxPause caps every pause an upstream signal imposes (0: one window
	// of Budget, see MaxPauseOf). The reply's Retry-After and
	// x-ratelimit-reset headers are rewritten to the capped delay, so that
	// retries and the errors callers see agree with the pause taken.
	MaxPause time.Duration
}

// RoundTrip implements http.RoundTripper.
func (t *ThrottleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	if err := t.Budget.Acquire(req.Context()); err != nil {
		closeBody(req)
		return nil, err
	}
	waited := time.Since(start)
	resp, err := base(t.Base).RoundTrip(req)
	if t.Observe != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Observe(status, waited)
	}
	if err != nil {
		return nil, err
	}
	now := t.Budget.Clock().Now()
	maxPause := MaxPauseOf(t.Budget, t.MaxPause)
	if d, ok := UpstreamPause(resp, now, maxPause); ok {
		t.Budget.PauseFor(d)
	}
	ClampSignals(resp.Header, now, maxPause)
	return resp, nil
}

// UpstreamPause reports how long the upstream asked us to stop sending:
//   - HTTP 429 with Retry-After (delay-seconds or HTTP-date): that delay;
//   - HTTP 429 without it: DefaultPause;
//   - x-ratelimit-remaining: 0 with x-ratelimit-reset: <seconds> (Pipedrive,
//     on any status): until the reset.
//
// When several apply, the longest wins; the result is never negative nor
// more than maxPause (a non-positive maxPause means throttle.DefaultWindow).
// now reads an HTTP-date Retry-After.
func UpstreamPause(resp *http.Response, now time.Time, maxPause time.Duration) (time.Duration, bool) {
	if maxPause <= 0 {
		maxPause = throttle.DefaultWindow
	}
	var d time.Duration
	ok := false
	if resp.StatusCode == http.StatusTooManyRequests {
		ok = true
		d = DefaultPause
		if ra, found := up.RetryAfter(resp.Header, now); found {
			d = ra
		}
	}
	if strings.TrimSpace(resp.Header.Get("X-Ratelimit-Remaining")) == "0" {
		if s, found := up.ParseDelaySeconds(resp.Header.Get("X-Ratelimit-Reset")); found && s > 0 {
			ok = true
			d = max(d, s)
		}
	}
	return min(max(d, 0), maxPause), ok
}

// ClampSignals rewrites a reply's Retry-After and x-ratelimit-reset
// headers that ask for more than maxPause (or are malformed dates in the
// far future) to maxPause, in whole seconds rounded up, so that every
// reader of the reply (the retry transport, a connector's error) sees the
// delay the budget actually takes. Other values are left as sent.
func ClampSignals(h http.Header, now time.Time, maxPause time.Duration) {
	if maxPause <= 0 {
		maxPause = throttle.DefaultWindow
	}
	capped := strconv.FormatInt(int64((maxPause+time.Second-1)/time.Second), 10)
	if d, ok := up.RetryAfter(h, now); ok && d > maxPause {
		h.Set("Retry-After", capped)
	}
	if v := h.Get("X-Ratelimit-Reset"); v != "" {
		if d, ok := up.ParseDelaySeconds(v); ok && d > maxPause {
			h.Set("X-Ratelimit-Reset", capped)
		}
	}
}

func base(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
