package tools

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selectionRegistry has a read and a write tool in toolset "test", one in
// "other", a deprecated one and a server tool.
func selectionRegistry() *Registry {
	reg := NewRegistry()
	other := echoTool("other_read", true)
	other.Toolset = "other"
	dep := echoTool("test_old", true)
	dep.Deprecated = true
	status := echoTool("server_status", true)
	status.Toolset = ToolsetServer
	reg.Add(echoTool("test_read", true), echoTool("test_write", false), other, dep, status)
	return reg
}

func TestPolicyToolsIsAnExactAllowListWithinToolsetsAndReadOnly(t *testing.T) {
	reg := selectionRegistry()
	enabled := func(p Policy) (listed, callable []string) {
		for _, tl := range reg.Tools() {
			if p.Lists(tl) {
				listed = append(listed, tl.Name)
			}
			if p.Allows(tl) == nil {
				callable = append(callable, tl.Name)
			}
		}
		return listed, callable
	}
	listed, callable := enabled(Policy{Tools: []string{"test_read", "test_write", "other_read"}})
	assert.Equal(t, []string{"other_read", "test_read", "test_write"}, listed, "server tools too only if named")
	assert.Equal(t, listed, callable)

	listed, _ = enabled(Policy{Tools: []string{"test_read", "test_write", "other_read", "server_status"}, Toolsets: []string{"test"}, ReadOnly: true})
	assert.Equal(t, []string{"server_status", "test_read"}, listed, "the intersection of --tools, --toolsets and --read-only")

	listed, callable = enabled(Policy{Tools: []string{"test_old"}})
	assert.Equal(t, []string{"test_old"}, listed, "a deprecated tool named in --tools is listed")
	assert.Equal(t, []string{"test_old"}, callable)
	_, callable = enabled(Policy{Tools: []string{"test_read"}})
	assert.NotContains(t, callable, "test_old", "deprecated tools stay callable only within the allow-list")

	err := Policy{Tools: []string{"test_write"}}.Allows(echoTool("test_other", true))
	require.NotNil(t, err)
	assert.Equal(t, CodeForbidden, err.Code)
	assert.Contains(t, err.Message, "--tools")
}

func TestPolicyValidateRefusesUnknownNamesWithTheNearestOnes(t *testing.T) {
	reg := selectionRegistry()
	require.NoError(t, Policy{Tools: []string{"test_read", "server_status"}, Toolsets: []string{"test"}}.Validate(reg))

	err := Policy{Tools: []string{"test_reed"}}.Validate(reg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--tools: unknown tool "test_reed" (did you mean test_read?)`)
	assert.Contains(t, err.Error(), "mcp-server tools", "says how to see the names")

	err = Policy{Tools: []string{"write", "zzzzzzzz", "test_read"}}.Validate(reg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown tools "write" (did you mean test_write?), "zzzzzzzz"`)

	err = Policy{Toolsets: []string{"tset"}}.Validate(reg)
	assert.ErrorContains(t, err, `--toolsets: unknown toolset "tset" (known: other, server, test)`)
}

func TestCloseNames(t *testing.T) {
	reg := NewRegistry()
	for _, n := range []string{"pipedrive_get_deal", "pipedrive_list_deals", "pipedrive_search_deals", "pipedrive_get_stage", "workspan_list_reports"} {
		reg.Add(echoTool(n, true))
	}
	assert.Equal(t, []string{"pipedrive_get_deal", "pipedrive_list_deals", "pipedrive_get_stage"}, reg.closeNames("pipedrive_get_deals"), "nearest first, at most three")
	assert.Equal(t, []string{"pipedrive_list_deals"}, reg.closeNames("list_deals"), "a part of a name")
	assert.Equal(t, []string{"workspan_list_reports"}, reg.closeNames("workspan_list_report"))
	assert.Empty(t, reg.closeNames("hubspot_get_contact"))
	assert.Equal(t, 3, editDistance("kitten", "sitting"))
	assert.Equal(t, 0, editDistance("", ""))
}

