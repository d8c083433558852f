package throttle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func newFakeBudget(name string, cfg Config) (*Budget, *clock.Fake) {
	fc := clock.NewFake(t0)
	cfg.Clock = fc
	return New(name, cfg), fc
}

// hangGuard bounds every wait for another goroutine. It is not a time
// budget: the waits end on events, and the guard only turns a hang into a
// failure.
const hangGuard = time.Minute

// signal wakes a waiter whenever something it watches may have changed.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

func (s *signal) next() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// waitUntil blocks until cond holds, checking it again at every notification
// of sig. The notification channel is taken before cond is checked, so a
// change that happens meanwhile is not missed.
func waitUntil(t *testing.T, sig *signal, what string, cond func() bool) {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		next := sig.next()
		if cond() {
			return
		}
		select {
		case <-next:
		case <-guard.C:
			t.Fatalf("no progress in %v waiting for %s", hangGuard, what)
		}
	}
}

// blockCtx reports when Acquire blocks on it. Acquire queues its caller under
// the budget's lock and only then waits in a select on ctx.Done, so the first
// call of Done means the caller has queued (it may since have been served or
// refused by whoever moved next). blockCtx must be the context passed to
// Acquire itself: contexts derived from it call Done when they are made.
type blockCtx struct {
	context.Context
	once    sync.Once
	blocked chan struct{}
	onBlock func() // optional
}

func blocking(ctx context.Context, onBlock func()) *blockCtx {
	return &blockCtx{Context: ctx, blocked: make(chan struct{}), onBlock: onBlock}
}

func (c *blockCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		close(c.blocked)
		if c.onBlock != nil {
			c.onBlock()
		}
	})
	return c.Context.Done()
}

// acquireAsync starts Acquire in a goroutine and returns its result channel
// once the call has either queued in the budget or returned.
func acquireAsync(t *testing.T, ctx context.Context, b *Budget) <-chan error {
	t.Helper()
	c := blocking(ctx, nil)
	ch := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		ch <- b.Acquire(c)
		close(returned)
	}()
	select {
	case <-c.blocked:
	case <-returned:
	case <-time.After(hangGuard):
		t.Fatal("Acquire neither queued nor returned")
	}
	return ch
}

func requireWaiting(t *testing.T, b *Budget, n int) {
	t.Helper()
	require.Equal(t, n, b.Status().Waiting, "callers queued")
}

func receive(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(hangGuard):
		t.Fatal("Acquire did not return")
		return nil
	}
}

func bg() context.Context { return WithPriority(context.Background(), Background) }

func TestPriorityFromContext(t *testing.T) {
	assert.Equal(t, Interactive, PriorityFrom(context.Background()))
	assert.Equal(t, Background, PriorityFrom(bg()))
	assert.Equal(t, Interactive, PriorityFrom(WithPriority(bg(), Interactive)))
	assert.Equal(t, Interactive, PriorityFrom(WithPriority(context.Background(), Priority(7))))
	assert.Equal(t, "background", Background.String())
}

func TestDefaults(t *testing.T) {
	b := New("x", Config{})
	cfg := b.Config()
	assert.Equal(t, 100, cfg.Limit)
	assert.Equal(t, 60*time.Second, cfg.Window)
	assert.Equal(t, 30*time.Second, cfg.MaxWait)
	assert.NotNil(t, cfg.Clock)

	var nilBudget *Budget
	assert.NoError(t, nilBudget.Acquire(context.Background()))
	nilBudget.PauseFor(time.Second)
	assert.Equal(t, Status{}, nilBudget.Status())
}

// TestExactUnderConcurrentLoad drives 50 goroutines of mixed priority
// against a budget for three simulated minutes and records every grant. No
// window may hold more than Limit grants, and every call must end in exactly
// one grant or one error.
func TestExactUnderConcurrentLoad(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{{20, time.Minute}, {7, 10 * time.Second}, {100, time.Minute}} {
		t.Run(fmt.Sprintf("%d_per_%s", tc.limit, tc.window), func(t *testing.T) {
			testExactUnderConcurrentLoad(t, tc.limit, tc.window)
		})
	}
}

