package throttle

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acquireSlotAsync starts AcquireSlot in a goroutine and returns its result
// once the call has either queued in the budget or returned.
func acquireSlotAsync(t *testing.T, ctx context.Context, b *Budget, wait bool) <-chan slotResult {
	t.Helper()
	c := blocking(ctx, nil)
	ch := make(chan slotResult, 1)
	returned := make(chan struct{})
	go func() {
		var r slotResult
		if wait {
			r.slot, r.err = b.WaitSlot(c)
		} else {
			r.slot, r.err = b.AcquireSlot(c)
		}
		ch <- r
		close(returned)
	}()
	select {
	case <-c.blocked:
	case <-returned:
	case <-time.After(hangGuard):
		t.Fatal("AcquireSlot neither queued nor returned")
	}
	return ch
}

type slotResult struct {
	slot *Slot
	err  error
}

func receiveSlot(t *testing.T, ch <-chan slotResult) (*Slot, error) {
	t.Helper()
	select {
	case r := <-ch:
		return r.slot, r.err
	case <-time.After(hangGuard):
		t.Fatal("AcquireSlot did not return")
		return nil, nil
	}
}

// A slot counts from its grant until its release plus the window, not the
// grant plus the window: a request still in flight when the window of its
// grant ends keeps its slot.
func TestSlotFreesOneWindowAfterItsRelease(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute})
	var releases [][2]time.Time
	b.OnRelease(func(g, r time.Time) { releases = append(releases, [2]time.Time{g, r}) })
	s, err := b.AcquireSlot(context.Background())
	require.NoError(t, err)
	assert.Equal(t, t0, s.Granted())

	fc.Advance(70 * time.Second) // the grant's window has ended; the request has not
	st := b.Status()
	assert.Equal(t, 1, st.Used, "a slot in flight counts as used")
	assert.Equal(t, 1, st.InFlight)
	assert.Equal(t, 0, st.Remaining)
	assert.Equal(t, fc.Now().Add(time.Minute), st.ResetAt, "at the earliest, one window from now")

	res := acquireSlotAsync(t, bg(), b, false)
	requireWaiting(t, b, 1)
	assert.Equal(t, 0, fc.Waiters(), "no timer: only a release can free the slot")

	s.Done() // at 70s
	s.Done() // a second call does nothing
	assert.Equal(t, [][2]time.Time{{t0, t0.Add(70 * time.Second)}}, releases)
	st = b.Status()
	assert.Equal(t, 1, st.Used)
	assert.Equal(t, 0, st.InFlight)
	assert.Equal(t, t0.Add(130*time.Second), st.ResetAt)

	fc.Advance(time.Minute - time.Nanosecond)
	requireWaiting(t, b, 1)
	fc.Advance(time.Nanosecond)
	s2, err := receiveSlot(t, res)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(130*time.Second), s2.Granted())
	s2.Done()
}

// DoneAt releases as of a given time (never before the grant); a release
// that frees a slot hands it to the head of the queue at once.
func TestDoneAtAndReleaseHandsTheSlotOn(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute})
	s, err := b.AcquireSlot(context.Background())
	require.NoError(t, err)
	res := acquireSlotAsync(t, bg(), b, false)
	requireWaiting(t, b, 1)

	fc.Advance(100 * time.Second)
	requireWaiting(t, b, 1)
	s.DoneAt(t0.Add(10 * time.Second)) // its window ended at 70s
	s2, err := receiveSlot(t, res)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(100*time.Second), s2.Granted())

	s2.DoneAt(t0) // before its grant: counts from the grant
	st := b.Status()
	assert.Equal(t, 1, st.Used)
	assert.Equal(t, t0.Add(160*time.Second), st.ResetAt)
}

