package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/httpauth"
)

// teamServer starts the binary over HTTP with two API keys, alice's and bob's.
func teamServer(t *testing.T, args ...string) string {
	keys := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keys, []byte("alice "+httpauth.HashKey("alice-key")+"\nbob "+httpauth.HashKey("bob-key")+"\n"), 0o600))
	return startHTTP(t, append([]string{"--api-keys-file", keys}, args...)...)
}

// rawMCP sends one JSON-RPC message as key, on session (if any), and returns
// the status, the session id header and the body.
func rawMCP(t *testing.T, base, method, key, session, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+"/mcp", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// Issue finding 4 (sessions): a session belongs to the principal that
// opened it. Bob, holding Alice's session id, can neither call tools on it
// nor end it: he gets the 404 of an unknown session, and Alice carries on.
func TestHTTPSessionBelongsToItsPrincipal(t *testing.T) {
	base := teamServer(t)
	status, session, body := rawMCP(t, base, http.MethodPost, "alice-key", "", initializeBody)
	require.Equal(t, http.StatusOK, status, body)
	require.NotEmpty(t, session)
	status, _, _ = rawMCP(t, base, http.MethodPost, "alice-key", session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, status)

	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"throttle_status","arguments":{}}}`
	status, _, body = rawMCP(t, base, http.MethodPost, "bob-key", session, call)
	assert.Equal(t, http.StatusNotFound, status, "bob cannot call tools on alice's session: %s", body)
	status, _, _ = rawMCP(t, base, http.MethodDelete, "bob-key", session, "")
	assert.Equal(t, http.StatusNotFound, status, "bob cannot end alice's session")
	status, _, _ = rawMCP(t, base, http.MethodGet, "bob-key", session, "")
	assert.Equal(t, http.StatusNotFound, status, "bob cannot open alice's stream")

	status, _, body = rawMCP(t, base, http.MethodPost, "alice-key", session, call)
	assert.Equal(t, http.StatusOK, status, "alice's session survived: %s", body)
	assert.Contains(t, body, "connection")

	status, _, _ = rawMCP(t, base, http.MethodDelete, "alice-key", session, "")
	assert.Equal(t, http.StatusOK, status, "alice may end her own session")
	status, _, _ = rawMCP(t, base, http.MethodPost, "alice-key", session, call)
	assert.Equal(t, http.StatusNotFound, status, "an ended session is gone")
}
