package pipedrive_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// issue finding: duplicate creates — the client tells a write whose
// outcome is unknown (a reply came, or the connection failed after the
// request went out) from one that never left, and a read from both.
func TestWritesThatReachedPipedriveAreMarked(t *testing.T) {
	cases := []struct {
		name          string
		status        int
		body          string
		sent, unknown bool
	}{
		{"2xx with garbage", 201, `{"success":true,"data":{"id":`, true, true},
		{"2xx with an empty body", 201, ``, true, true},
		{"2xx without data", 201, `{"success":true,"data":null}`, true, true},
		{"2xx saying it failed", 200, `{"success":false,"error":"?"}`, true, true},
		{"502", 502, `<html>Bad Gateway</html>`, true, true},
		{"400", 400, `{"success":false,"error":"title is required"}`, true, false},
		{"429", 429, `{"success":false,"error":"rate limited"}`, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			t.Cleanup(ts.Close)
			cl := pipedrive.New("tok", pipedrive.WithBaseURL(ts.URL))
			_, err := cl.AddDeal(context.Background(), pipedrive.DealInput{Title: ptr("x")})
			require.Error(t, err)
			assert.Equal(t, c.sent, upstream.RequestSent(err), "%v", err)
			assert.Equal(t, c.unknown, upstream.OutcomeUnknown(err), "%v", err)
			_, err = cl.AddActivity(context.Background(), pipedrive.ActivityInput{Subject: "x", Type: "call"})
			assert.Equal(t, c.unknown, upstream.OutcomeUnknown(err), "%v", err)

			_, err = cl.GetDeal(context.Background(), 1)
			if err != nil {
				assert.False(t, upstream.RequestSent(err), "a read is never a sent write: %v", err)
			}
		})
	}

	t.Run("never sent: no connection", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		u := gone.URL
		gone.Close()
		_, err := pipedrive.New("tok", pipedrive.WithBaseURL(u)).AddDeal(context.Background(), pipedrive.DealInput{Title: ptr("x")})
		require.Error(t, err)
		assert.False(t, upstream.RequestSent(err), "%v", err)
	})
}
