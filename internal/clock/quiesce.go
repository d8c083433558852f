package clock

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStalled is returned by Crowd.Drive when every member waits but no timer
// is armed on the Fake: nothing could ever wake them.
var ErrStalled = errors.New("clock: every member waits and no timer is armed")

// Crowd is a fixed number of goroutines under test (its members) that run
// on one Fake, and lets the test move the Fake's time only when every member
// waits — so each instant is fully played out before time moves on, however
// much the members compute between their waits, and with no real sleeping.
//
// A member waits in one of three ways: asleep on the Fake through
// Crowd.Sleep; parked elsewhere, as counted by the parked function given to
// NewCrowd (for example the callers queued in a throttle budget, whose
// changes the budget reports through a hook that calls Notify); or finished,
// after Leave. Sleep may also be called on a member's behalf by a goroutine
// it waits for (a server handler serving the member's request): that
// goroutine then stands in for the member while it sleeps.
//
// Whether every member waits is decided from one consistent snapshot: the
// Crowd's own counts are read twice around parked(), and the snapshot is
// retried if a member went to sleep, left or was reported parked meanwhile.
// This is sound as long as a waiting member is woken only by the clock
// moving (inside Advance or Set) or by a member that is running.
type Crowd struct {
	f       *Fake
	members int
	parked  func() int

	mu       sync.Mutex
	sleeping int
	left     int
	version  uint64        // bumped on every change of the counts and every Notify
	changed  chan struct{} // closed and replaced on every bump
}

// NewCrowd returns a Crowd of members goroutines on f. parked, if not nil,
// returns how many members wait outside the Crowd's knowledge; it is called
// without any lock of the Crowd held.
func NewCrowd(f *Fake, members int, parked func() int) *Crowd {
	return &Crowd{f: f, members: members, parked: parked, changed: make(chan struct{})}
}

func (c *Crowd) bumpLocked() {
	c.version++
	close(c.changed)
	c.changed = make(chan struct{})
}

// Notify tells the Crowd that a member may have started to wait elsewhere
// (as counted by parked). It is cheap and safe to call from a hook that runs
// under another lock, as long as parked is not called under that lock by
// the same goroutine.
func (c *Crowd) Notify() {
	c.mu.Lock()
	c.bumpLocked()
	c.mu.Unlock()
}

// Leave records that a member has finished for good.
func (c *Crowd) Leave() {
	c.mu.Lock()
	c.left++
	c.bumpLocked()
	c.mu.Unlock()
}

// Sleep waits for d of fake time, or until ctx is done, and returns
// ctx.Err() in the latter case. The caller counts as waiting from before its
// timer can fire until the timer fires inside Advance or Set, so the clock
// never moves past a wake-up unseen. A non-positive d returns at once.
func (c *Crowd) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	woke := make(chan struct{})
	c.mu.Lock()
	t := c.f.AfterFunc(d, func() {
		c.mu.Lock()
		c.sleeping--
		c.bumpLocked()
		c.mu.Unlock()
		close(woke)
	})
	c.sleeping++
	c.bumpLocked()
	c.mu.Unlock()
	select {
	case <-woke:
		return nil
	case <-ctx.Done():
	}
	if t.Stop() {
		c.mu.Lock()
		c.sleeping--
		c.bumpLocked()
		c.mu.Unlock()
		return ctx.Err()
	}
	<-woke // it fired meanwhile
	return nil
}

// WaitIdle blocks until every member waits (asleep, parked or finished),
// and reports whether all of them have finished. It returns ctx.Err() if ctx
// ends first.
func (c *Crowd) WaitIdle(ctx context.Context) (finished bool, err error) {
	for {
		c.mu.Lock()
		v, ch, sleeping, left := c.version, c.changed, c.sleeping, c.left
		c.mu.Unlock()
		parked := 0
		if c.parked != nil && left < c.members {
			parked = c.parked()
		}
		c.mu.Lock()
		same := c.version == v
		c.mu.Unlock()
		if same && sleeping+parked+left >= c.members {
			return left >= c.members, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// Drive moves the Fake's time, each time every member waits, straight to the
// earliest armed timer, until every member has left (it returns nil), ctx
// ends (ctx.Err()), or every member waits with no timer armed (ErrStalled).
// Only Drive should move the Fake meanwhile.
func (c *Crowd) Drive(ctx context.Context) error {
	for {
		finished, err := c.WaitIdle(ctx)
		if err != nil || finished {
			return err
		}
		at, ok := c.f.Next()
		if !ok {
			return ErrStalled
		}
		c.f.Set(at)
	}
}
