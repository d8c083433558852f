// Package httpx holds the HTTP transport chain every upstream client uses:
// a RetryTransport over a ThrottleTransport, so that each attempt (retries
// included) spends one slot of the connection's throttle budget, and
// upstream rate-limit signals pause that budget.
package httpx

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
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

// FailedWriteHold is how long after a failed round trip the slots of a
// request that was written count as released: time enough for bytes still
// in the network when the caller gave up to arrive upstream.
const FailedWriteHold = time.Second

// ThrottleTransport spends one slot of Budget on every request it sends and
// pauses Budget when the upstream signals a rate limit.
//
// A slot is taken (throttle.Budget.AcquireSlot) before the request is sent
// and released when the response headers have arrived, or when the round
// trip has failed (as of FailedWriteHold later, if the request was
// written). The upstream counts a request when it arrives, which happens
// before its response starts, so from the release on the upstream cannot
// count the request at any later time. Holding the slot until the body is
// closed would be sounder by nothing and would cost budget while a caller
// reads a long page.
//
// Go's http.Transport may send a request more than once on its own: a
// replayable request (a GET, or one with an Idempotency-Key) written on a
// reused keep-alive connection that the server closed before answering is
// written again on another connection. Each such write may arrive upstream,
// so the transport counts writes through net/http/httptrace: before
// another write of a request that was already written once (at GotConn),
// it waits for one more slot (throttle.Budget.WaitSlot, bounded by the
// request's context only: the re-send is part of a request already
// admitted), and a write that finds no slot of its own anyway (the context
// ended during that wait and the transport wrote regardless) is charged at
// once (throttle.Budget.Charge). Every slot is released with the first.
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
	slot, err := t.Budget.AcquireSlot(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	waited := time.Since(start)
	out := req
	var w *writes
	if t.Budget != nil {
		w = &writes{budget: t.Budget, ctx: req.Context(), slots: []*throttle.Slot{slot}}
		out = req.WithContext(httptrace.WithClientTrace(req.Context(), w.trace()))
	}
	resp, err := base(t.Base).RoundTrip(out)
	// The response headers have arrived: the request arrived upstream
	// before them. Or the round trip failed: a request written by then may
	// still be on its way (its bytes in the network when the caller gave
	// up), so its slots count from a little later.
	w.release(err != nil)
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
	if resp.Request == out {
		resp.Request = req
	}
	now := t.Budget.Clock().Now()
	maxPause := MaxPauseOf(t.Budget, t.MaxPause)
	if d, ok := UpstreamPause(resp, now, maxPause); ok {
		t.Budget.PauseFor(d)
	}
	ClampSignals(resp.Header, now, maxPause)
	return resp, nil
}

// writes keeps one slot for every write of one request to the wire.
type writes struct {
	budget *throttle.Budget
	ctx    context.Context

	mu     sync.Mutex
	slots  []*throttle.Slot // the first from RoundTrip, one more per re-send
	n      int              // times the request's headers were written
	closed bool             // released: a late write is charged and released at once
}

func (w *writes) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{GotConn: w.gotConn, WroteHeaders: w.wroteHeaders}
}

// gotConn runs before every attempt to write the request (the transport's
// re-sends included), in the goroutine that sends it. If the request was
// written before, this attempt is a re-send: it waits here for a slot.
func (w *writes) gotConn(httptrace.GotConnInfo) {
	w.mu.Lock()
	resend := !w.closed && w.n >= len(w.slots)
	w.mu.Unlock()
	if !resend {
		return
	}
	s, err := w.budget.WaitSlot(w.ctx)
	if err != nil {
		return // the context ended; wroteHeaders charges the write if it happens anyway
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		s.Done()
		return
	}
	w.slots = append(w.slots, s)
}

// wroteHeaders counts a write; one beyond the slots held is charged.
func (w *writes) wroteHeaders() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed { // a write after the round trip returned: counted all the same
		w.budget.Charge().Done()
		return
	}
	w.n++
	if w.n > len(w.slots) {
		w.slots = append(w.slots, w.budget.Charge())
	}
}

// release releases every slot of the request: now, or FailedWriteHold from
// now if the round trip failed after the request was written.
func (w *writes) release(failed bool) {
	if w == nil {
		return
	}
	w.mu.Lock()
	slots, written := w.slots, w.n > 0
	w.slots, w.closed = nil, true
	w.mu.Unlock()
	at := time.Time{}
	if failed && written {
		at = w.budget.Clock().Now().Add(FailedWriteHold)
	}
	for _, s := range slots {
		if at.IsZero() {
			s.Done()
		} else {
			s.DoneAt(at)
		}
	}
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
