package workspan

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// issue finding: duplicate creates — the client tells a write whose
// outcome is unknown (a reply came, or the connection failed after the
// request went out) from one that never left, and a read from both.
func TestWritesThatReachedWorkSpanAreMarked(t *testing.T) {
	cases := []struct {
		name          string
		reply         http.HandlerFunc
		sent, unknown bool
	}{
		{"2xx with garbage", reply(200, `{"execution_id":`), true, true},
		{"503", reply(503, `{"message":"down"}`), true, true},
		{"400", reply(400, `{"message":"bad"}`), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.reply)
			cl := f.client()
			_, err := cl.BulkLoad(context.Background(), BulkParams{IntegrationID: "int-1", Format: "json"}, []byte(`[{"a":1}]`))
			require.Error(t, err)
			assert.Equal(t, c.sent, upstream.RequestSent(err), "%v", err)
			assert.Equal(t, c.unknown, upstream.OutcomeUnknown(err), "%v", err)

			_, err = cl.GetExternalID(context.Background(), "obj-1")
			require.Error(t, err)
			assert.False(t, upstream.RequestSent(err), "a read is never a sent write: %v", err)
		})
	}

	t.Run("never sent: the token endpoint failed", func(t *testing.T) {
		f := newFake(t, reply(200, `{}`))
		f.tokenReply = func(w http.ResponseWriter) { writeJSON(w, 500, `{"error":"server_error"}`) }
		_, err := f.client().BulkLoad(context.Background(), BulkParams{IntegrationID: "int-1", Format: "json"}, []byte(`[{"a":1}]`))
		require.Error(t, err)
		assert.False(t, upstream.RequestSent(err), "%v", err)
		assert.Empty(t, f.apiRequests())
	})
	t.Run("never sent: no connection", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		u := gone.URL
		gone.Close()
		cl := New(Config{BaseURL: u, HostName: testHost, AppUserID: testUser, AppUserSecret: testSecret})
		_, err := cl.BulkLoad(context.Background(), BulkParams{IntegrationID: "int-1", Format: "json"}, []byte(`[{"a":1}]`))
		require.Error(t, err)
		assert.False(t, upstream.RequestSent(err), "%v", err)
	})
}
