package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without a database the sessions live in the process's memory; a GET
// stream opens only for a live session (mcp-go alone opens one for any id).
func TestMemorySessionsGuardTheStream(t *testing.T) {
	app := sandboxApp(t, []string{"--http", "127.0.0.1:0"}, nil)
	require.Nil(t, app.DB)
	h, mcpSrv := httpHandler(app, HTTPConfig{Addr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); _ = mcpSrv.Shutdown(t.Context()) })

	status, session, body := rawMCP(t, srv.URL, http.MethodPost, "", "", initializeBody)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, http.StatusOK, openStream(t, srv.URL, "", session))
	assert.Equal(t, http.StatusNotFound, openStream(t, srv.URL, "", session+"0"), "a forged id opens no stream")
	status, _, _ = rawMCP(t, srv.URL, http.MethodDelete, "", session, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, http.StatusNotFound, openStream(t, srv.URL, "", session), "an ended session opens no stream")
}
