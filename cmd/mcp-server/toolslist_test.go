package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toolsListConfigs are the configurations whose tools/list size is
// measured: the default one, each toolset alone, read-only and everything.
var toolsListConfigs = []struct {
	name string
	args []string
}{
	{"default", nil},
	{"pipedrive", []string{"--toolsets=pipedrive"}},
	{"partnercenter", []string{"--toolsets=partnercenter"}},
	{"workspan", []string{"--toolsets=workspan"}},
	{"triggers", []string{"--toolsets=triggers"}},
	{"read-only", []string{"--read-only"}},
	{"include-deprecated", []string{"--include-deprecated"}},
}

// sandboxApp runs the real wiring on the embedded sandboxes with the given
// flags; tune may adjust the parsed config.
func sandboxApp(tb testing.TB, args []string, tune func(*Config)) *App {
	tb.Helper()
	tb.Setenv("COSELL_STATE_DIR", tb.TempDir())
	cfg, _, err := parseConfig("test", args, io.Discard, nil)
	require.NoError(tb, err)
	require.True(tb, cfg.Sandbox && cfg.PartnerCenter.Sandbox && cfg.WorkSpan.Sandbox, "run on the sandboxes: unset connector credentials")
	if tune != nil {
		tune(&cfg)
	}
	app, err := newApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(tb, err)
	tb.Cleanup(app.Close)
	return app
}

// sandboxClient is an initialised in-process client of sandboxApp.
func sandboxClient(tb testing.TB, args []string, tune func(*Config)) *client.Client {
	tb.Helper()
	c, err := client.NewInProcessClient(sandboxApp(tb, args, tune).Server)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	require.NoError(tb, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	_, err = c.Initialize(context.Background(), init)
	require.NoError(tb, err)
	return c
}

// toolsListSize is the size in bytes of the tools/list response as it goes
// on the wire (a decoded client-side result drops schema fields mcp-go's
// structs do not model) and its tool count.
func toolsListSize(tb testing.TB, app *App) (size, count int) {
	tb.Helper()
	resp := app.Server.HandleMessage(context.Background(), json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	raw, err := json.Marshal(resp)
	require.NoError(tb, err)
	var body struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(tb, json.Unmarshal(raw, &body))
	var list struct {
		Tools []json.RawMessage `json:"tools"`
	}
	require.NoError(tb, json.Unmarshal(body.Result, &list), "%s", raw)
	return len(body.Result), len(list.Tools)
}

// TestToolsListStaysLean holds the token budget of the tool list: the
// average listed tool, schemas included, stays within 1,000 bytes in the
// default configuration, and the whole list within 45 KiB. The figure is a byte count, not a timing.
func TestToolsListStaysLean(t *testing.T) {
	for _, cfg := range toolsListConfigs {
		size, count := toolsListSize(t, sandboxApp(t, cfg.args, nil))
		t.Logf("%-19s %6d bytes, %2d tools, %4d bytes/tool", cfg.name, size, count, size/count)
		if cfg.name == "default" {
			assert.LessOrEqual(t, size/count, 1000, "tools/list grew: trim descriptions or schemas")
			assert.LessOrEqual(t, size, 45*1024, "tools/list is over 45 KiB: trim, or leave a tool out of the default list")
		}
	}
}
