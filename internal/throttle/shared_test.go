package throttle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// memLedger is a Shared ledger in memory on a fake clock: a slot is held
// from its grant until its release plus the window; when full it refuses
// (it never waits), and it can be taken down.
type memLedger struct {
	clock  *clock.Fake
	limit  int
	window time.Duration

	mu     sync.Mutex
	held   map[*memSlot]time.Time // slot → held until (zero: in flight)
	paused time.Time
	down   bool
	grants int
}

type memSlot struct{ l *memLedger }

func newMemLedger(fc *clock.Fake, limit int, window time.Duration) *memLedger {
	return &memLedger{clock: fc, limit: limit, window: window, held: map[*memSlot]time.Time{}}
}

func (l *memLedger) usedLocked(now time.Time) int {
	n := 0
	for s, until := range l.held {
		if until.IsZero() || until.After(now) {
			n++
		} else {
			delete(l.held, s)
		}
	}
	return n
}

func (l *memLedger) Acquire(_ context.Context, connection string, _ Priority) (SharedSlot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, ErrSharedUnavailable
	}
	now := l.clock.Now()
	if l.paused.After(now) || l.usedLocked(now) >= l.limit {
		return nil, &ThrottledError{Connection: connection, Limit: l.limit, Window: l.window, RetryAfter: time.Second}
	}
	s := &memSlot{l: l}
	l.held[s] = time.Time{}
	l.grants++
	return s, nil
}

func (s *memSlot) Done(_ context.Context, hold time.Duration) error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	s.l.held[s] = s.l.clock.Now().Add(hold + s.l.window)
	return nil
}

func (l *memLedger) PauseFor(_ context.Context, _ string, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.clock.Now().Add(d); until.After(l.paused) {
		l.paused = until
	}
	return nil
}

func (l *memLedger) Status(_ context.Context, connection string) (Status, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return Status{}, ErrSharedUnavailable
	}
	now := l.clock.Now()
	used := l.usedLocked(now)
	return Status{Connection: connection, Limit: l.limit, Window: l.window, Used: used, Remaining: max(l.limit-used, 0), At: now}, nil
}

// Two processes, each with a budget of the full limit, spend from one
// shared ledger: together they get no more than the limit per window.
func TestSharedLedgerBindsEveryProcess(t *testing.T) {
	const limit, window = 10, time.Minute
	fc := clock.NewFake(t0)
	ledger := newMemLedger(fc, limit, window)
	cfg := Config{Limit: limit, Window: window, MaxWait: -1, Clock: fc, Shared: ledger}
	a, b := New("pipedrive", cfg), New("pipedrive", cfg)
	ctx := context.Background()

	granted, refused := 0, 0
	for i := range 2 * limit {
		budget := a
		if i%2 == 1 {
			budget = b
		}
		s, err := budget.AcquireSlot(ctx)
		if err != nil {
			var te *ThrottledError
			require.ErrorAs(t, err, &te)
			refused++
			continue
		}
		granted++
		s.Done()
	}
	assert.Equal(t, limit, granted, "the shared ledger holds both processes to one limit")
	assert.Equal(t, limit, refused)
	assert.Zero(t, a.localStatus().InFlight, "a refused slot is given back at once")
	assert.Zero(t, b.localStatus().InFlight)

	st := a.Status()
	assert.Equal(t, limit, st.Used, "status reads the shared figures")
	assert.Zero(t, st.Remaining)

	fc.Advance(window)
	s, err := b.AcquireSlot(ctx)
	require.NoError(t, err, "a window later the shared slots are free")
	s.Done()
}

// A pause one process learns from the upstream stops the others too.
func TestSharedPauseReachesEveryProcess(t *testing.T) {
	fc := clock.NewFake(t0)
	ledger := newMemLedger(fc, 10, time.Minute)
	cfg := Config{Limit: 10, Window: time.Minute, MaxWait: -1, Clock: fc, Shared: ledger}
	a, b := New("pipedrive", cfg), New("pipedrive", cfg)
	a.PauseFor(30 * time.Second)
	_, err := b.AcquireSlot(context.Background())
	var te *ThrottledError
	require.ErrorAs(t, err, &te, "the other process is paused as well")
	fc.Advance(30 * time.Second)
	s, err := b.AcquireSlot(context.Background())
	require.NoError(t, err)
	s.Done()
}

// Fail closed: without the ledger nothing may be sent, and the caller is
// told why.
func TestSharedLedgerDownSendsNothing(t *testing.T) {
	fc := clock.NewFake(t0)
	ledger := newMemLedger(fc, 10, time.Minute)
	b := New("pipedrive", Config{Limit: 10, Window: time.Minute, Clock: fc, Shared: ledger})
	ledger.mu.Lock()
	ledger.down = true
	ledger.mu.Unlock()

	_, err := b.AcquireSlot(context.Background())
	require.True(t, errors.Is(err, ErrSharedUnavailable), "%v", err)
	require.Error(t, b.Acquire(context.Background()))
	assert.Zero(t, b.localStatus().InFlight, "the local slot is given back")
	assert.Zero(t, b.Status().Remaining, "no budget is reported while the ledger is down")

	ledger.mu.Lock()
	ledger.down = false
	ledger.mu.Unlock()
	s, err := b.AcquireSlot(context.Background())
	require.NoError(t, err)
	s.Done()
	assert.Equal(t, 1, ledger.grants, "grants resume once it is back; none was made while it was down")
}