func testExactUnderConcurrentLoad(t *testing.T, limit int, window time.Duration) {
	const workers = 50
	b, fc := newFakeBudget("pipedrive", Config{Limit: limit, Window: window, MaxWait: 30 * time.Second})
	var grants []time.Time // appended with b.mu held
	b.grantHook = func(t time.Time) { grants = append(grants, t) }

	var calls, granted, throttled, canceled, sleeping atomic.Int64
	parked := newSignal() // notified whenever a worker has queued or gone to sleep
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for ctx.Err() == nil {
				cctx, cancel := ctx, context.CancelFunc(func() {})
				switch rng.IntN(6) {
				case 0:
					cctx = WithPriority(ctx, Background)
				case 1:
					// Taken as 90s on the fake clock; it never expires in
					// real time during the test.
					cctx, cancel = context.WithTimeout(WithPriority(ctx, Background), 90*time.Second)
				}
				calls.Add(1)
				err := b.Acquire(blocking(cctx, parked.notify))
				cancel()
				pause := time.Duration(1+rng.IntN(3000)) * time.Millisecond
				var te *ThrottledError
				switch {
				case err == nil:
					granted.Add(1)
				case errors.As(err, &te):
					throttled.Add(1)
					assert.Greater(t, te.RetryAfter, time.Duration(0))
					// Some callers come back before they were told to.
					pause = time.Millisecond + rand.N(te.RetryAfter)
				case errors.Is(err, context.Canceled):
					canceled.Add(1)
					return
				default:
					t.Errorf("unexpected error: %v", err)
					return
				}
				sleeping.Add(1)
				sleep := fc.NewTimer(pause)
				parked.notify()
				select {
				case <-sleep.C():
				case <-ctx.Done():
				}
				sleep.Stop()
				sleeping.Add(-1)
			}
		}()
	}

	// quiescent reports whether every worker is parked: queued in the budget
	// or asleep on the fake clock. It decides when to move time on, so that
	// every worker has had its say at each instant; the limit check never
	// depends on it, because grants are recorded with the budget's own lock
	// held. A worker notifies parked after it has parked, so the wait below
	// wakes when the last one does.
	quiescent := func() bool {
		b.mu.Lock()
		waiting, timer := b.waitingLocked(), b.timer != nil
		b.mu.Unlock()
		sleepers := fc.Waiters()
		if timer {
			sleepers--
		}
		return waiting+sleepers == workers && sleepers == int(sleeping.Load())
	}
	end := t0.Add(3 * time.Minute)
	for fc.Now().Before(end) {
		waitUntil(t, parked, "workers to park", quiescent)
		fc.Advance(250 * time.Millisecond)
	}
	stop()
	wg.Wait()

	b.mu.Lock()
	defer b.mu.Unlock()
	require.Len(t, grants, int(granted.Load()), "every grant reached exactly one caller")
	assert.Equal(t, calls.Load(), granted.Load()+throttled.Load()+canceled.Load(), "every call ended exactly once")
	for i := limit; i < len(grants); i++ {
		if d := grants[i].Sub(grants[i-limit]); d < window {
			t.Fatalf("grants %d..%d span %v < %v: more than %d in one window", i-limit, i, d, window, limit)
		}
	}
	t.Logf("calls=%d granted=%d throttled=%d canceled=%d", calls.Load(), granted.Load(), throttled.Load(), canceled.Load())
	// The load saturates the budget: a full burst in every window.
	assert.GreaterOrEqual(t, len(grants), int(3*time.Minute/window)*limit)
	assert.Greater(t, throttled.Load(), int64(0))
	assert.Equal(t, 0, b.waitingLocked())
	assert.Nil(t, b.timer, "no timer left armed")
	assert.Equal(t, 0, fc.Waiters())
}

