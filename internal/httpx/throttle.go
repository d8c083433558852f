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
	if d, ok := UpstreamPause(resp, t.Budget.Clock().Now()); ok {
		t.Budget.PauseFor(d)
	}
	return resp, nil
}

// UpstreamPause reports how long the upstream asked us to stop sending:
//   - HTTP 429 with Retry-After (delay-seconds or HTTP-date): that delay;
//   - HTTP 429 without it: DefaultPause;
//   - x-ratelimit-remaining: 0 with x-ratelimit-reset: <seconds> (Pipedrive,
//     on any status): until the reset.
//
// When several apply, the longest wins. now reads an HTTP-date Retry-After.
func UpstreamPause(resp *http.Response, now time.Time) (time.Duration, bool) {
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
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("X-Ratelimit-Reset"))); err == nil && s > 0 {
			ok = true
			d = max(d, time.Duration(s)*time.Second)
		}
	}
	return d, ok
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
