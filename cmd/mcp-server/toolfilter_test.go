package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/tools"
)

func TestParseNames(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                   nil,
		"  ":                                 nil,
		"pipedrive":                          {"pipedrive"},
		" pipedrive , workspan_list_reports": {"pipedrive", "workspan_list_reports"},
	} {
		got, err := parseNames(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"pipedrive,,workspan": "empty item",
		"pipedrive,":          "empty item",
		"Pipedrive":           `"Pipedrive" is not a name`,
		"pipedrive;workspan":  "is not a name",
		"pipedrive workspan":  "is not a name",
	} {
		_, err := parseNames(in)
		assert.ErrorContains(t, err, want, in)
	}
	for in, want := range map[string]bool{"true": true, "1": true, "YES": true, " on ": true, "false": false, "0": false, "No": false, "off": false} {
		got, err := parseSwitch(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "2", "y", "readonly"} {
		_, err := parseSwitch(in)
		assert.ErrorContains(t, err, "not a boolean", in)
	}
}

func TestToolsFlagIsAnAllowListWithinToolsetsAndReadOnly(t *testing.T) {
	c := sandboxClient(t, []string{"--tools", "pipedrive_get_deal, pipedrive_add_deal,workspan_list_reports,throttle_status", "--toolsets=pipedrive,workspan", "--read-only"}, nil)
	assert.ElementsMatch(t, []string{"pipedrive_get_deal", "workspan_list_reports", "throttle_status"}, listedNames(t, c),
		"the intersection: pipedrive_add_deal changes data; server tools only if named")
	text, isErr := callTool(t, c, "pipedrive_add_deal", map[string]any{"title": "x"})
	assert.True(t, isErr)
	assert.Contains(t, text, "--read-only")
	text, isErr = callTool(t, c, "connection_status", nil)
	assert.True(t, isErr, "a tool outside --tools is refused at call time")
	assert.Contains(t, text, "--tools")

	t.Setenv("COSELL_TOOLS", "pipedrive_get_stage")
	assert.Equal(t, []string{"pipedrive_get_stage"}, listedNames(t, sandboxClient(t, nil, nil)), "COSELL_TOOLS")
}

func TestToolsFlagRefusesUnknownNames(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	cfg, _, err := parseConfig("test", []string{"--tools", "pipedrive_get_deals,throttle_status"}, io.Discard, nil)
	require.NoError(t, err)
	_, err = newApp(cfg, slog.New(slog.DiscardHandler))
	require.Error(t, err, "an unknown tool stops start-up")
	assert.Contains(t, err.Error(), `--tools: unknown tool "pipedrive_get_deals" (did you mean pipedrive_get_deal`)
	assert.Contains(t, err.Error(), "`mcp-server tools` lists every tool")

	_, _, err = parseConfig("test", []string{"--tools", "pipedrive_get_deal,,throttle_status"}, io.Discard, nil)
	assert.ErrorContains(t, err, "--tools: ")
	_, _, err = parseConfig("test", []string{"--toolsets", "pipedrive;workspan"}, io.Discard, nil)
	assert.ErrorContains(t, err, "--toolsets: ")
}

// headerServer serves the sandbox app with args over real HTTP.
func headerServer(t *testing.T, args ...string) (*App, string) {
	t.Helper()
	app := sandboxApp(t, append([]string{"--http", "127.0.0.1:0"}, args...), nil)
	h, mcpSrv := httpHandler(app, HTTPConfig{Addr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); _ = mcpSrv.Shutdown(context.Background()) })
	return app, srv.URL
}

// headerClient opens an MCP session that sends headers with every request.
func headerClient(t *testing.T, base string, headers map[string]string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(headers))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "headers", Version: "1"}
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	return c
}