func TestWindowIsHalfOpen(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: 2 * time.Minute})
	var grants []time.Time
	b.grantHook = func(t time.Time) { grants = append(grants, t) }
	require.NoError(t, b.Acquire(context.Background()))
	res := acquireAsync(t, context.Background(), b)
	requireWaiting(t, b, 1)
	fc.Advance(time.Minute - time.Nanosecond)
	assert.Equal(t, 1, b.Status().Waiting)
	fc.Advance(time.Nanosecond)
	require.NoError(t, receive(t, res))
	assert.Equal(t, []time.Time{t0, t0.Add(time.Minute)}, grants)
}

func TestInteractiveServedBeforeBackgroundFIFOWithin(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: time.Hour})
	require.NoError(t, b.Acquire(context.Background()))

	order := make(chan string, 4)
	start := func(name string, ctx context.Context, n int) {
		res := acquireAsync(t, ctx, b)
		requireWaiting(t, b, n)
		go func() {
			if err := <-res; err != nil {
				order <- name + ": " + err.Error()
				return
			}
			order <- name
		}()
	}
	start("bg1", bg(), 1)
	start("bg2", bg(), 2)
	start("int1", context.Background(), 3)
	start("int2", context.Background(), 4)

	var got []string
	for range 4 {
		fc.Advance(time.Minute)
		select {
		case name := <-order:
			got = append(got, name)
		case <-time.After(hangGuard):
			t.Fatal("no grant after a window")
		}
	}
	assert.Equal(t, []string{"int1", "int2", "bg1", "bg2"}, got)
}

func TestFailFastWithRetryAfter(t *testing.T) {
	b, fc := newFakeBudget("pipedrive", Config{Limit: 2, Window: time.Minute, MaxWait: 30 * time.Second})
	require.NoError(t, b.Acquire(context.Background()))
	require.NoError(t, b.Acquire(context.Background()))
	fc.Advance(10 * time.Second)

	// The next slot frees at 60s: 50s away, more than MaxWait.
	err := b.Acquire(context.Background())
	var te *ThrottledError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "pipedrive", te.Connection)
	assert.Equal(t, 50*time.Second, te.RetryAfter)
	assert.Equal(t, 50, te.RetryAfterSeconds())
	assert.False(t, te.Paused)
	assert.NoError(t, te.Unwrap())
	assert.Equal(t, "throttle budget for pipedrive exhausted: 2 requests per 60s; retry after 50s", err.Error())
	assert.Equal(t, 0, b.Status().Waiting, "a refused caller does not queue")

	// At 40s, two interactive callers fit in the slots freeing at 60s...
	fc.Advance(30 * time.Second)
	i1 := acquireAsync(t, context.Background(), b)
	requireWaiting(t, b, 1)
	i2 := acquireAsync(t, context.Background(), b)
	requireWaiting(t, b, 2)
	// ...but a third would be served at 120s, 80s away.
	require.ErrorAs(t, b.Acquire(context.Background()), &te)
	assert.Equal(t, 80*time.Second, te.RetryAfter)

	// A background caller's deadline comes from its context.
	short, cancel := context.WithTimeout(bg(), 10*time.Second)
	defer cancel()
	require.ErrorAs(t, b.Acquire(short), &te)
	assert.Equal(t, 80*time.Second, te.RetryAfter)

	// Without a deadline it waits as long as it takes.
	b1 := acquireAsync(t, bg(), b)
	requireWaiting(t, b, 3)

	fc.Advance(20 * time.Second) // 60s
	require.NoError(t, receive(t, i1))
	require.NoError(t, receive(t, i2))
	assert.Equal(t, 1, b.Status().Waiting)
	fc.Advance(time.Minute) // 120s
	require.NoError(t, receive(t, b1))
}

