package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
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

// teamClient opens an MCP session over HTTP as the holder of key, with extra headers.
func teamClient(t *testing.T, base, key string, headers map[string]string) *client.Client {
	h := map[string]string{"Authorization": "Bearer " + key}
	for k, v := range headers {
		h[k] = v
	}
	c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(h), transport.WithContinuousListening())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	return c
}

func callTool(t *testing.T, c *client.Client, name string, args map[string]any) (string, bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(context.Background(), req)
	require.NoError(t, err)
	return res.Content[0].(mcp.TextContent).Text, res.IsError
}

// Issue finding 4 (triggers): triggers and named consumers belong to their
// principal. Bob sees none of Alice's triggers, cannot stop them, and his
// consumer "alice" is not hers.
func TestHTTPTriggersBelongToTheirPrincipal(t *testing.T) {
	base := teamServer(t, "--poll-interval", "100ms", "--budget-limit", "10000")
	alice, bob := teamClient(t, base, "alice-key", nil), teamClient(t, base, "bob-key", nil)
	const uri = "pipedrive://triggers/new-deals"
	updated := make(chan string, 10)
	alice.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationResourceUpdated) {
			updated <- fmt.Sprint(n.Params.AdditionalFields["uri"])
		}
	})

	text, isErr := callTool(t, alice, "trigger_start", map[string]any{"uri": uri})
	require.False(t, isErr, text)
	text, _ = callTool(t, bob, "trigger_list", nil)
	assert.Contains(t, text, `"active":[]`, "bob sees none of alice's triggers: %s", text)
	text, _ = callTool(t, alice, "trigger_list", nil)
	assert.Contains(t, text, `"uri":"`+uri+`"`, "alice sees hers: %s", text)

	_, isErr = callTool(t, bob, "trigger_stop", map[string]any{"uri": uri})
	require.False(t, isErr)
	text, _ = callTool(t, alice, "trigger_list", nil)
	assert.Contains(t, text, `"uri":"`+uri+`"`, "bob's stop left alice's trigger running: %s", text)

	// An event for alice's trigger: a deal added after it started.
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = uri
	require.NoError(t, alice.Subscribe(context.Background(), sub))
	text, isErr = callTool(t, alice, "pipedrive_add_deal", map[string]any{"title": "Alice's new deal"})
	require.False(t, isErr, text)
	select {
	case got := <-updated:
		assert.Equal(t, uri, got)
	case <-time.After(hangGuard):
		t.Fatal("alice was not told of her trigger's event")
	}
	// Bob drains "alice" on his side: his own (inactive) trigger has nothing, and hers is untouched.
	text, isErr = callTool(t, bob, "trigger_read_events", map[string]any{"uri": uri, "consumer": "alice"})
	assert.True(t, isErr)
	assert.Contains(t, text, `"code":"not_found"`, "bob has no such trigger: %s", text)
	assert.NotContains(t, text, "#", "no internal key leaks")
	_, isErr = callTool(t, bob, "trigger_start", map[string]any{"uri": uri})
	require.False(t, isErr)
	text, _ = callTool(t, bob, "trigger_read_events", map[string]any{"uri": uri, "consumer": "alice"})
	assert.Contains(t, text, `"events":[]`, "bob's own trigger started after the deal: %s", text)
	text, _ = callTool(t, alice, "trigger_read_events", map[string]any{"uri": uri, "consumer": "alice"})
	assert.Contains(t, text, "Alice's new deal", "alice's consumer still has her event: %s", text)
	_, _ = callTool(t, bob, "trigger_stop", map[string]any{"uri": uri})
	text, _ = callTool(t, alice, "trigger_stop", map[string]any{"uri": uri})
	assert.Contains(t, text, `"active":false`, text)
}

// Issue finding 3: --read-only and --toolsets apply to resources as to
// tools. Subscribing to a WorkSpan webhook trigger (an upstream write) on a
// read-only server is refused and registers nothing; a trigger of a
// disabled toolset can be neither subscribed to nor read nor listed.
func TestHTTPResourcesFollowThePolicy(t *testing.T) {
	base := teamServer(t, "--read-only", "--toolsets", "pipedrive,triggers")
	alice := teamClient(t, base, "alice-key", nil)
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = "pipedrive://triggers/new-deals"
	err := alice.Subscribe(context.Background(), sub)
	require.Error(t, err, "starting a trigger on a read-only server is refused")
	assert.Contains(t, err.Error(), "read-only")

	sub.Params.URI = "workspan://triggers/object-events?integration_id=int-crm-001"
	err = alice.Subscribe(context.Background(), sub)
	require.Error(t, err, "a disabled toolset's trigger cannot be subscribed to")
	assert.Contains(t, err.Error(), "toolset")

	read := mcp.ReadResourceRequest{}
	read.Params.URI = "partnercenter://triggers/referrals?after=0"
	_, err = alice.ReadResource(context.Background(), read)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "toolset")

	templates, err := alice.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
	require.NoError(t, err)
	for _, tm := range templates.ResourceTemplates {
		assert.True(t, strings.HasPrefix(tm.URITemplate.Raw(), "pipedrive://"), "only enabled toolsets' triggers are listed: %s", tm.URITemplate.Raw())
	}
}

// Issue finding 8 (metrics): with auth on, /metrics needs the same bearer as
// /mcp (it names connections and counts every caller's traffic).
func TestHTTPMetricsNeedTheBearer(t *testing.T) {
	base := teamServer(t)
	get := func(key string) int {
		req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, get(""))
	assert.Equal(t, http.StatusUnauthorized, get("wrong-key"))
	assert.Equal(t, http.StatusOK, get("bob-key"))
}