func TestNarrowingOnlyNarrows(t *testing.T) {
	reg := selectionRegistry()
	read, write, other, _ := mustLookup(t, reg, "test_read"), mustLookup(t, reg, "test_write"), mustLookup(t, reg, "other_read"), mustLookup(t, reg, "test_old")
	status := mustLookup(t, reg, "server_status")
	ctx := WithNarrowing(context.Background(), Narrowing{Toolsets: []string{"test"}, ReadOnly: true})

	p := Policy{}
	assert.Nil(t, p.AllowsIn(ctx, read))
	assert.Nil(t, p.AllowsIn(ctx, status), "the server toolset stays, as with --toolsets")
	e := p.AllowsIn(ctx, write)
	require.NotNil(t, e)
	assert.Equal(t, CodeForbidden, e.Code)
	assert.Contains(t, e.Message, "X-MCP-Readonly")
	e = p.AllowsIn(ctx, other)
	require.NotNil(t, e)
	assert.Contains(t, e.Message, "X-MCP-Toolsets")
	assert.Nil(t, p.AllowsIn(context.Background(), write), "no narrowing without one in the context")

	// The server's policy holds whatever the request names.
	server := Policy{Toolsets: []string{"other"}}
	wide := WithNarrowing(context.Background(), Narrowing{Toolsets: []string{"test", "other"}, Tools: []string{"test_read", "other_read"}})
	assert.NotNil(t, server.AllowsIn(wide, read), "a header cannot enable a toolset the server leaves out")
	assert.Nil(t, server.AllowsIn(wide, other))
	assert.NotNil(t, Policy{ReadOnly: true}.AllowsIn(WithNarrowing(context.Background(), Narrowing{ReadOnly: false}), write),
		"read-only false does not lift --read-only")
	assert.NotNil(t, Policy{Tools: []string{"test_read"}}.AllowsIn(WithNarrowing(context.Background(), Narrowing{Tools: []string{"test_write"}}), write),
		"X-MCP-Tools cannot add to --tools")
	assert.NotNil(t, Policy{Tools: []string{"test_read"}}.AllowsIn(WithNarrowing(context.Background(), Narrowing{Tools: []string{"test_write"}}), read),
		"disjoint lists leave nothing")

	dep := mustLookup(t, reg, "test_old")
	assert.False(t, Policy{}.ListsIn(context.Background(), dep))
	assert.True(t, Policy{}.ListsIn(WithNarrowing(context.Background(), Narrowing{Tools: []string{"test_old"}}), dep), "a deprecated tool named in X-MCP-Tools is listed")
	assert.False(t, Policy{}.ListsIn(ctx, write))
}

func mustLookup(t *testing.T, reg *Registry, name string) Tool {
	t.Helper()
	tl, ok := reg.Lookup(name)
	require.True(t, ok, name)
	return tl
}

// The server lists and calls by the request's narrowing: a hidden tool is
// refused at call time and its handler never runs.
func TestServerAppliesTheRequestsNarrowing(t *testing.T) {
	reg := NewRegistry()
	ran := 0
	reg.Add(echoTool("test_read", true), New(Spec{Name: "test_write", Title: "Write", Toolset: "test", Operation: "Write", Description: "write"},
		func(_ context.Context, in echoArgs) (echoOut, error) { ran++; return echoOut{Echo: in.Name}, nil }))
	srv := NewServer(reg, ServerOptions{Name: "test", Version: "1", Policy: Policy{}})
	send := func(ctx context.Context, msg string) json.RawMessage {
		raw, err := json.Marshal(srv.HandleMessage(ctx, json.RawMessage(msg)))
		require.NoError(t, err)
		var resp struct {
			Result json.RawMessage `json:"result"`
		}
		require.NoError(t, json.Unmarshal(raw, &resp))
		require.NotEmpty(t, resp.Result, "%s", raw)
		return resp.Result
	}
	names := func(ctx context.Context) []string {
		var list struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		require.NoError(t, json.Unmarshal(send(ctx, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), &list))
		var out []string
		for _, tl := range list.Tools {
			out = append(out, tl.Name)
		}
		slices.Sort(out)
		return out
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_write","arguments":{"name":"x"}}}`

	narrow := WithNarrowing(context.Background(), Narrowing{ReadOnly: true})
	assert.Equal(t, []string{"test_read", "test_write"}, names(context.Background()))
	assert.Equal(t, []string{"test_read"}, names(narrow))
	assert.Contains(t, string(send(narrow, call)), `"isError":true`)
	assert.Contains(t, string(send(narrow, call)), "forbidden")
	assert.Zero(t, ran, "a hidden tool never runs")
	assert.NotContains(t, string(send(context.Background(), call)), `"isError":true`)
	assert.Equal(t, 1, ran)
}
