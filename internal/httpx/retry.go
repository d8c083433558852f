package httpx

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	up "github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// Defaults of RetryTransport.
const (
	DefaultMaxRetries = 2
	DefaultBaseDelay  = 250 * time.Millisecond
	DefaultMaxDelay   = 30 * time.Second
)

// RetryTransport retries requests that are safe to repeat when the upstream
// is overloaded or unreachable.
//
// A request is safe to repeat if its method is GET, HEAD or OPTIONS, or if it
// carries an MS-RequestId or Idempotency-Key header (the upstream then
// de-duplicates it), and its body can be replayed (no body, or GetBody is
// set, as http.NewRequest does for in-memory bodies). Other requests are
// sent exactly once.
//
// It retries on 429, 502, 503 and 504 responses and on transport errors,
// but not when the request's context has ended nor when the throttle budget
// refused the request. It waits as the response's Retry-After says, or else
// backs off exponentially from BaseDelay with jitter. If the wait would end
// after the context's deadline, or a Retry-After exceeds MaxDelay, it
// returns the last response (or error) as is, for the caller to map.
// Discarded response bodies are drained and closed.
type RetryTransport struct {
	// Base sends each attempt; nil means http.DefaultTransport.
	Base http.RoundTripper
	// MaxRetries is the number of retries after the first attempt
	// (0 means DefaultMaxRetries; negative disables retries).
	MaxRetries int
	// Clock times the waits between attempts (nil means clock.Real()).
	Clock clock.Clock
	// BaseDelay is the first back-off delay (0 means DefaultBaseDelay).
	BaseDelay time.Duration
	// MaxDelay caps every wait (0 means DefaultMaxDelay).
	MaxDelay time.Duration
	// MaxPause caps a delay taken from the upstream's Retry-After before it
	// is compared with MaxDelay (0 means throttle.DefaultWindow; Chain sets
	// the budget's window). A hostile Retry-After thus never outlasts it.
	MaxPause time.Duration
}

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := base(t.Base)
	retries := t.MaxRetries
	if retries == 0 {
		retries = DefaultMaxRetries
	}
	if retries < 0 || !Replayable(req) {
		return rt.RoundTrip(req)
	}
	ctx := req.Context()
	clk := clock.OrReal(t.Clock)
	attemptReq := req
	for attempt := 0; ; attempt++ {
		resp, err := rt.RoundTrip(attemptReq)
		if attempt >= retries || !retryOn(ctx, resp, err) {
			return resp, err
		}
		wait, ok := t.delay(resp, attempt, clk.Now())
		if !ok {
			return resp, err
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) <= wait {
			return resp, err
		}
		next, gerr := nextAttempt(req, attempt+1)
		if gerr != nil {
			return resp, err
		}
		discard(resp)
		if serr := clock.Sleep(ctx, clk, wait); serr != nil {
			closeBody(next)
			return nil, serr
		}
		attemptReq = next
	}
}

// Replayable reports whether req may be sent more than once: its method is
// safe or it carries an idempotency key, and its body can be re-created.
func Replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "":
	default:
		if req.Header.Get("MS-RequestId") == "" && req.Header.Get("Idempotency-Key") == "" {
			return false
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// nextAttempt copies req with a fresh body, for retry n (1 for the first).
func nextAttempt(req *http.Request, n int) (*http.Request, error) {
	r := req.Clone(withAttempt(req.Context(), n))
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	return r, nil
}

func retryOn(ctx context.Context, resp *http.Response, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		var te *throttle.ThrottledError
		return !errors.As(err, &te) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// delay returns the wait before the next attempt; ok is false when the
// upstream asked for a longer wait than MaxDelay.
func (t *RetryTransport) delay(resp *http.Response, attempt int, now time.Time) (time.Duration, bool) {
	maxDelay := t.MaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	if resp != nil {
		if ra, ok := up.RetryAfter(resp.Header, now); ok {
			maxPause := t.MaxPause
			if maxPause <= 0 {
				maxPause = throttle.DefaultWindow
			}
			ra = min(ra, maxPause)
			return ra, ra <= maxDelay
		}
	}
	d := t.BaseDelay
	if d <= 0 {
		d = DefaultBaseDelay
	}
	for range attempt {
		if d >= maxDelay {
			break
		}
		d *= 2
	}
	d = min(d, maxDelay)
	// Equal jitter: between half and all of the exponential delay.
	return d/2 + rand.N(d/2+1), true
}

// discard drains a little of an unused response body, so the connection
// can be reused, and closes it.
func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
