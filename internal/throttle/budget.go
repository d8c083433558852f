// Package throttle implements the per-connection request budget that every
// upstream call spends from.
//
// The upstream counts a request when it arrives, and a request arrives
// somewhere between its grant here and its response. So a Budget counts a
// slot from its grant until its response has returned plus the window: a
// slot in flight (granted, not yet released with Slot.Done) counts against
// the limit with the end of its window unknown, and a released slot counts
// until its release time plus Window. A grant at time t happens only if
// fewer than Limit slots count at t. No rolling window at the upstream can
// then see more than Limit arrivals: of any Limit+1 arrivals, the one
// granted last was granted while each of the others was in flight or
// released less than Window before it (their arrivals lie in one window),
// so it would have been refused. The Budget keeps the release times of the
// last Limit released slots (a sliding log) and a count of the slots in
// flight, so the limit is exact rather than approximated by fixed buckets.
// The one way past the limit is Charge, for a request that left without
// asking (a transport's own re-send that could not wait): it is counted, so
// the grants after it wait for it.
//
// Callers that cannot be served at once queue: Interactive before Background,
// first come first served within a priority. A caller whose turn would come
// after its deadline is refused at once with a *ThrottledError that says when
// to retry, instead of waiting in vain. Turns are predicted as if every slot
// in flight were released now (the earliest it could be): a prediction is
// never later than the truth, so nobody is refused who could have been served
// in time, and whoever a later release (or its own deadline, while slots are
// in flight) shows to be late is refused then. Upstream signals (HTTP 429,
// Retry-After, rate-limit headers) pause the budget with PauseUntil.
//
// Waiting costs no goroutine and no polling: one timer per Budget, armed only
// while someone waits, hands slots to the head of the queue; a release hands
// its slot on at once when that frees one.
package throttle

import (
	"context"
	"errors"
	"slices"
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
	// Shared, when set, is the ledger several processes spend from: a slot
	// needs its grant too (see Shared). Nil: this process alone.
	Shared Shared
	// OnWait, when set, observes every wait for a slot (a tracer records
	// it as a span); nil costs nothing.
	OnWait WaitHook
}

// WaitHook observes one caller's wait for a slot of the named connection:
// it is called when the wait begins, with the caller's context, and the
// function it returns (if not nil) learns how the wait ended. It keeps this
// package free of any tracing library.
type WaitHook func(ctx context.Context, connection string) func(Wait)

// Wait is how one wait for a slot ended.
type Wait struct {
	// Priority is the caller's priority.
	Priority Priority
	// Waited is how long the caller waited, on the budget's clock.
	Waited time.Duration
	// Err is nil when a slot was granted, a *ThrottledError when the budget
	// refused, or the context's error when the caller gave up waiting.
	Err error
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

	mu       sync.Mutex
	log      []time.Time // release times of the last Limit released slots (more while they count), ascending
	inFlight int         // slots granted and not yet released
	paused   time.Time   // no grant before this time
	queues   [2][]*waiter
	reported int // queue length last reported to queueHook

	timer    clock.Timer // armed while someone waits; fires when the next slot frees (or a deadline falls)
	timerAt  time.Time
	timerGen uint64

	grantHook   func(time.Time)                   // observes every grant (OnGrant), called with mu held
	releaseHook func(granted, released time.Time) // observes every release (OnRelease), called with mu held
	queueHook   func(waiting int)                 // observes the queue length (OnQueue), called with mu held
}

type waiter struct {
	prio     Priority
	deadline time.Time // zero: none
	instant  bool      // released at its grant (Acquire)
	done     chan struct{}
	finished bool  // guarded by Budget.mu
	slot     *Slot // set before done is closed, when granted
	err      error // set before done is closed, when refused
}

// Slot is one granted request slot. It counts against the budget from its
// grant until Done, and then for one window after the release time. Done
// must be called once the request's response has returned or the request
// has failed; until then the slot counts as in flight. A nil *Slot (from a
// nil Budget) ignores Done.
type Slot struct {
	b        *Budget
	granted  time.Time
	released bool       // guarded by b.mu
	shared   SharedSlot // the shared ledger's slot that goes with it, if any
}

// Granted returns the time of the grant.
func (s *Slot) Granted() time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.granted
}

// Done releases the slot now: the upstream has answered (or the request
// failed), so the request has arrived by now if it ever will. The slot
// counts for one window from now. Calls after the first do nothing.
func (s *Slot) Done() { s.release(time.Time{}) }

