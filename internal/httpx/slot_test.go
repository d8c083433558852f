package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// A request holds its slot while in flight and releases it when the
// response headers arrive, before its body is read: the slot then counts
// for one window from the release.
func TestSlotHeldUntilTheResponseHeaders(t *testing.T) {
	b, fc := fakeBudget(throttle.Config{Limit: 1, Window: time.Minute})
	seen := make(chan throttle.Status, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		seen <- b.Status()
		fc.Advance(5 * time.Second) // the upstream takes its time
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &ThrottleTransport{Budget: b}}
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	st, during := b.Status(), <-seen
	assert.Equal(t, 1, during.InFlight, "in flight while the upstream serves it")
	assert.Equal(t, 1, during.Used)
	assert.Zero(t, st.InFlight, "released once the headers are in, body unread")
	assert.Equal(t, t0.Add(5*time.Second+time.Minute), st.ResetAt, "one window from the release")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, "ok", string(body))
}

// A round trip that fails after the request was written may leave the
// request on its way: its slot counts from FailedWriteHold after the failure.
func TestFailedWriteHoldsItsSlotALittleLonger(t *testing.T) {
	b, _ := fakeBudget(throttle.Config{Limit: 1, Window: time.Minute})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &ThrottleTransport{Budget: b}}
	_, err := client.Get(srv.URL)
	require.Error(t, err)
	st := b.Status()
	assert.Equal(t, 1, st.Used)
	assert.Zero(t, st.InFlight)
	assert.Equal(t, t0.Add(FailedWriteHold+time.Minute), st.ResetAt)

	// Nothing written (nobody listens): released at once.
	b2, _ := fakeBudget(throttle.Config{Limit: 1, Window: time.Minute})
	srv.Close()
	client = &http.Client{Transport: &ThrottleTransport{Budget: b2}}
	_, err = client.Get(srv.URL)
	require.Error(t, err)
	assert.Equal(t, t0.Add(time.Minute), b2.Status().ResetAt)
}
