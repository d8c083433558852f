package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// anyKnownID is a session id manager that accepts every id starting with
// "known-", as a shared table would accept an id another replica issued.
type anyKnownID struct{}

func (anyKnownID) Generate() string { return "known-here" }
func (anyKnownID) Validate(id string) (bool, error) {
	if !strings.HasPrefix(id, "known-") {
		return false, errUnknownSession
	}
	return false, nil
}
func (anyKnownID) Terminate(string) (bool, error) { return false, nil }

// whoamiTool reports the session a tool handler sees: its id, client name,
// whether the client offered roots, and its logging level.
func whoamiTool() (mcp.Tool, server.ToolHandlerFunc) {
	return mcp.NewTool("test_whoami", mcp.WithDescription("test only")), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		out := map[string]any{}
		if s := server.ClientSessionFromContext(ctx); s != nil {
			out["session"] = s.SessionID()
			if ci, ok := s.(server.SessionWithClientInfo); ok {
				out["client"] = ci.GetClientInfo().Name
				out["roots"] = ci.GetClientCapabilities().Roots != nil
			}
			if lv, ok := s.(server.SessionWithLogging); ok {
				out["level"] = string(lv.GetLogLevel())
			}
		}
		b, _ := json.Marshal(out)
		return mcp.NewToolResultText(string(b)), nil
	}
}

// mcpPost sends one JSON-RPC message on session (if any) and returns the
// status, the session header and the body.
func mcpPost(t *testing.T, base, session, body string) (int, string, string) {
	t.Helper()
	return rawMCP(t, base, http.MethodPost, "", session, body)
}

// whoamiResult is the decoded text of a test_whoami call's JSON response.
func whoamiResult(t *testing.T, body string) map[string]any {
	t.Helper()
	var resp struct {
		Result mcp.CallToolResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
	require.False(t, resp.Result.IsError, body)
	require.NotEmpty(t, resp.Result.Content, body)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.Result.Content[0].(mcp.TextContent).Text), &out), body)
	return out
}

const whoamiCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_whoami","arguments":{}}}`

// TestMCPGoServesUnseenSessionIDs pins down what mcp-go v1.2.1 does with a
// session id its manager accepts but that this replica never initialized
// (the case of a session opened on another replica), which is why
// sharedSessions validates GET itself and adopts sessions (sessions.go).
func TestMCPGoServesUnseenSessionIDs(t *testing.T) {
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false), server.WithLogging())
	s.AddTool(whoamiTool())
	h := server.NewStreamableHTTPServer(s, server.WithSessionIdManager(anyKnownID{}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// Seen here: initialize with client info, then the tool sees it.
	status, id, body := mcpPost(t, srv.URL, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},"clientInfo":{"name":"seen","version":"1"}}}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "known-here", id)
	status, _, body = mcpPost(t, srv.URL, id, whoamiCall)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, map[string]any{"session": "known-here", "client": "seen", "roots": true, "level": "error"}, whoamiResult(t, body))

	// Unseen but valid: tools/call works, on a throw-away session that
	// knows nothing of the client.
	status, _, body = mcpPost(t, srv.URL, "known-elsewhere", whoamiCall)
	require.Equal(t, http.StatusOK, status, "a valid id is served even though this replica never saw it: %s", body)
	assert.Equal(t, map[string]any{"session": "known-elsewhere", "client": "", "roots": false, "level": "error"}, whoamiResult(t, body),
		"no client info, no capabilities: they stayed on the replica that initialized the session")
	status, _, _ = mcpPost(t, srv.URL, "known-elsewhere", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	assert.Equal(t, http.StatusAccepted, status, "notifications are accepted")

	// Invalid: POST is refused by the manager...
	status, _, _ = mcpPost(t, srv.URL, "forged", whoamiCall)
	assert.Equal(t, http.StatusNotFound, status)
	// ...but GET never asks it: any id opens a listening stream.
	assert.Equal(t, http.StatusOK, openStream(t, srv.URL, "", "forged"), "mcp-go does not validate the GET stream's session id")
}

// openStream opens the GET stream of session as the holder of key ("" for
// none) and returns its status, closing the stream at once.
func openStream(t *testing.T, base, key, session string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/mcp", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if session != "" {
		req.Header.Set(server.HeaderKeySessionID, session)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	cancel()
	_ = resp.Body.Close()
	return resp.StatusCode
}
