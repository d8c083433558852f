// Package clock abstracts time so that code which waits (throttle budgets,
// retry back-off, pollers) can be driven deterministically in tests.
//
// Production code uses Real; tests use a Fake whose time moves only when the
// test calls Advance or Set.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and creates timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d has
	// elapsed. A timer that is no longer needed must be stopped.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine once d has elapsed, unless the
	// returned timer is stopped first. The returned timer's C is nil.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a cancellable single-shot timer created by a Clock.
type Timer interface {
	// C returns the channel on which the firing time is delivered. It is nil
	// for timers created with AfterFunc.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether the call
	// stopped the timer (false if it had already fired or been stopped).
	// After Stop returns, no stale value is received from C.
	Stop() bool
	// Reset re-arms the timer to fire after d. It reports whether the timer
	// was active before the call.
	Reset(d time.Duration) bool
}

// Real returns the Clock backed by package time.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Sleep waits for d on c, or until ctx is done, whichever comes first. It
// returns ctx.Err() if the context ended the wait and nil otherwise. A
// non-positive d returns at once (after checking ctx).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OrReal returns c, or Real() when c is nil.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}
