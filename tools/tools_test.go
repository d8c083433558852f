package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

type echoArgs struct {
	Name  string   `json:"name" jsonschema:"minLength=1"`
	Count int      `json:"count,omitempty" jsonschema:"minimum=1,maximum=10"`
	Tags  []string `json:"tags,omitempty"`
	Mode  string   `json:"mode,omitempty" jsonschema:"enum=a,enum=b"`
}

type echoOut struct {
	Echo string `json:"echo"`
}

func echoTool(name string, readOnly bool) Tool {
	return New(Spec{Name: name, Title: "Echo", Toolset: "test", Operation: "Echo", ReadOnly: readOnly, Description: "echo"},
		func(_ context.Context, in echoArgs) (echoOut, error) {
			return echoOut{Echo: fmt.Sprintf("%s x%d", in.Name, in.Count)}, nil
		})
}

func TestCallValidatesArguments(t *testing.T) {
	tl := echoTool("test_echo", true)
	out, err := tl.Call(context.Background(), json.RawMessage(`{"name":"hi","count":2}`))
	require.NoError(t, err)
	assert.Equal(t, echoOut{Echo: "hi x2"}, out)

	cases := map[string]struct{ field, msg string }{
		`{}`:                          {"", "missing property 'name'"},
		`{"name":"x","count":"two"}`:  {"count", "want integer"},
		`{"name":"x","count":11}`:     {"count", "maximum"},
		`{"name":"x","colour":"red"}`: {"", "colour"},
		`{"name":"x","mode":"c"}`:     {"mode", ""},
		`{"name":"x","tags":"a"}`:     {"tags", "want array"},
		`{"name":"x","count":1.5}`:    {"count", ""},
		`{"name":`:                    {"", "not valid JSON"},
		`{"name":"","count":1}`:       {"name", ""},
	}
	for args, want := range cases {
		_, err := tl.Call(context.Background(), json.RawMessage(args))
		var te *Error
		require.True(t, errors.As(err, &te), "%s: %v", args, err)
		assert.Equal(t, CodeInvalidArgument, te.Code, args)
		assert.Equal(t, want.field, te.Field, "%s: %s", args, te.Message)
		assert.Contains(t, te.Message, want.msg, args)
		assert.NotContains(t, te.Message, "\n", "one line per problem")
	}
	_, err = tl.Call(context.Background(), nil)
	assert.Error(t, err, "no arguments means {} which lacks name")
}

func TestSchemaIsFlatAndClosed(t *testing.T) {
	var s map[string]any
	require.NoError(t, json.Unmarshal(SchemaOf[echoArgs](), &s))
	assert.Equal(t, "object", s["type"])
	assert.Equal(t, false, s["additionalProperties"])
	assert.Equal(t, []any{"name"}, s["required"])
	props := s["properties"].(map[string]any)
	assert.Equal(t, "array", props["tags"].(map[string]any)["type"], "a slice is a plain array, not [null, array]")
	assert.NotContains(t, s, "$schema")
	assert.NotContains(t, s, "$defs")

	var empty map[string]any
	require.NoError(t, json.Unmarshal(SchemaOf[struct{}](), &empty))
	assert.Equal(t, map[string]any{}, empty["properties"])
}

func TestAsErrorMapsEveryFailure(t *testing.T) {
	cases := []struct {
		err        error
		code       string
		retryAfter int
	}{
		{InvalidArgument("x", "bad"), CodeInvalidArgument, 0},
		{&throttle.ThrottledError{Connection: "pipedrive", RetryAfter: 1500 * time.Millisecond, Limit: 100, Window: time.Minute}, CodeThrottled, 2},
		{fmt.Errorf("wrapped: %w", &throttle.ThrottledError{RetryAfter: 12 * time.Second}), CodeThrottled, 12},
		{&upstream.Error{Connector: "p", Status: 400, Message: "bad"}, CodeInvalidArgument, 0},
		{&upstream.Error{Connector: "p", Status: 401}, CodeUnauthorized, 0},
		{&upstream.Error{Connector: "p", Status: 403}, CodeForbidden, 0},
		{&upstream.Error{Connector: "p", Status: 404}, CodeNotFound, 0},
		{&upstream.Error{Connector: "p", Status: 412}, CodeConflict, 0},
		{&upstream.Error{Connector: "p", Status: 429, RetryAfter: 3 * time.Second}, CodeThrottled, 3},
		{&upstream.Error{Connector: "p", Status: 429}, CodeThrottled, 1},
		{&upstream.Error{Connector: "p", Status: 503}, CodeUnavailable, 0},
		{&upstream.Error{Connector: "p", Status: 418}, CodeUpstreamError, 0},
		{context.DeadlineExceeded, CodeUnavailable, 0},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, CodeUnavailable, 0},
		{errors.New("boom"), CodeUpstreamError, 0},
	}
	for _, c := range cases {
		e := AsError(c.err)
		assert.Equal(t, c.code, e.Code, "%v", c.err)
		assert.Equal(t, c.retryAfter, e.RetryAfterSeconds, "%v", c.err)
		res := e.Result()
		assert.True(t, res.IsError)
	}
}

