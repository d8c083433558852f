// Package throttle implements the per-connection request budget that every
// upstream call spends from.
//
// A Budget allows at most Limit grants in any rolling Window: a grant at time
// t happens only if fewer than Limit grants happened in (t-Window, t]. It keeps
// the times of the last Limit grants (a sliding log), so the limit is exact
// rather than approximated by fixed buckets.
//
// Callers that cannot be served at once queue: Interactive before Background,
// first come first served within a priority. A caller whose turn would come
// after its deadline is refused at once with a *ThrottledError that says when
// to retry, instead of waiting in vain. Upstream signals (HTTP 429,
// Retry-After, rate-limit headers) pause the budget with PauseUntil.
//
// Waiting costs no goroutine and no polling: one timer per Budget, armed only
// while someone waits, hands slots to the head of the queue.
package throttle

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// Defaults applied by New for zero Config fields.
const (
	DefaultLimit   = 100
	DefaultWindow  = 60 * time.Second
	DefaultMaxWait = 30 * time.Second
)

// Config sets up a Budget. Zero fields take the defaults.
type Config struct {
	// Limit is the number of requests allowed in any Window (default 100).
	Limit int
	// Window is the length of the rolling window (default 60s).
	Window time.Duration
	// MaxWait caps how long an Interactive caller may wait for a slot
	// (default 30s; a negative value means Interactive callers never wait).
	// Background callers wait until their context's deadline, or for as long
	// as it takes if it has none.
	MaxWait time.Duration
	// Clock is the time source (default clock.Real()).
	Clock clock.Clock
}

func (c Config) withDefaults() Config {
	if c.Limit <= 0 {
		c.Limit = DefaultLimit
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxWait < 0 {
		c.MaxWait = 0
	}
	c.Clock = clock.OrReal(c.Clock)
	return c
}

// Budget is the request budget of one connection. It is safe for concurrent
// use. A nil *Budget grants every request.
type Budget struct {
	name  string
	cfg   Config
	clock clock.Clock

	mu     sync.Mutex
	log    []time.Time // times of the last (at most) Limit grants, ascending
	paused time.Time   // no grant before this time
	queues [2][]*waiter

	timer    clock.Timer // armed while someone waits; fires when the next slot frees
	timerAt  time.Time
	timerGen uint64

	grantHook func(time.Time) // observes every grant (OnGrant), called with mu held
}

type waiter struct {
	prio     Priority
	deadline time.Time // zero: none
	done     chan struct{}
	finished bool  // guarded by Budget.mu
	err      error // set before done is closed
}

// New returns the budget of the named connection.
func New(name string, cfg Config) *Budget {
	cfg = cfg.withDefaults()
	return &Budget{name: name, cfg: cfg, clock: cfg.Clock, log: make([]time.Time, 0, cfg.Limit)}
}

// Name returns the connection name.
func (b *Budget) Name() string { return b.name }

// Config returns the budget's configuration with defaults applied.
func (b *Budget) Config() Config { return b.cfg }

// Clock returns the budget's time source.
func (b *Budget) Clock() clock.Clock {
	if b == nil {
		return clock.Real()
	}
	return b.clock
}

// Acquire grants one request slot, waiting if necessary, and returns nil once
// the request may be sent.
//
// The caller's priority comes from PriorityFrom(ctx). Its deadline is the
// context's deadline (taken as a duration from now, so that it composes with
// any Clock) and, for Interactive callers, at most MaxWait from now. If the
// caller's turn cannot come before that deadline, counting the callers queued
// ahead of it and any upstream pause, Acquire returns a *ThrottledError at
// once. A pause or a newly arrived Interactive caller that pushes a waiting
// caller's turn past its deadline refuses it the same way, as soon as that
// is known.
//
// If the context ends while waiting, Acquire returns a *ThrottledError whose
// Unwrap is context.DeadlineExceeded when the deadline expired (so the
// caller learns when to retry), and ctx.Err() when it was cancelled. If the
// slot was granted at the same moment the context ended, the grant stands
// and Acquire returns nil.
func (b *Budget) Acquire(ctx context.Context) error {
	if b == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	prio := PriorityFrom(ctx)

	b.mu.Lock()
	now := b.clock.Now()
	w := &waiter{prio: prio, done: make(chan struct{})}
	if prio == Interactive {
		w.deadline = now.Add(b.cfg.MaxWait)
	}
	if dl, ok := ctx.Deadline(); ok {
		if d := now.Add(time.Until(dl)); w.deadline.IsZero() || d.Before(w.deadline) {
			w.deadline = d
		}
	}
	b.queues[prio] = append(b.queues[prio], w)
	b.dispatchLocked(now)
	b.refuseLateLocked(now)
	b.armLocked(now)
	if w.finished {
		b.mu.Unlock()
		return w.err
	}
	b.mu.Unlock()

	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if w.finished {
		return w.err
	}
	b.removeLocked(w)
	now = b.clock.Now()
	b.dispatchLocked(now)
	b.armLocked(now)
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		te := b.throttledLocked(now, b.estimateLocked(now, prio))
		te.cause = err
		return te
	}
	return err
}

// OnGrant makes f observe every grant, in order, with the time the rolling
// window counts it at — what a proof of the limit needs, free of the lag
// between a grant and the request leaving. f runs with the budget locked:
// it must be quick and must not call the budget.
func (b *Budget) OnGrant(f func(at time.Time)) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.grantHook = f
	b.mu.Unlock()
}

// PauseUntil makes the budget grant nothing before t, as asked by the
// upstream. It extends an existing pause but never shortens it. Waiting
// callers whose deadline falls before their turn are refused at once.
func (b *Budget) PauseUntil(t time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !t.After(b.paused) {
		return
	}
	b.paused = t
	now := b.clock.Now()
	b.refuseLateLocked(now)
	b.armLocked(now)
}

