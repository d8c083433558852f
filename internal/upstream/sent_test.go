package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// issue finding: duplicate creates — which failures of a write leave its
// outcome unknown, and which are refusals that are safe to repeat.
func TestOutcomeUnknown(t *testing.T) {
	body := &BodyError{Connector: "p", Status: 201, Kind: BodyMalformed, Err: errors.New("invalid character 'g'")}
	timeout := fmt.Errorf("Post \"http://x/deals\": %w", context.DeadlineExceeded)
	cases := []struct {
		name          string
		err           error
		sent, unknown bool
	}{
		{"nil", nil, false, false},
		{"2xx with an unusable body", Sent(http.MethodPost, body), true, true},
		{"timeout after the request went out", &SentError{Method: http.MethodPost, Err: timeout}, true, true},
		{"502 from a gateway", Sent(http.MethodPost, &Error{Connector: "p", Status: 502}), true, true},
		{"500", Sent(http.MethodPatch, &Error{Connector: "p", Status: 500}), true, true},
		{"400 is a refusal", Sent(http.MethodPost, &Error{Connector: "p", Status: 400}), true, false},
		{"429 is a refusal", Sent(http.MethodPost, &Error{Connector: "p", Status: 429}), true, false},
		{"wrapped again", fmt.Errorf("create: %w", Sent(http.MethodPost, body)), true, true},
		{"a read is never sent-and-unknown", Sent(http.MethodGet, body), false, false},
		{"not wrapped: never left", timeout, false, false},
		{"a bare body error (no method known)", body, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.sent, RequestSent(c.err))
			assert.Equal(t, c.unknown, OutcomeUnknown(c.err))
		})
	}
	once := Sent(http.MethodPost, body)
	assert.Same(t, once, Sent(http.MethodPut, once), "wrapped once")
	assert.Equal(t, body.Error(), once.Error(), "the text is the cause's")
	var be *BodyError
	assert.ErrorAs(t, once, &be)
}

// issue finding: duplicate creates — the tracker tells a request that
// started to go out from one that never left, for every way a round trip
// can fail.
func TestTrackerTellsWrittenFromNeverSent(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	refused := errors.New("refused by the budget")
	cases := []struct {
		name   string
		client *http.Client
		url    string
		wrote  bool
	}{
		{"timeout while awaiting the reply", &http.Client{Timeout: 100 * time.Millisecond}, hang.URL, true},
		{"dial error", &http.Client{}, closedURL, false},
		{"refused by a RoundTripper before sending", &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, refused
		})}, hang.URL, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(`{"title":"x"}`))
			require.NoError(t, err)
			req, tr := Track(req)
			resp, err := c.client.Do(req)
			if resp != nil {
				Discard(resp)
			}
			require.Error(t, err)
			assert.Equal(t, c.wrote, tr.Wrote())
			wrapped := tr.Wrap(err)
			assert.Equal(t, c.wrote, RequestSent(wrapped))
			assert.Equal(t, c.wrote, OutcomeUnknown(wrapped))
			assert.Equal(t, err.Error(), wrapped.Error())
		})
	}

	t.Run("a read that timed out is not a sent write", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, hang.URL, nil)
		require.NoError(t, err)
		req, tr := Track(req)
		_, err = (&http.Client{Timeout: 100 * time.Millisecond}).Do(req)
		require.Error(t, err)
		assert.True(t, tr.Wrote())
		assert.False(t, RequestSent(tr.Wrap(err)))
	})

	t.Run("an earlier trace in the context still runs", func(t *testing.T) {
		ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(ok.Close)
		var gotConn bool
		ctx := withGotConn(context.Background(), &gotConn)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ok.URL, strings.NewReader("{}"))
		require.NoError(t, err)
		req, tr := Track(req)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		Discard(resp)
		assert.True(t, tr.Wrote())
		assert.True(t, gotConn)
		assert.NoError(t, tr.Wrap(nil))
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A net.Error, as a dial error is, stays recognisable through the wrapper.
func TestSentErrorKeepsTheChain(t *testing.T) {
	op := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	err := Sent(http.MethodPost, op)
	var ne net.Error
	assert.ErrorAs(t, err, &ne)
	var se *SentError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.MethodPost, se.Method)
	assert.True(t, Safe(""))
	assert.False(t, Safe(http.MethodDelete))
}

func withGotConn(ctx context.Context, flag *bool) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { *flag = true }})
}
