package clock

import (
	"context"
	"sync"
	"time"
)

// Fake is a deterministic Clock for tests. Its time stands still until the
// test calls Advance or Set; timers due by then fire in order of their due
// time (ties in order of creation), with Now reporting each timer's due time
// while it fires.
//
// Channel timers receive their value during Advance. AfterFunc callbacks run
// synchronously inside Advance (without any lock of the Fake held), so when
// Advance returns every callback that was due has completed. A timer created
// with a non-positive duration fires at once: its channel already holds a
// value, or its callback is started in a new goroutine.
//
// WaitForWaiters lets a test block until goroutines under test have armed
// their timers, so no real sleeping is needed.
type Fake struct {
	advMu sync.Mutex // serialises Advance and Set

	mu      sync.Mutex
	now     time.Time
	seq     uint64
	timers  map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever the set of timers changes
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake whose current time is start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, timers: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

// Now returns the fake current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires once the fake time has moved forward by d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc returns a timer that calls fn once the fake time has moved
// forward by d. The call happens synchronously inside Advance or Set.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	t.Reset(d)
	return t
}

// Advance moves the fake time forward by d, firing every timer that falls
// due on the way. A negative d is treated as zero.
func (f *Fake) Advance(d time.Duration) {
	f.advMu.Lock()
	defer f.advMu.Unlock()
	f.mu.Lock()
	target := f.now.Add(max(d, 0))
	f.mu.Unlock()
	f.advanceTo(target)
}

// Set moves the fake time to t. If t is later than the current time, timers
// that fall due on the way fire as with Advance; if it is earlier, the time
// moves back and no timer fires.
func (f *Fake) Set(t time.Time) {
	f.advMu.Lock()
	defer f.advMu.Unlock()
	f.mu.Lock()
	if !t.After(f.now) {
		f.now = t
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.advanceTo(t)
}

// advanceTo fires due timers one by one and finally sets the time to target.
// The caller holds advMu.
func (f *Fake) advanceTo(target time.Time) {
	for {
		f.mu.Lock()
		var next *fakeTimer
		for t := range f.timers {
			if t.when.After(target) {
				continue
			}
			if next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			if target.After(f.now) {
				f.now = target
			}
			f.mu.Unlock()
			return
		}
		if next.when.After(f.now) {
			f.now = next.when
		}
		f.removeLocked(next)
		fn := next.fn
		if next.ch != nil {
			select {
			case next.ch <- f.now:
			default:
			}
		}
		f.mu.Unlock()
		if fn != nil {
			fn()
		}
	}
}

// Next returns the due time of the earliest armed timer, and false when no
// timer is armed.
func (f *Fake) Next() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Time
	found := false
	for t := range f.timers {
		if !found || t.when.Before(next) {
			next, found = t.when, true
		}
	}
	return next, found
}

// AutoAdvance moves the time, whenever a timer is armed, straight to the
// earliest due one, until ctx ends or the returned stop is called (stop also
// waits for it to finish). It suits tests whose code under test is the only
// user of the clock and waits on it: every wait then takes no real time, and
// the simulated time shows what the waits would have been.
func (f *Fake) AutoAdvance(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f.WaitForWaiters(ctx, 1) == nil {
			if at, ok := f.Next(); ok {
				f.Set(at)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Waiters returns the number of timers that are armed and have not fired.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitForWaiters blocks until at least n timers are armed, or until ctx is
// done, in which case it returns ctx.Err().
func (f *Fake) WaitForWaiters(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.timers) >= n {
			f.mu.Unlock()
			return nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fake) removeLocked(t *fakeTimer) {
	if _, ok := f.timers[t]; ok {
		delete(f.timers, t)
		f.notifyLocked()
	}
}

type fakeTimer struct {
	f    *Fake
	ch   chan time.Time // nil for AfterFunc timers
	fn   func()         // nil for channel timers
	when time.Time      // guarded by f.mu
	seq  uint64         // guarded by f.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// drainLocked removes an undelivered value from the channel and reports
// whether there was one.
func (t *fakeTimer) drainLocked() bool {
	if t.ch == nil {
		return false
	}
	select {
	case <-t.ch:
		return true
	default:
		return false
	}
}

func (t *fakeTimer) Stop() bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	_, active := f.timers[t]
	f.removeLocked(t)
	// Like timers since Go 1.23: a value not yet received counts as not yet
	// delivered, and no stale value is received after Stop.
	drained := t.drainLocked()
	return active || drained
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.f
	f.mu.Lock()
	_, active := f.timers[t]
	drained := t.drainLocked()
	f.removeLocked(t)
	f.seq++
	t.seq = f.seq
	t.when = f.now.Add(d)
	if d <= 0 {
		if t.ch != nil {
			select {
			case t.ch <- f.now:
			default:
			}
		} else {
			go t.fn()
		}
		f.mu.Unlock()
		return active || drained
	}
	f.timers[t] = struct{}{}
	f.notifyLocked()
	f.mu.Unlock()
	return active || drained
}
