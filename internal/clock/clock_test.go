package clock

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFakeTimerFiresOnAdvance(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(10 * time.Second)
	f.Advance(9 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("timer fired early")
	default:
	}
	f.Advance(time.Second)
	select {
	case got := <-tm.C():
		assert.Equal(t, t0.Add(10*time.Second), got)
	default:
		t.Fatal("timer did not fire")
	}
	assert.Equal(t, 0, f.Waiters())
	assert.False(t, tm.Stop())
}

func TestFakeStopAndReset(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Second)
	assert.Equal(t, 1, f.Waiters())
	assert.True(t, tm.Stop())
	assert.Equal(t, 0, f.Waiters())
	f.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("stopped timer fired")
	default:
	}
	assert.False(t, tm.Reset(time.Minute))
	f.Advance(time.Minute)
	<-tm.C()

	// A value that was delivered but not received is dropped by Stop.
	tm.Reset(time.Second)
	f.Advance(time.Second)
	assert.True(t, tm.Stop())
	select {
	case <-tm.C():
		t.Fatal("stale value after Stop")
	default:
	}
}

func TestFakeAfterFuncRunsInOrderDuringAdvance(t *testing.T) {
	f := NewFake(t0)
	var got []time.Duration
	var mu sync.Mutex
	rec := func() {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, f.Now().Sub(t0))
	}
	f.AfterFunc(3*time.Second, rec)
	f.AfterFunc(1*time.Second, func() {
		rec()
		// A timer armed by a callback that falls due within the same
		// Advance fires in the same call.
		f.AfterFunc(1*time.Second, rec)
	})
	stopped := f.AfterFunc(2*time.Second, rec)
	require.True(t, stopped.Stop())
	f.Advance(5 * time.Second)
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, got)
	assert.Equal(t, t0.Add(5*time.Second), f.Now())
}

func TestFakeSet(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Minute)
	f.Set(t0.Add(-time.Hour))
	assert.Equal(t, t0.Add(-time.Hour), f.Now())
	f.Set(t0.Add(time.Hour))
	<-tm.C()
	assert.Equal(t, t0.Add(time.Hour), f.Now())
}

func TestFakeNonPositiveFiresAtOnce(t *testing.T) {
	f := NewFake(t0)
	<-f.NewTimer(0).C()
	done := make(chan struct{})
	f.AfterFunc(-time.Second, func() { close(done) })
	<-done
	assert.Equal(t, 0, f.Waiters())
}

func TestWaitForWaitersAndSleep(t *testing.T) {
	f := NewFake(t0)
	errc := make(chan error, 1)
	go func() { errc <- Sleep(context.Background(), f, 30*time.Second) }()
	require.NoError(t, f.WaitForWaiters(testCtx(t), 1))
	f.Advance(30 * time.Second)
	require.NoError(t, <-errc)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { errc <- Sleep(ctx, f, time.Hour) }()
	require.NoError(t, f.WaitForWaiters(testCtx(t), 1))
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	assert.Equal(t, 0, f.Waiters(), "Sleep must stop its timer")

	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	assert.ErrorIs(t, f.WaitForWaiters(short, 5), context.DeadlineExceeded)
}

func TestRealClock(t *testing.T) {
	c := OrReal(nil)
	before := time.Now()
	assert.False(t, c.Now().Before(before))
	require.NoError(t, Sleep(context.Background(), c, time.Millisecond))
	tm := c.NewTimer(time.Hour)
	assert.True(t, tm.Stop())
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
}