func TestHTTPHeadersNarrowToolsListAndCalls(t *testing.T) {
	app, base := headerServer(t)
	all := listedNames(t, headerClient(t, base, nil))

	c := headerClient(t, base, map[string]string{HeaderToolsets: "pipedrive", HeaderReadonly: "yes"})
	names := listedNames(t, c)
	assert.Contains(t, names, "pipedrive_get_deal")
	assert.Contains(t, names, "throttle_status", "the server toolset stays, as with --toolsets")
	for _, n := range names {
		tl, _ := app.Registry.Lookup(n)
		assert.True(t, tl.ReadOnly && (tl.Toolset == "pipedrive" || tl.Toolset == tools.ToolsetServer), n)
	}
	assert.Less(t, len(names), len(all))

	used := app.Budgets.Status("pipedrive").Used
	text, isErr := callTool(t, c, "pipedrive_add_deal", map[string]any{"title": "Hidden by a header"})
	assert.True(t, isErr, "a tool the headers hide cannot be called")
	assert.Contains(t, text, `"forbidden"`)
	assert.Contains(t, text, HeaderReadonly)
	text, isErr = callTool(t, c, "workspan_list_reports", nil)
	assert.True(t, isErr)
	assert.Contains(t, text, HeaderToolsets)
	assert.Equal(t, used, app.Budgets.Status("pipedrive").Used, "nothing was sent upstream")
	_, isErr = callTool(t, c, "pipedrive_get_stage", map[string]any{"stage_id": 1})
	assert.False(t, isErr, "a tool the headers leave is called")

	c = headerClient(t, base, map[string]string{HeaderTools: "pipedrive_get_stage,pipedrive_add_deal_deprecated"})
	assert.ElementsMatch(t, []string{"pipedrive_get_stage", "pipedrive_add_deal_deprecated"}, listedNames(t, c),
		"exact; a deprecated tool named is listed")
	_, isErr = callTool(t, c, "throttle_status", nil)
	assert.True(t, isErr)

	// Each request's own headers apply, not those of the session's
	// initialize.
	status, session, body := sendOn(t, base, "", map[string]string{HeaderTools: "pipedrive_get_stage"}, initializeBody)
	require.Equal(t, http.StatusOK, status, body)
	require.NotEmpty(t, session)
	listReq := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	_, _, body = sendOn(t, base, session, map[string]string{HeaderTools: "pipedrive_get_stage"}, listReq)
	assert.Equal(t, 1, strings.Count(body, `"inputSchema"`), "narrowed: %s", body)
	_, _, body = sendOn(t, base, session, nil, listReq)
	assert.Equal(t, len(all), strings.Count(body, `"inputSchema"`), "the same session without the header sees what the server enables")
	_, _, body = sendOn(t, base, session, map[string]string{HeaderTools: "pipedrive_get_deal"}, listReq)
	assert.Contains(t, body, `"pipedrive_get_deal"`)
	assert.NotContains(t, body, `"pipedrive_get_stage"`)
}

func TestHTTPHeadersCannotWiden(t *testing.T) {
	_, base := headerServer(t, "--toolsets=pipedrive", "--read-only", "--tools=pipedrive_get_deal,pipedrive_get_stage,pipedrive_add_deal,throttle_status")
	c := headerClient(t, base, map[string]string{HeaderToolsets: "pipedrive,workspan", HeaderReadonly: "false",
		HeaderTools: "pipedrive_get_stage,pipedrive_add_deal,workspan_list_reports,connection_status"})
	assert.Equal(t, []string{"pipedrive_get_stage"}, listedNames(t, c))
	for _, name := range []string{"pipedrive_add_deal", "workspan_list_reports", "connection_status", "pipedrive_get_deal"} {
		_, isErr := callTool(t, c, name, map[string]any{})
		assert.True(t, isErr, name)
	}
}

// sendOn posts one JSON-RPC message with headers, on session if any, and
// returns the status, the session id header and the body.
func sendOn(t *testing.T, base, session string, headers map[string]string, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
}

func TestHTTPMalformedHeadersAre400(t *testing.T) {
	_, base := headerServer(t)
	for _, c := range []struct {
		header, value, want string
	}{
		{HeaderReadonly, "maybe", "not a boolean"},
		{HeaderReadonly, "", "not a boolean"},
		{HeaderToolsets, "pipedrive;workspan", "is not a name"},
		{HeaderToolsets, "pipedrive,,workspan", "empty item"},
		{HeaderToolsets, "hubspot", `unknown toolset "hubspot"`},
		{HeaderTools, " ", "is empty"},
		{HeaderTools, "pipedrive_get_deals,pipedrive_get_stage,nope_nope", `unknown tools "pipedrive_get_deals" (did you mean pipedrive_get_deal`},
		{HeaderTools, "Pipedrive_Get_Deal", "is not a name"},
	} {
		status, _, body := sendOn(t, base, "", map[string]string{c.header: c.value}, initializeBody)
		assert.Equal(t, http.StatusBadRequest, status, "%s: %q", c.header, c.value)
		var e struct{ Error, Header, Message string }
		require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		assert.Equal(t, "invalid_header", e.Error)
		assert.Equal(t, c.header, e.Header)
		assert.Contains(t, e.Message, c.header+": ")
		assert.Contains(t, e.Message, c.want)
	}
	status, _, body := sendOn(t, base, "", map[string]string{HeaderTools: "pipedrive_get_stage", HeaderReadonly: "on"}, initializeBody)
	assert.Equal(t, http.StatusOK, status, body)
}

