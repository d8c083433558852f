package httpx

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

type connKey struct{}

// droppingUpstream answers every request with 200, except the first request
// that arrives on a keep-alive connection which has already served one: that
// request is read (it has arrived) and the connection is closed with no
// reply — a server closing an idle connection just as the client reuses it.
// Go's transport then writes the request again on a new connection.
type droppingUpstream struct {
	*httptest.Server
	clock *clock.Fake

	mu       sync.Mutex
	arrivals []time.Time
	dropped  bool
}

func newDroppingUpstream(t *testing.T, fc *clock.Fake) *droppingUpstream {
	u := &droppingUpstream{clock: fc}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served := r.Context().Value(connKey{}).(*int)
		u.mu.Lock()
		u.arrivals = append(u.arrivals, u.clock.Now())
		drop := *served > 0 && !u.dropped
		u.dropped = u.dropped || drop
		*served++
		u.mu.Unlock()
		if drop {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	u.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, new(int))
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *droppingUpstream) Arrivals() []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.arrivals...)
}

// A GET that Go's transport re-sends on its own, after a reused keep-alive
// connection closed before any reply, arrives upstream twice: the budget
// spends a slot for each arrival.
func TestTransportResendSpendsASlot(t *testing.T) {
	b, fc := fakeBudget(throttle.Config{Limit: 100})
	u := newDroppingUpstream(t, fc)
	var grants []time.Time
	b.OnGrant(func(at time.Time) { grants = append(grants, at) })
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: &ThrottleTransport{Base: tr, Budget: b}}

	for i := range 3 {
		r := wait(t, do(client, get(t, u.URL)))
		require.NoError(t, r.err, "request %d", i)
		assert.Equal(t, "ok", r.body)
	}
	require.True(t, u.dropped, "the second request reused the connection, which the server dropped")
	arrivals := u.Arrivals()
	assert.Len(t, arrivals, 4, "three requests, one of them written twice")
	assert.Len(t, grants, len(arrivals), "one slot per arrival")
	st := b.Status()
	assert.Equal(t, len(arrivals), st.Used)
	assert.Zero(t, st.InFlight, "every slot released")
}

// The re-send waits for its slot like any request: with the budget full, it
// leaves only when a slot frees, so no window at the upstream sees more than
// the limit.
func TestTransportResendWaitsForASlot(t *testing.T) {
	const limit, window = 2, time.Minute
	b, fc := fakeBudget(throttle.Config{Limit: limit, Window: window, MaxWait: -1})
	u := newDroppingUpstream(t, fc)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: &ThrottleTransport{Base: tr, Budget: b}}

	r := wait(t, do(client, get(t, u.URL)))
	require.NoError(t, r.err)
	res := do(client, get(t, u.URL)) // reuses the connection; dropped; re-sent
	// The re-send waits in the budget for the first slot's window to end
	// (interactive callers may not wait at all: MaxWait is negative, but a
	// re-send belongs to a request already admitted).
	advanceWhenWaiting(t, fc, window)
	r = wait(t, res)
	require.NoError(t, r.err)
	assert.Equal(t, "ok", r.body)
	assert.Equal(t, []time.Time{t0, t0, t0.Add(window)}, u.Arrivals())
	st := b.Status()
	assert.Equal(t, limit, st.Used)
	assert.Zero(t, st.InFlight)
}

// A write beyond the slots held (a re-send whose wait for a slot ended with
// its context, written by the transport regardless) is charged at once.
func TestWriteWithoutSlotIsCharged(t *testing.T) {
	b, _ := fakeBudget(throttle.Config{Limit: 1})
	s, err := b.AcquireSlot(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &writes{budget: b, ctx: ctx, slots: []*throttle.Slot{s}}
	w.gotConn(httptrace.GotConnInfo{})
	w.wroteHeaders()
	w.gotConn(httptrace.GotConnInfo{}) // a re-send: the wait fails at once (context ended)
	w.wroteHeaders()                   // and the transport writes anyway
	st := b.Status()
	assert.Equal(t, 2, st.Used)
	assert.Equal(t, 2, st.InFlight)
	w.release(false)
	st = b.Status()
	assert.Equal(t, 2, st.Used)
	assert.Zero(t, st.InFlight)
	w.wroteHeaders() // a write after the round trip returned is counted all the same
	st = b.Status()
	assert.Equal(t, 3, st.Used)
	assert.Zero(t, st.InFlight)
}
