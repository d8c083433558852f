// Package toolstest runs tools through a real MCP server and an in-process
// MCP client, for the tests of every connector's tools.
package toolstest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Client is an initialised in-process MCP client of a server built from reg.
type Client struct {
	T   testing.TB
	MCP *client.Client

	reg *tools.Registry
}

// New builds the server with tools.NewServer (budget status from budgets,
// if given) and connects an initialised client, with the given client
// options (e.g. a roots handler), to it.
func New(t testing.TB, reg *tools.Registry, policy tools.Policy, budgets *throttle.Registry, opts ...client.ClientOption) *Client {
	t.Helper()
	sopts := tools.ServerOptions{Name: "test", Version: "test", Policy: policy}
	if budgets != nil {
		sopts.Budget = func(_ context.Context, ts string) *throttle.Budget {
			if ts == tools.ToolsetServer {
				return nil
			}
			return budgets.Budget(ts)
		}
	}
	c, err := client.NewInProcessClientWithOptions(tools.NewServer(reg, sopts), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	return &Client{T: t, MCP: c, reg: reg}
}

// checkOutput requires a successful result's structured content to match
// the tool's full output schema.
func (c *Client) checkOutput(name string, res *mcp.CallToolResult) {
	c.T.Helper()
	if tl, ok := c.reg.Lookup(name); ok && !res.IsError && res.StructuredContent != nil {
		require.NoError(c.T, tl.CheckResult(res.StructuredContent))
	}
}

// Call runs a tool and, when out is not nil, requires success and decodes
// the text block into out.
func (c *Client) Call(name string, args map[string]any, out any) *mcp.CallToolResult {
	c.T.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.MCP.CallTool(context.Background(), req)
	require.NoError(c.T, err, name)
	c.checkOutput(name, res)
	if out != nil {
		require.False(c.T, res.IsError, "%s failed: %s", name, Text(res))
		require.NoError(c.T, json.Unmarshal([]byte(Text(res)), out))
	}
	return res
}

// CallErr runs a tool that must fail and returns its error body.
func (c *Client) CallErr(name string, args map[string]any) tools.Error {
	c.T.Helper()
	res := c.Call(name, args, nil)
	require.True(c.T, res.IsError, "%s should fail, got %s", name, Text(res))
	var body struct {
		Error tools.Error `json:"error"`
	}
	require.NoError(c.T, json.Unmarshal([]byte(Text(res)), &body), Text(res))
	return body.Error
}

// ListNames returns the names tools/list shows.
func (c *Client) ListNames() []string {
	c.T.Helper()
	list, err := c.MCP.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(c.T, err)
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// Text joins a result's text blocks.
func Text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