func TestInteractiveArrivalRefusesBackgroundPastDeadline(t *testing.T) {
	b, _ := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: 2 * time.Minute})
	require.NoError(t, b.Acquire(context.Background()))

	ctx, cancel := context.WithTimeout(bg(), 90*time.Second)
	defer cancel()
	bres := acquireAsync(t, ctx, b) // its turn at 60s is within its deadline
	requireWaiting(t, b, 1)

	ictx, icancel := context.WithCancel(context.Background())
	ires := acquireAsync(t, ictx, b) // takes the 60s slot
	var te *ThrottledError
	require.ErrorAs(t, receive(t, bres), &te, "background caller pushed to 120s is refused at once")
	assert.Equal(t, 120*time.Second, te.RetryAfter)
	requireWaiting(t, b, 1)
	icancel()
	require.ErrorIs(t, receive(t, ires), context.Canceled)
}

func TestRefusedWaiterLeavesItsTurn(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: time.Hour})
	require.NoError(t, b.Acquire(context.Background()))
	ctx, cancel := context.WithTimeout(bg(), 90*time.Second)
	defer cancel()
	first := acquireAsync(t, ctx, b) // 60s
	requireWaiting(t, b, 1)
	second := acquireAsync(t, bg(), b) // 120s
	requireWaiting(t, b, 2)
	third := acquireAsync(t, context.Background(), b) // jumps ahead: 60s
	var te *ThrottledError
	require.ErrorAs(t, receive(t, first), &te)
	requireWaiting(t, b, 2)
	// The refused caller's turn went to the one behind it.
	fc.Advance(time.Minute)
	require.NoError(t, receive(t, third))
	fc.Advance(time.Minute)
	require.NoError(t, receive(t, second))
}

func TestPauseUntil(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 10, Window: time.Minute, MaxWait: 30 * time.Second})
	b.PauseUntil(t0.Add(5 * time.Second))
	b.PauseUntil(t0.Add(time.Second)) // never shortens
	st := b.Status()
	assert.Equal(t, t0.Add(5*time.Second), st.PausedUntil)
	assert.Equal(t, t0.Add(5*time.Second), st.ResetAt)
	assert.Equal(t, 5, st.ResetSeconds())
	assert.Equal(t, 10, st.Remaining)

	res := acquireAsync(t, context.Background(), b)
	requireWaiting(t, b, 1)
	fc.Advance(5*time.Second - time.Millisecond)
	assert.Equal(t, 1, b.Status().Waiting)
	fc.Advance(time.Millisecond)
	require.NoError(t, receive(t, res))
	assert.True(t, b.Status().PausedUntil.IsZero())

	// Extending a pause past a waiter's deadline refuses it at once.
	b.PauseFor(10 * time.Second)
	res = acquireAsync(t, context.Background(), b)
	requireWaiting(t, b, 1)
	b.PauseFor(time.Minute)
	err := receive(t, res)
	var te *ThrottledError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Paused)
	assert.Equal(t, time.Minute, te.RetryAfter)
	assert.Contains(t, err.Error(), "paused")
	assert.Equal(t, 0, fc.Waiters(), "no timer armed without waiters")
}

func TestNegativeMaxWaitNeverWaits(t *testing.T) {
	b, _ := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: -1})
	require.NoError(t, b.Acquire(context.Background()))
	var te *ThrottledError
	require.ErrorAs(t, b.Acquire(context.Background()), &te)
	assert.Equal(t, time.Minute, te.RetryAfter)
}

func TestCancelWhileWaiting(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: time.Hour})
	require.NoError(t, b.Acquire(context.Background()))

	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(t, ctx, b)
	requireWaiting(t, b, 1)
	assert.Equal(t, 1, fc.Waiters(), "one timer for the next slot")
	cancel()
	require.ErrorIs(t, receive(t, res), context.Canceled)
	assert.Equal(t, 0, b.Status().Waiting)
	assert.Equal(t, 0, fc.Waiters(), "the timer is stopped once nobody waits")

	// A cancelled context never spends budget.
	fc.Advance(time.Minute)
	require.ErrorIs(t, b.Acquire(ctx), context.Canceled)
	assert.Equal(t, 0, b.Status().Used)
}

// expiringCtx hides any deadline, so Acquire queues the caller and only
// learns of the deadline when the test expires the context.
type expiringCtx struct {
	context.Context
	done chan struct{}
}