func TestPolicy(t *testing.T) {
	reg := NewRegistry()
	ro, rw := echoTool("test_read", true), echoTool("test_write", false)
	dep := echoTool("test_old", true)
	dep.Deprecated = true
	reg.Add(ro, rw, dep)
	assert.Panics(t, func() { reg.Add(echoTool("test_read", true)) })
	assert.Panics(t, func() { echoTool("Bad-Name", true) })

	assert.Nil(t, Policy{}.Allows(rw))
	assert.Equal(t, CodeForbidden, Policy{ReadOnly: true}.Allows(rw).Code)
	assert.Nil(t, Policy{ReadOnly: true}.Allows(ro))
	assert.Equal(t, CodeForbidden, Policy{Toolsets: []string{"other"}}.Allows(ro).Code)
	assert.False(t, Policy{}.Lists(dep))
	assert.Nil(t, Policy{}.Allows(dep), "deprecated tools stay callable")
	assert.True(t, Policy{IncludeDeprecated: true}.Lists(dep))
	assert.Error(t, Policy{Toolsets: []string{"nope"}}.Validate(reg))
	assert.NoError(t, Policy{Toolsets: []string{"test"}}.Validate(reg))
}

func TestDateAndClockChecks(t *testing.T) {
	assert.Nil(t, CheckDate("d", ""))
	assert.Nil(t, CheckDate("d", "2026-02-28"))
	assert.NotNil(t, CheckDate("d", "2026-02-30"))
	assert.NotNil(t, CheckDate("d", "28.02.2026"))
	assert.Nil(t, CheckClock("t", "23:59"))
	assert.NotNil(t, CheckClock("t", "24:00"))
	assert.NotNil(t, CheckClock("t", "9:30"))
	ts, err := ParseSince("s", "2026-01-02")
	assert.Nil(t, err)
	assert.Equal(t, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), ts)
	_, err = ParseSince("s", "yesterday")
	assert.NotNil(t, err)
}

type listedRow struct {
	ID     int64  `json:"id"`
	Status string `json:"status" jsonschema:"enum=open,enum=won"`
	Owner  struct {
		Name string `json:"name"`
	} `json:"owner"`
}

type listedOut struct {
	Rows    []listedRow `json:"rows"`
	HasMore bool        `json:"has_more"`
	Tags    []string    `json:"tags,omitempty"`
	Next    string      `json:"next_cursor,omitempty"`
}

func TestListedOutputSchemaNamesEveryField(t *testing.T) {
	assert.JSONEq(t,
		`{"type":"object","description":"Fields: rows[] (id, status, owner (name)), has_more, tags[], next_cursor."}`,
		string(ListedOutputSchemaOf[listedOut]()))
	assert.JSONEq(t, `{"type":"object"}`, string(ListedOutputSchemaOf[struct{}]()))

	// tools/list carries the listed schema; the full one stays on the Tool.
	tl := New(Spec{Name: "test_rows", Title: "Rows", Toolset: "test", Operation: "Rows", ReadOnly: true, Description: "rows"},
		func(context.Context, struct{}) (listedOut, error) { return listedOut{}, nil })
	assert.JSONEq(t, string(ListedOutputSchemaOf[listedOut]()), string(tl.MCPTool().RawOutputSchema))
	assert.Contains(t, string(tl.OutputSchema), `"enum":["open","won"]`)
}

func TestAnnotationsStateOnlyWhatDiffersFromTheDefaults(t *testing.T) {
	hints := func(s Spec) string {
		s.Name, s.Title, s.Toolset, s.Operation, s.Description = "test_x", "X", "test", "X", "x"
		raw, err := json.Marshal(New(s, func(context.Context, struct{}) (echoOut, error) { return echoOut{}, nil }).MCPTool().Annotations)
		require.NoError(t, err)
		return string(raw)
	}
	assert.JSONEq(t, `{"readOnlyHint":true}`, hints(Spec{ReadOnly: true}))
	assert.JSONEq(t, `{"readOnlyHint":true,"openWorldHint":false}`, hints(Spec{ReadOnly: true, Local: true}))
	assert.JSONEq(t, `{"destructiveHint":false}`, hints(Spec{}))
	assert.JSONEq(t, `{"destructiveHint":false,"idempotentHint":true}`, hints(Spec{Idempotent: true}))
	assert.JSONEq(t, `{}`, hints(Spec{Destructive: true}))
}

func TestCheckResultHoldsResultsToTheFullSchema(t *testing.T) {
	tl := New(Spec{Name: "test_rows", Title: "Rows", Toolset: "test", Operation: "Rows", ReadOnly: true, Description: "rows"},
		func(context.Context, struct{}) (listedOut, error) { return listedOut{}, nil })
	assert.NoError(t, tl.CheckResult(listedOut{Rows: []listedRow{{ID: 1, Status: "won"}}}))
	assert.ErrorContains(t, tl.CheckResult(listedOut{Rows: []listedRow{{ID: 1, Status: "maybe"}}}), "status")
	assert.ErrorContains(t, tl.CheckResult(map[string]any{"rows": nil, "has_more": false}), "rows")
	assert.ErrorContains(t, tl.CheckResult(map[string]any{"rows": []any{}, "has_more": false, "extra": 1}), "extra")
}