// DoneAt releases the slot as of t: the request is known to have arrived,
// if at all, by t (for instance, a failed request that may still be on its
// way holds its slot a little longer). The slot counts for one window from
// t, or from its grant if t is earlier (or zero). Calls after the first do
// nothing.
func (s *Slot) DoneAt(t time.Time) {
	if t.IsZero() {
		t = s.Granted()
	}
	s.release(t)
}

// release releases the slot as of at, or now if at is zero.
func (s *Slot) release(at time.Time) {
	if s == nil || s.b == nil {
		return
	}
	b := s.b
	b.mu.Lock()
	if s.released {
		b.mu.Unlock()
		return
	}
	s.released = true
	now := b.clock.Now()
	if at.IsZero() {
		at = now
	}
	if at.Before(s.granted) {
		at = s.granted
	}
	b.inFlight--
	b.recordLocked(at, now)
	if b.releaseHook != nil {
		b.releaseHook(s.granted, at)
	}
	b.settleLocked(now)
	b.mu.Unlock()
	s.releaseShared(at)
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

// AcquireSlot grants one request slot, waiting if necessary, and returns it
// once the request may be sent. The caller must call Done on the slot when
// the response has returned (its headers suffice: the request arrived before
// them) or the request has failed; until then the slot counts as in flight.
// On a nil Budget it returns a nil *Slot and no error.
//
// The caller's priority comes from PriorityFrom(ctx). Its deadline is the
// context's deadline (taken as a duration from now, so that it composes with
// any Clock) and, for Interactive callers, at most MaxWait from now. If the
// caller's turn cannot come before that deadline, counting the callers queued
// ahead of it, any upstream pause and the slots in flight (as if released
// now), AcquireSlot returns a *ThrottledError at once. A pause, a newly
// arrived Interactive caller or a release that pushes a waiting caller's turn
// past its deadline refuses it the same way, as soon as that is known; and
// so does its deadline itself, when slots are still in flight then.
//
// If the context ends while waiting, AcquireSlot returns a *ThrottledError
// whose Unwrap is context.DeadlineExceeded when the deadline expired (so the
// caller learns when to retry), and ctx.Err() when it was cancelled. If the
// slot was granted at the same moment the context ended, the grant stands
// and AcquireSlot returns the slot.
func (b *Budget) AcquireSlot(ctx context.Context) (*Slot, error) {
	if b == nil {
		return nil, nil
	}
	return b.acquire(ctx, true, false)
}

// WaitSlot is AcquireSlot without refusal for a deadline: it waits until a
// slot is granted or ctx ends, whatever its turn. It is for a request that is
// already on its way and must not leave without a slot — an HTTP transport's
// re-send of a request the budget granted before (see httpx).
func (b *Budget) WaitSlot(ctx context.Context) (*Slot, error) {
	if b == nil {
		return nil, nil
	}
	return b.acquire(ctx, false, false)
}

// Acquire grants one request slot as AcquireSlot does, and releases it at
// once, as of its grant: the slot counts for one window from the grant. It
// is exact only for work that reaches the upstream at the moment of its
// grant; a request sent over the network must use AcquireSlot and release
// the slot when its response has returned.
func (b *Budget) Acquire(ctx context.Context) error {
	if b == nil {
		return nil
	}
	_, err := b.acquire(ctx, true, true)
	return err
}

// Charge takes a slot at once, whatever the limit, the queue or a pause: for
// a request that has left (or is leaving) without waiting for one, such as a
// re-send the HTTP transport decided on its own. The budget records it, so
// the grants after it wait for it; the caller must call Done on it as for
// AcquireSlot. On a nil Budget it returns nil.
func (b *Budget) Charge() *Slot {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	s := b.grantLocked(now, false)
	b.settleLocked(now)
	return s
}

func (b *Budget) acquire(ctx context.Context, bounded, instant bool) (*Slot, error) {
	if b.cfg.OnWait == nil {
		return b.wait(ctx, bounded, instant)
	}
	done := b.cfg.OnWait(ctx, b.name)
	start := b.clock.Now()
	s, err := b.wait(ctx, bounded, instant)
	if done != nil {
		done(Wait{Priority: PriorityFrom(ctx), Waited: b.clock.Now().Sub(start), Err: err})
	}
	return s, err
}

// wait queues the caller for a slot and returns when it is granted or
// refused, or the context ends.
func (b *Budget) wait(ctx context.Context, bounded, instant bool) (*Slot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prio := PriorityFrom(ctx)

	b.mu.Lock()
	now := b.clock.Now()
	w := &waiter{prio: prio, instant: instant, done: make(chan struct{})}
	if bounded {
		if prio == Interactive {
			w.deadline = now.Add(b.cfg.MaxWait)
		}
		if dl, ok := ctx.Deadline(); ok {
			if d := now.Add(time.Until(dl)); w.deadline.IsZero() || d.Before(w.deadline) {
				w.deadline = d
			}
		}
	}
	b.queues[prio] = append(b.queues[prio], w)
	b.settleLocked(now)
	if w.finished {
		b.mu.Unlock()
		return b.withShared(ctx, w)
	}
	b.mu.Unlock()

	select {
	case <-w.done:
		return b.withShared(ctx, w)
	case <-ctx.Done():
	}

	b.mu.Lock()
	if w.finished {
		b.mu.Unlock()
		return b.withShared(ctx, w)
	}
	defer b.mu.Unlock()
	b.removeLocked(w)
	now = b.clock.Now()
	b.settleLocked(now)
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		te := b.throttledLocked(now, b.estimateLocked(now, prio))
		te.cause = err
		return nil, te
	}
	return nil, err
}