func (*expiringCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiringCtx) Done() <-chan struct{}     { return c.done }
func (c *expiringCtx) expire()                   { close(c.done) }

func (c *expiringCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func TestDeadlineWhileWaitingIsThrottled(t *testing.T) {
	b, _ := newFakeBudget("p", Config{Limit: 1, Window: time.Minute})
	require.NoError(t, b.Acquire(context.Background()))
	ctx := &expiringCtx{Context: bg(), done: make(chan struct{})}
	res := acquireAsync(t, ctx, b)
	requireWaiting(t, b, 1)
	ctx.expire()
	err := receive(t, res)
	var te *ThrottledError
	require.ErrorAs(t, err, &te)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, time.Minute, te.RetryAfter)
	assert.Equal(t, 0, b.Status().Waiting)
}

func TestStatus(t *testing.T) {
	b, fc := newFakeBudget("workspan", Config{Limit: 3, Window: time.Minute})
	for range 3 {
		require.NoError(t, b.Acquire(context.Background()))
		fc.Advance(10 * time.Second)
	}
	st := b.Status()
	assert.Equal(t, Status{
		Connection: "workspan", Limit: 3, Window: time.Minute, Used: 3, Remaining: 0,
		ResetAt: t0.Add(time.Minute), At: t0.Add(30 * time.Second),
	}, st)
	assert.Equal(t, 30, st.ResetSeconds())

	fc.Advance(31 * time.Second) // 61s: the first grant has left the window
	st = b.Status()
	assert.Equal(t, 2, st.Used)
	assert.Equal(t, 1, st.Remaining)
	assert.Equal(t, st.At, st.ResetAt)
	assert.Equal(t, 0, st.ResetSeconds())

	raw, err := json.Marshal(st)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	assert.Equal(t, map[string]any{
		"connection": "workspan", "limit": 3.0, "window_seconds": 60.0, "used": 2.0, "remaining": 1.0,
		"reset_at": "2025-03-01T09:01:01Z", "reset_seconds": 0.0, "waiting": 0.0, "at": "2025-03-01T09:01:01Z",
	}, m)

	b.PauseFor(1500 * time.Millisecond)
	raw, err = json.Marshal(b.Status())
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"paused_until":"2025-03-01T09:01:02.5Z"`)
	assert.Contains(t, string(raw), `"reset_seconds":2`)
}

func TestSeconds(t *testing.T) {
	assert.Equal(t, 0, Seconds(-time.Second))
	assert.Equal(t, 0, Seconds(0))
	assert.Equal(t, 1, Seconds(time.Nanosecond))
	assert.Equal(t, 12, Seconds(12*time.Second))
	assert.Equal(t, 13, Seconds(12*time.Second+time.Millisecond))
	assert.Equal(t, 1, (&ThrottledError{}).RetryAfterSeconds())
	assert.Equal(t, "throttle budget for x exhausted: 5 requests per 1.5s; retry after 1s",
		(&ThrottledError{Connection: "x", Limit: 5, Window: 1500 * time.Millisecond}).Error())
}

func TestRegistry(t *testing.T) {
	fc := clock.NewFake(t0)
	r := NewRegistry(Config{Limit: 5, Clock: fc})
	var wg sync.WaitGroup
	got := make([]*Budget, 32)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = r.Budget("pipedrive")
		}()
	}
	wg.Wait()
	for _, b := range got {
		assert.Same(t, got[0], b)
	}
	require.NoError(t, r.Budget("workspan").Acquire(context.Background()))
	r.Budget("partnercenter")

	sts := r.Statuses()
	require.Len(t, sts, 3)
	assert.Equal(t, []string{"partnercenter", "pipedrive", "workspan"},
		[]string{sts[0].Connection, sts[1].Connection, sts[2].Connection})
	assert.Equal(t, 5, sts[2].Limit)
	assert.Equal(t, 1, sts[2].Used)
	assert.Equal(t, 4, sts[2].Remaining)
}