// A caller whose turn, predicted as if the slots in flight were released
// now, falls after its deadline is refused at once; one whose prediction
// fits is refused when a late release or its deadline shows it will not be
// served in time.
func TestInFlightSlotsAndDeadlines(t *testing.T) {
	t.Run("refused at once", func(t *testing.T) {
		b, _ := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: 30 * time.Second})
		_, err := b.AcquireSlot(context.Background())
		require.NoError(t, err)
		_, err = b.AcquireSlot(context.Background())
		var te *ThrottledError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, time.Minute, te.RetryAfter, "the earliest a slot in flight can free")
	})
	t.Run("refused by a late release", func(t *testing.T) {
		b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: 90 * time.Second})
		s, err := b.AcquireSlot(context.Background())
		require.NoError(t, err)
		res := acquireSlotAsync(t, context.Background(), b, false) // predicted at 60s, deadline 90s
		requireWaiting(t, b, 1)
		fc.Advance(40 * time.Second)
		requireWaiting(t, b, 1)
		s.Done() // the turn moves to 100s
		_, err = receiveSlot(t, res)
		var te *ThrottledError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, time.Minute, te.RetryAfter)
		assert.Equal(t, 0, fc.Waiters())
	})
	t.Run("refused at its deadline while the slot is in flight", func(t *testing.T) {
		b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: 90 * time.Second})
		s, err := b.AcquireSlot(context.Background())
		require.NoError(t, err)
		res := acquireSlotAsync(t, context.Background(), b, false)
		requireWaiting(t, b, 1)
		assert.Equal(t, 1, fc.Waiters(), "a timer for the deadline")
		fc.Advance(90*time.Second - time.Nanosecond)
		requireWaiting(t, b, 1)
		fc.Advance(time.Nanosecond)
		_, err = receiveSlot(t, res)
		var te *ThrottledError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, time.Minute, te.RetryAfter)
		assert.Equal(t, 0, fc.Waiters())
		s.Done()
	})
	t.Run("served when the release comes in time", func(t *testing.T) {
		b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: 90 * time.Second})
		s, err := b.AcquireSlot(context.Background())
		require.NoError(t, err)
		res := acquireSlotAsync(t, context.Background(), b, false)
		requireWaiting(t, b, 1)
		fc.Advance(20 * time.Second)
		s.Done() // the turn: 80s
		fc.Advance(time.Minute)
		s2, err := receiveSlot(t, res)
		require.NoError(t, err)
		assert.Equal(t, t0.Add(80*time.Second), s2.Granted())
	})
}

// WaitSlot is never refused for a deadline; Charge takes a slot past the
// limit, and the budget counts it.
func TestWaitSlotAndCharge(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute, MaxWait: -1})
	var grants []time.Time
	b.OnGrant(func(at time.Time) { grants = append(grants, at) })
	s, err := b.AcquireSlot(context.Background())
	require.NoError(t, err)
	_, err = b.AcquireSlot(context.Background())
	var te *ThrottledError
	require.ErrorAs(t, err, &te, "an interactive caller with no wait allowed is refused")

	res := acquireSlotAsync(t, context.Background(), b, true)
	requireWaiting(t, b, 1)

	c := b.Charge()
	st := b.Status()
	assert.Equal(t, 2, st.Used, "a charged slot counts, even past the limit")
	assert.Equal(t, 0, st.Remaining)
	assert.Equal(t, 2, st.InFlight)
	fc.Advance(time.Second)
	s.Done()
	c.Done()
	fc.Advance(time.Minute)
	s3, err := receiveSlot(t, res)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(61*time.Second), s3.Granted())
	s3.Done()
	assert.Equal(t, []time.Time{t0, t0, t0.Add(61 * time.Second)}, grants)

	var nilBudget *Budget
	ns, err := nilBudget.AcquireSlot(context.Background())
	assert.NoError(t, err)
	assert.Nil(t, ns)
	ns.Done() // a nil slot ignores Done
	assert.Nil(t, nilBudget.Charge())
}

// OnQueue observes every change of the queue length.
func TestOnQueue(t *testing.T) {
	b, fc := newFakeBudget("p", Config{Limit: 1, Window: time.Minute})
	seen := make(chan int, 8)
	b.OnQueue(func(n int) { seen <- n })
	require.NoError(t, b.Acquire(context.Background()))
	res := acquireAsync(t, bg(), b)
	assert.Equal(t, 1, <-seen)
	fc.Advance(time.Minute)
	require.NoError(t, receive(t, res))
	assert.Equal(t, 0, <-seen)
	assert.Empty(t, seen)
}

// A caller's budget with a slot in flight is busy: the Registry does not
// drop it, however long the request runs, and its last release keeps it for
// the hold after that.
func TestRegistryKeepsBudgetWithSlotInFlight(t *testing.T) {
	r, fc := newFakeRegistry(Config{Limit: 5, Window: time.Minute}, WithIdleTTL(10*time.Minute))
	a := mustGet(t, r, "pipedrive:aaaaaaaaaaaa")
	s, err := a.AcquireSlot(context.Background())
	require.NoError(t, err)
	fc.Advance(time.Hour)
	assert.Equal(t, []string{"pipedrive:aaaaaaaaaaaa"}, held(r))
	s.Done()
	fc.Advance(10*time.Minute - time.Second)
	assert.Equal(t, []string{"pipedrive:aaaaaaaaaaaa"}, held(r))
	fc.Advance(time.Second)
	assert.Empty(t, held(r))
}