// withShared completes a local grant with the shared ledger's, if any.
func (b *Budget) withShared(ctx context.Context, w *waiter) (*Slot, error) {
	if w.err != nil || b.cfg.Shared == nil {
		return w.slot, w.err
	}
	if w.instant {
		// Counted from its grant: take a shared slot and release it at once.
		s, err := b.acquireShared(ctx, &Slot{}, w.prio, w.deadline)
		if err != nil {
			return nil, err
		}
		s.b = b
		s.releaseShared(b.clock.Now())
		return nil, nil
	}
	return b.acquireShared(ctx, w.slot, w.prio, w.deadline)
}

// OnGrant makes f observe every grant, in order, with the time of the grant
// (the earliest a request can arrive upstream). f runs with the budget
// locked: it must be quick and must not call the budget.
func (b *Budget) OnGrant(f func(at time.Time)) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.grantHook = f
	b.mu.Unlock()
}

// OnRelease makes f observe every release of a slot, in order, with the
// slot's grant and the time the window counts it from (its release). f runs
// with the budget locked: it must be quick and must not call the budget.
func (b *Budget) OnRelease(f func(granted, released time.Time)) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.releaseHook = f
	b.mu.Unlock()
}

// OnQueue makes f observe every change of the number of callers queued for
// a slot (for a gauge, or for a test that moves a fake clock only once every
// caller waits). f runs with the budget locked: it must be quick and must
// not call the budget.
func (b *Budget) OnQueue(f func(waiting int)) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.queueHook = f
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
	b.settleLocked(b.clock.Now())
}

// PauseFor is PauseUntil(now + d) on the budget's clock; with a shared
// ledger it pauses the connection for every process.
func (b *Budget) PauseFor(d time.Duration) {
	if b == nil || d <= 0 {
		return
	}
	b.PauseUntil(b.clock.Now().Add(d))
	b.pauseShared(d)
}

// settleLocked brings the budget up to date after any change: grants what
// may be granted, refuses who is now late, re-arms the timer and reports a
// change of the queue length.
func (b *Budget) settleLocked(now time.Time) {
	b.dispatchLocked(now)
	b.refuseLateLocked(now)
	b.armLocked(now)
	if n := b.waitingLocked(); n != b.reported {
		b.reported = n
		if b.queueHook != nil {
			b.queueHook(n)
		}
	}
}

// nextFreeLocked returns the earliest time not before now at which a grant is
// allowed, and whether it is known: while every slot that may free is in
// flight, the next grant waits for a release, and the time returned is the
// earliest it could be (as if a slot were released now).
func (b *Budget) nextFreeLocked(now time.Time) (time.Time, bool) {
	t := now
	if b.paused.After(t) {
		t = b.paused
	}
	k := b.cfg.Limit - b.inFlight // released slots that may still count
	if k <= 0 {
		if free := now.Add(b.cfg.Window); free.After(t) {
			t = free
		}
		return t, false
	}
	if n := len(b.log); n >= k {
		if free := b.log[n-k].Add(b.cfg.Window); free.After(t) {
			t = free
		}
	}
	return t, true
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
		if w == nil {
			return
		}
		if at, known := b.nextFreeLocked(now); !known || at.After(now) {
			return
		}
		b.queues[w.prio][0] = nil
		b.queues[w.prio] = b.queues[w.prio][1:]
		w.slot = b.grantLocked(now, w.instant)
		b.finishLocked(w, nil)
	}
}