// PauseFor is PauseUntil(now + d) on the budget's clock.
func (b *Budget) PauseFor(d time.Duration) {
	if b == nil || d <= 0 {
		return
	}
	b.PauseUntil(b.clock.Now().Add(d))
}

// nextFreeLocked returns the earliest time not before now at which a grant is
// allowed.
func (b *Budget) nextFreeLocked(now time.Time) time.Time {
	t := now
	if b.paused.After(t) {
		t = b.paused
	}
	if n := len(b.log); n >= b.cfg.Limit {
		if free := b.log[n-b.cfg.Limit].Add(b.cfg.Window); free.After(t) {
			t = free
		}
	}
	return t
}

// headLocked returns the waiter to serve next.
func (b *Budget) headLocked() *waiter {
	for _, q := range b.queues {
		if len(q) > 0 {
			return q[0]
		}
	}
	return nil
}

func (b *Budget) waitingLocked() int { return len(b.queues[Interactive]) + len(b.queues[Background]) }

// dispatchLocked grants slots to the head of the queue while slots are free.
func (b *Budget) dispatchLocked(now time.Time) {
	for {
		w := b.headLocked()
		if w == nil || b.nextFreeLocked(now).After(now) {
			return
		}
		b.queues[w.prio][0] = nil
		b.queues[w.prio] = b.queues[w.prio][1:]
		b.grantLocked(now)
		b.finishLocked(w, nil)
	}
}

func (b *Budget) grantLocked(now time.Time) {
	if len(b.log) == b.cfg.Limit {
		copy(b.log, b.log[1:])
		b.log[len(b.log)-1] = now
	} else {
		b.log = append(b.log, now)
	}
	if b.grantHook != nil {
		b.grantHook(now)
	}
}

func (b *Budget) finishLocked(w *waiter, err error) {
	w.err = err
	w.finished = true
	close(w.done)
}

func (b *Budget) removeLocked(w *waiter) {
	q := b.queues[w.prio]
	for i, x := range q {
		if x == w {
			b.queues[w.prio] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

// slotSim predicts the times of the next grants, in the order the queue
// will receive them, assuming nobody leaves or jumps ahead.
type slotSim struct {
	hist   []time.Time // the last (at most) limit grants, real and predicted
	t      time.Time   // no grant before this time
	limit  int
	window time.Duration
}

func (b *Budget) simLocked(now time.Time) *slotSim {
	s := &slotSim{hist: append([]time.Time(nil), b.log...), t: now, limit: b.cfg.Limit, window: b.cfg.Window}
	if b.paused.After(now) {
		s.t = b.paused
	}
	return s
}

// peek returns the time of the next grant.
func (s *slotSim) peek() time.Time {
	t := s.t
	if n := len(s.hist); n >= s.limit {
		if free := s.hist[n-s.limit].Add(s.window); free.After(t) {
			t = free
		}
	}
	return t
}

// take returns the time of the next grant and records it as made.
func (s *slotSim) take() time.Time {
	t := s.peek()
	s.t = t
	s.hist = append(s.hist, t)
	if n := len(s.hist); n > s.limit {
		s.hist = s.hist[n-s.limit:]
	}
	return t
}

// estimateLocked returns when a caller of priority p arriving now would be
// served: after every waiter of the same or higher priority.
func (b *Budget) estimateLocked(now time.Time, p Priority) time.Time {
	ahead := len(b.queues[Interactive])
	if p == Background {
		ahead += len(b.queues[Background])
	}
	sim := b.simLocked(now)
	for range ahead {
		sim.take()
	}
	return sim.peek()
}

// refuseLateLocked walks the queue in service order and refuses every waiter
// whose turn would come after its deadline. A refused waiter leaves its turn
// to the ones behind it.
func (b *Budget) refuseLateLocked(now time.Time) {
	withDeadline := 0
	for _, q := range b.queues {
		for _, w := range q {
			if !w.deadline.IsZero() {
				withDeadline++
			}
		}
	}
	sim := b.simLocked(now)
	for p := range b.queues {
		q := b.queues[p]
		kept := q[:0]
		for i, w := range q {
			if withDeadline == 0 { // nobody further back can be late
				kept = append(kept, q[i:]...)
				break
			}
			if w.deadline.IsZero() {
				sim.take()
				kept = append(kept, w)
				continue
			}
			withDeadline--
			if slot := sim.peek(); slot.After(w.deadline) {
				b.finishLocked(w, b.throttledLocked(now, slot))
				continue
			}
			sim.take()
			kept = append(kept, w)
		}
		clear(q[len(kept):])
		b.queues[p] = kept
	}
}

func (b *Budget) throttledLocked(now, slot time.Time) *ThrottledError {
	return &ThrottledError{
		Connection: b.name,
		RetryAfter: max(slot.Sub(now), 0),
		Limit:      b.cfg.Limit,
		Window:     b.cfg.Window,
		Paused:     b.paused.After(now),
	}
}

// armLocked keeps one timer armed for the next free slot while anyone waits,
// and none otherwise.
func (b *Budget) armLocked(now time.Time) {
	if b.waitingLocked() == 0 {
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
		return
	}
	at := b.nextFreeLocked(now)
	if b.timer != nil && b.timerAt.Equal(at) {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	b.timerGen++
	gen := b.timerGen
	b.timerAt = at
	b.timer = b.clock.AfterFunc(at.Sub(now), func() { b.onTimer(gen) })
}

func (b *Budget) onTimer(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen == b.timerGen {
		b.timer = nil
	}
	now := b.clock.Now()
	b.dispatchLocked(now)
	b.armLocked(now)
}
