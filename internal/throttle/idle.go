package throttle

import "time"

// activity is what a Registry needs to know before it may drop a budget.
type activity struct {
	lastUse     time.Time // the latest time a released slot counts from (its release); zero if none
	inFlight    int       // slots granted and not yet released
	waiting     int       // callers queued for a slot
	pausedUntil time.Time // end of an upstream pause; zero if none
}

// activity reports the budget's last release, its slots in flight, its
// queue and its pause.
func (b *Budget) activity() activity {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := activity{inFlight: b.inFlight, waiting: b.waitingLocked(), pausedUntil: b.paused}
	if n := len(b.log); n > 0 {
		a.lastUse = b.log[n-1]
	}
	return a
}

// busy reports whether someone waits on the budget, a slot is in flight or
// an upstream pause is in effect at now: dropping the budget would lose the
// queue, a slot that still counts (for as long as its request runs) or the
// pause.
func (a activity) busy(now time.Time) bool {
	return a.waiting > 0 || a.inFlight > 0 || a.pausedUntil.After(now)
}

// quietFor reports whether no released slot counts from a time in
// (now-d, now] or later. A budget quiet for its window, with no slot in
// flight, holds no slot that counts against the limit, so a fresh budget for
// the same connection could not exceed it.
func (a activity) quietFor(now time.Time, d time.Duration) bool {
	return a.lastUse.IsZero() || !a.lastUse.After(now.Add(-d))
}

// droppableAt returns the earliest time a budget with this activity could be
// dropped if nothing else happened: once it has been quiet for hold and any
// pause has ended. With callers waiting or slots in flight, hold from now.
func (a activity) droppableAt(now time.Time, hold time.Duration) time.Time {
	if a.waiting > 0 || a.inFlight > 0 {
		return now.Add(hold)
	}
	t := now
	if !a.lastUse.IsZero() {
		if end := a.lastUse.Add(hold); end.After(t) {
			t = end
		}
	}
	if a.pausedUntil.After(t) {
		t = a.pausedUntil
	}
	return t
}
