package partnercenter_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// issue finding: duplicate creates — the client tells a write whose
// outcome is unknown (a reply came, or the connection failed after the
// request went out) from one that never left, and a read from both.
func TestWritesThatReachedPartnerCenterAreMarked(t *testing.T) {
	in := partnercenter.Referral{Name: "x", Type: partnercenter.TypeIndependent}
	ops := []partnercenter.PatchOp{{Op: "replace", Path: "/details/notes", Value: "n"}}
	cases := []struct {
		name          string
		reply         http.HandlerFunc
		sent, unknown bool
	}{
		{"2xx with garbage", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(201)
			_, _ = io.WriteString(w, `{"id":`)
		}, true, true},
		{"2xx with an empty body", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) }, true, true},
		{"2xx with a referral without id", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 201, map[string]any{"name": "x"})
		}, true, true},
		{"500", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 500, map[string]any{"code": 500, "description": "oops"})
		}, true, true},
		{"400", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 400, map[string]any{"code": 400, "description": "bad"})
		}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.reply)
			cl := f.client()
			got, err := cl.CreateReferral(ctx(t), in, "")
			require.Error(t, err)
			assert.Nil(t, got)
			assert.Equal(t, c.sent, upstream.RequestSent(err), "create: %v", err)
			assert.Equal(t, c.unknown, upstream.OutcomeUnknown(err), "create: %v", err)

			if _, err = cl.GetReferral(ctx(t), "r1"); err != nil {
				assert.False(t, upstream.RequestSent(err), "a read is never a sent write: %v", err)
			}
		})
	}

	t.Run("a PATCH answered with garbage", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "<html>")
		})
		_, err := f.client().PatchReferral(ctx(t), "r1", ops, "")
		assert.True(t, upstream.OutcomeUnknown(err), "%v", err)
	})
	t.Run("a PATCH answered 204 is a success", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
		got, err := f.client().PatchReferral(ctx(t), "r1", ops, "")
		require.NoError(t, err)
		assert.Nil(t, got)
	})
	t.Run("never sent: no connection", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		base := gone.URL + basePath
		gone.Close()
		c := partnercenter.New(partnercenter.StaticToken("test-token"), partnercenter.WithBaseURL(base))
		_, err := c.CreateReferral(ctx(t), in, "")
		require.Error(t, err)
		assert.False(t, upstream.RequestSent(err), "%v", err)
	})
}