// The fields projection, on the real list tools over the sandboxes: rows
// carry the requested fields and their id, the results hold to the full
// output schemas, and a bad field costs no upstream call.
func TestFieldsProjectionOnTheListTools(t *testing.T) {
	app := sandboxApp(t, nil, nil)
	c, err := client.NewInProcessClient(app.Server)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)

	call := func(name string, args map[string]any) (map[string]any, string, bool) {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		res, err := c.CallTool(context.Background(), req)
		require.NoError(t, err)
		text := res.Content[0].(mcp.TextContent).Text
		if res.IsError {
			return nil, text, true
		}
		tl, _ := app.Registry.Lookup(name)
		require.NoError(t, tl.CheckResult(res.StructuredContent), name)
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(text), &out))
		return out, text, false
	}
	keys := func(rows any) [][]string {
		var out [][]string
		for _, r := range rows.([]any) {
			var ks []string
			for k := range r.(map[string]any) {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			out = append(out, ks)
		}
		return out
	}
	for _, tc := range []struct {
		tool, rows string
		args       map[string]any
		fields     []string
	}{
		{"pipedrive_list_deals", "deals", map[string]any{"limit": 3}, []string{"title", "stage_name"}},
		{"pipedrive_search_deals", "deals", map[string]any{"term": "Contoso"}, []string{"matched_on", "title"}},
		{"partnercenter_list_referrals", "referrals", map[string]any{"limit": 3}, []string{"status", "customer_name"}},
		{"workspan_list_reports", "reports", nil, []string{"name"}},
	} {
		args := map[string]any{"fields": tc.fields}
		for k, v := range tc.args {
			args[k] = v
		}
		out, text, isErr := call(tc.tool, args)
		require.False(t, isErr, "%s: %s", tc.tool, text)
		require.NotEmpty(t, out[tc.rows], tc.tool)
		want := append([]string{"id"}, tc.fields...)
		slices.Sort(want)
		for _, ks := range keys(out[tc.rows]) {
			assert.Subset(t, want, ks, tc.tool)
			assert.Contains(t, ks, "id", tc.tool)
		}
		whole, _, _ := call(tc.tool, tc.args)
		assert.Len(t, out[tc.rows], len(whole[tc.rows].([]any)), "%s: the same rows, fewer fields", tc.tool)
		assert.Greater(t, len(keys(whole[tc.rows])[0]), len(keys(out[tc.rows])[0]), tc.tool)
	}

	for _, tc := range []struct {
		tool, connection string
		args             map[string]any
		want             string
	}{
		{"pipedrive_list_deals", "pipedrive", map[string]any{"fields": []any{"title", "colour"}}, `unknown field "colour": the deals rows have id, title`},
		{"pipedrive_search_deals", "pipedrive", map[string]any{"term": "Contoso", "fields": []any{}}, "fields is empty"},
		{"partnercenter_list_referrals", "partnercenter", map[string]any{"fields": []any{"status"}, "full": true}, "cannot be combined with full"},
		{"workspan_list_reports", "workspan", map[string]any{"fields": []any{"owner"}}, `unknown field "owner"`},
	} {
		used := app.Budgets.Status(tc.connection).Used
		_, text, isErr := call(tc.tool, tc.args)
		require.True(t, isErr, tc.tool)
		var body struct{ Error tools.Error }
		require.NoError(t, json.Unmarshal([]byte(text), &body), text)
		assert.Equal(t, tools.CodeInvalidArgument, body.Error.Code, tc.tool)
		assert.Equal(t, "fields", body.Error.Field, tc.tool)
		assert.Contains(t, body.Error.Message, tc.want, tc.tool)
		assert.Equal(t, used, app.Budgets.Status(tc.connection).Used, "%s: refused before any upstream call", tc.tool)
	}
}
