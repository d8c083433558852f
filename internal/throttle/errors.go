package throttle

import (
	"fmt"
	"time"
)

// ThrottledError is returned by Budget.AcquireSlot (and Acquire) when a
// request slot cannot be granted before the caller's deadline. It tells the
// caller when trying again is expected to succeed.
type ThrottledError struct {
	// Connection is the name of the budget that refused.
	Connection string
	// RetryAfter is how long from the refusal until a slot is expected to be
	// available to this caller, counting the callers queued ahead of it.
	RetryAfter time.Duration
	// Limit and Window describe the budget ("Limit requests per Window").
	Limit  int
	Window time.Duration
	// Paused reports that a pause asked for by the upstream (a 429 or
	// rate-limit headers, see Budget.PauseUntil) was in effect at the refusal.
	Paused bool

	cause error
}

// Error returns a message such as "throttle budget for pipedrive exhausted:
// 100 requests per 60s; retry after 12s".
func (e *ThrottledError) Error() string {
	if e.Paused {
		return fmt.Sprintf("throttle budget for %s paused after an upstream rate-limit signal; retry after %ds",
			e.Connection, e.RetryAfterSeconds())
	}
	return fmt.Sprintf("throttle budget for %s exhausted: %d requests per %s; retry after %ds",
		e.Connection, e.Limit, formatWindow(e.Window), e.RetryAfterSeconds())
}

// Unwrap returns context.DeadlineExceeded when the refusal was caused by the
// caller's context deadline expiring while it waited, and nil otherwise.
func (e *ThrottledError) Unwrap() error { return e.cause }

// RetryAfterSeconds returns RetryAfter in whole seconds, rounded up, and at
// least 1, as agents expect in retry_after_seconds.
func (e *ThrottledError) RetryAfterSeconds() int { return max(1, Seconds(e.RetryAfter)) }

// Seconds rounds d up to whole seconds; non-positive durations give 0.
func Seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

func formatWindow(w time.Duration) string {
	if w%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(w/time.Second))
	}
	return w.String()
}