// grantLocked grants a slot at now: in flight, or released at once when
// instant (and then no slot is returned).
func (b *Budget) grantLocked(now time.Time, instant bool) *Slot {
	if b.grantHook != nil {
		b.grantHook(now)
	}
	if instant {
		b.recordLocked(now, now)
		if b.releaseHook != nil {
			b.releaseHook(now, now)
		}
		return nil
	}
	b.inFlight++
	return &Slot{b: b, granted: now}
}

// recordLocked adds a release at t to the log, keeping it ascending. It
// forgets the oldest releases beyond Limit once they are out of the window
// at now: they can no longer decide a grant nor count as used. (The log
// exceeds Limit only while more than Limit releases count, after Charge.)
func (b *Budget) recordLocked(t, now time.Time) {
	i := len(b.log)
	for i > 0 && b.log[i-1].After(t) {
		i--
	}
	b.log = slices.Insert(b.log, i, t)
	cut := now.Add(-b.cfg.Window)
	drop := 0
	for len(b.log)-drop > b.cfg.Limit && !b.log[drop].After(cut) {
		drop++
	}
	if drop > 0 {
		b.log = append(b.log[:0], b.log[drop:]...)
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
// will receive them, assuming nobody leaves or jumps ahead, every slot in
// flight is released now and every predicted grant at once. Each assumption
// can only make a prediction earlier than the truth.
type slotSim struct {
	hist   []time.Time // the last (at most) limit releases, real and predicted, ascending
	t      time.Time   // no grant before this time
	limit  int
	window time.Duration
}

func (b *Budget) simLocked(now time.Time) *slotSim {
	hist := make([]time.Time, 0, len(b.log)+b.inFlight)
	hist = append(hist, b.log...)
	for range b.inFlight {
		hist = append(hist, now)
	}
	if n := len(b.log); n > 0 && b.inFlight > 0 && b.log[n-1].After(now) {
		slices.SortFunc(hist, func(x, y time.Time) int { return x.Compare(y) })
	}
	if n := len(hist); n > b.cfg.Limit {
		hist = hist[n-b.cfg.Limit:]
	}
	s := &slotSim{hist: hist, t: now, limit: b.cfg.Limit, window: b.cfg.Window}
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
	if withDeadline == 0 {
		return
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

// earliestDeadlineLocked returns the earliest deadline after now of a
// waiting caller.
func (b *Budget) earliestDeadlineLocked(now time.Time) (time.Time, bool) {
	var first time.Time
	for _, q := range b.queues {
		for _, w := range q {
			if w.deadline.After(now) && (first.IsZero() || w.deadline.Before(first)) {
				first = w.deadline
			}
		}
	}
	return first, !first.IsZero()
}

// armLocked keeps one timer armed while anyone waits, and none otherwise:
// for the next free slot when its time is known, and, while slots are in
// flight (their releases could make predicted turns late), for the earliest
// deadline of a waiter, so that a caller is refused by then at the latest.
func (b *Budget) armLocked(now time.Time) {
	if b.waitingLocked() == 0 {
		b.stopTimerLocked()
		return
	}
	at, known := b.nextFreeLocked(now)
	if b.inFlight > 0 {
		if dl, ok := b.earliestDeadlineLocked(now); ok && (!known || dl.Before(at)) {
			at, known = dl, true
		}
	}
	if !known {
		b.stopTimerLocked() // a release will dispatch
		return
	}
	if b.timer != nil && b.timerAt.Equal(at) {
		return
	}
	b.stopTimerLocked()
	b.timerGen++
	gen := b.timerGen
	b.timerAt = at
	b.timer = b.clock.AfterFunc(at.Sub(now), func() { b.onTimer(gen) })
}

func (b *Budget) stopTimerLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}

func (b *Budget) onTimer(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen == b.timerGen {
		b.timer = nil
	}
	b.settleLocked(b.clock.Now())
}
