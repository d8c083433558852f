package throttle

import "time"

// activity is what a Registry needs to know before it may drop a budget.
type activity struct {
	lastGrant   time.Time // the most recent grant; zero if none
	waiting     int       // callers queued for a slot
	pausedUntil time.Time // end of an upstream pause; zero if none
}

// activity reports the budget's last grant, its queue and its pause.
func (b *Budget) activity() activity {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := activity{waiting: b.waitingLocked(), pausedUntil: b.paused}
	if n := len(b.log); n > 0 {
		a.lastGrant = b.log[n-1]
	}
	return a
}

// busy reports whether someone waits on the budget or an upstream pause is
// in effect at now: dropping the budget would lose the queue or the pause.
func (a activity) busy(now time.Time) bool { return a.waiting > 0 || a.pausedUntil.After(now) }

// quietFor reports whether no grant was made in (now-d, now]. A budget
// quiet for its window holds no grant that counts against the limit, so a
// fresh budget for the same connection could not exceed it.
func (a activity) quietFor(now time.Time, d time.Duration) bool {
	return a.lastGrant.IsZero() || !a.lastGrant.After(now.Add(-d))
}

// droppableAt returns the earliest time a budget with this activity could be
// dropped if nothing else happened: once it has been quiet for hold and any
// pause has ended. With callers waiting, hold from now.
func (a activity) droppableAt(now time.Time, hold time.Duration) time.Time {
	if a.waiting > 0 {
		return now.Add(hold)
	}
	t := now
	if !a.lastGrant.IsZero() {
		if end := a.lastGrant.Add(hold); end.After(t) {
			t = end
		}
	}
	if a.pausedUntil.After(t) {
		t = a.pausedUntil
	}
	return t
}
