package throttle

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Shared is a budget ledger that several processes spend from (cluster
// mode: replicas behind a load balancer, one upstream limit). A Budget
// configured with one (Config.Shared) grants a slot only once the ledger
// has granted one too, releases both together and passes upstream pauses
// on, so the limit holds across processes where the upstream counts.
type Shared interface {
	// Acquire grants one slot of the connection, waiting within ctx. An
	// unreachable ledger is an error wrapping ErrSharedUnavailable: nothing
	// may be sent then (fail closed).
	Acquire(ctx context.Context, connection string, p Priority) (SharedSlot, error)
	// PauseFor makes every process grant nothing of the connection for d
	// (an upstream 429 or rate-limit reset), on the ledger's clock.
	PauseFor(ctx context.Context, connection string, d time.Duration) error
	// Status returns the connection's figures across processes.
	Status(ctx context.Context, connection string) (Status, error)
}

// SharedSlot is a slot a Shared ledger granted.
type SharedSlot interface {
	// Done releases the slot as of hold from now (the response has
	// returned, or the request failed and may still arrive within hold):
	// it then counts for one window.
	Done(ctx context.Context, hold time.Duration) error
}

// ErrSharedUnavailable is the refusal of a budget whose shared ledger
// cannot be reached: nothing was sent upstream.
var ErrSharedUnavailable = errors.New("the shared budget ledger is unreachable, so nothing was sent upstream")

// sharedCallTimeout bounds the ledger calls that release, pause and report,
// which nobody waits on otherwise.
const sharedCallTimeout = 5 * time.Second

// acquireShared takes the shared slot that goes with a local one, within
// the caller's deadline (zero: ctx's own). On failure the local slot is
// given back unused: its request never left.
func (b *Budget) acquireShared(ctx context.Context, slot *Slot, prio Priority, deadline time.Time) (*Slot, error) {
	sctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, max(deadline.Sub(b.clock.Now()), 0))
		defer cancel()
	}
	ss, err := b.cfg.Shared.Acquire(sctx, b.name, prio)
	if err != nil {
		slot.giveBack()
		var te *ThrottledError
		switch {
		case errors.As(err, &te), errors.Is(err, ErrSharedUnavailable), ctx.Err() != nil:
			return nil, err
		case errors.Is(err, context.DeadlineExceeded):
			// Our own bound (MaxWait or the caller's deadline) ran out.
			return nil, &ThrottledError{Connection: b.name, Limit: b.cfg.Limit, Window: b.cfg.Window, RetryAfter: time.Second, cause: err}
		}
		return nil, fmt.Errorf("%w: %v", ErrSharedUnavailable, err)
	}
	slot.shared = ss
	return slot, nil
}

// giveBack returns a slot whose request never left: it stops counting at
// once, as if never granted.
func (s *Slot) giveBack() {
	if s == nil || s.b == nil {
		return
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	b.inFlight--
	b.settleLocked(b.clock.Now())
}

// releaseShared releases the shared slot that goes with a local one, as of
// at (the local release time).
func (s *Slot) releaseShared(at time.Time) {
	ss := s.shared
	if ss == nil {
		return
	}
	s.shared = nil
	hold := max(at.Sub(s.b.clock.Now()), 0)
	ctx, cancel := context.WithTimeout(context.Background(), sharedCallTimeout)
	defer cancel()
	// A release that fails leaves the ledger holding the slot until its
	// grant + MaxInFlight + window: more cautious, never less.
	_ = ss.Done(ctx, hold)
}

// sharedStatus returns the shared figures with this process's queue; when
// the ledger cannot be read, the local figures with nothing remaining (as
// nothing may be sent).
func (b *Budget) sharedStatus(local Status) Status {
	ctx, cancel := context.WithTimeout(context.Background(), sharedCallTimeout)
	defer cancel()
	st, err := b.cfg.Shared.Status(ctx, b.name)
	if err != nil {
		local.Remaining = 0
		return local
	}
	st.Connection, st.Waiting = b.name, local.Waiting
	if st.At.IsZero() {
		st.At = local.At
	}
	return st
}

// pauseShared passes an upstream pause on to the shared ledger.
func (b *Budget) pauseShared(d time.Duration) {
	if b.cfg.Shared == nil || d <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedCallTimeout)
	defer cancel()
	_ = b.cfg.Shared.PauseFor(ctx, b.name, d)
}
