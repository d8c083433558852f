package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
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

type limitsArgs struct {
	Name   string         `json:"name"`
	Code   string         `json:"code,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	Mode   string         `json:"mode,omitempty" jsonschema:"enum=a,enum=b"`
	Data   string         `json:"data,omitempty" jsonschema:"maxLength=200000"`
	Tags   []string       `json:"tags,omitempty"`
	Fields map[string]any `json:"fields,omitempty"`
}

func limitsTool() Tool {
	return New(Spec{Name: "test_limits", Title: "Limits", Toolset: "test", Operation: "Limits", ReadOnly: true, Description: "limits"},
		func(_ context.Context, in limitsArgs) (echoOut, error) { return echoOut{Echo: in.Name}, nil })
}

func argsJSON(t *testing.T, v map[string]any) json.RawMessage {
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return raw
}

// issue finding 8: no string length limits — every string argument has a
// default maximum (64 KiB) unless its field declares its own, shown in the
// full schema and enforced before the handler (and any upstream call) runs.
func TestStringArgumentsHaveADefaultMaximum(t *testing.T) {
	tl := limitsTool()
	var full map[string]any
	require.NoError(t, json.Unmarshal(tl.InputSchema, &full))
	props := full["properties"].(map[string]any)
	assert.EqualValues(t, DefaultMaxStringLength, props["name"].(map[string]any)["maxLength"])
	assert.EqualValues(t, 200000, props["data"].(map[string]any)["maxLength"], "a declared maximum wins")
	assert.NotContains(t, props["mode"], "maxLength", "an enum needs none")
	assert.EqualValues(t, DefaultMaxStringLength, props["tags"].(map[string]any)["items"].(map[string]any)["maxLength"])
	assert.Equal(t, 1, strings.Count(string(tl.ListedInputSchema), "maxLength"), "tools/list stays lean: only the declared maximum")
	assert.Equal(t, tl.ListedInputSchema, json.RawMessage(tl.MCPTool().RawInputSchema))

	long := strings.Repeat("x", DefaultMaxStringLength+1)
	for name, args := range map[string]map[string]any{
		"plain":            {"name": long},
		"array item":       {"name": "a", "tags": []any{"ok", long}},
		"free-form value":  {"name": "a", "fields": map[string]any{"k": long}},
		"nested free-form": {"name": "a", "fields": map[string]any{"k": []any{map[string]any{"x": long}}}},
		"free-form key":    {"name": "a", "fields": map[string]any{long: 1}},
		"declared maximum": {"name": "a", "data": strings.Repeat("y", 200001)},
	} {
		_, err := tl.Call(context.Background(), argsJSON(t, args))
		var te *Error
		require.True(t, errors.As(err, &te), "%s: %v", name, err)
		assert.Equal(t, CodeInvalidArgument, te.Code, name)
		assert.Contains(t, te.Message, "maxLength", name)
		assert.LessOrEqual(t, len(te.Message), 300, "%s: %s", name, te.Message)
	}
	for name, args := range map[string]map[string]any{
		"at the limit":          {"name": strings.Repeat("é", DefaultMaxStringLength)},
		"declared larger limit": {"name": "a", "data": strings.Repeat("y", 200000)},
		"free-form small":       {"name": "a", "fields": map[string]any{"k": "v", "n": 1}},
	} {
		_, err := tl.Call(context.Background(), argsJSON(t, args))
		assert.NoError(t, err, name)
	}
}

// issue finding 5: a 2.6 MB request once produced a 15.9 MB validation
// error — messages are capped at 2 KiB and quote at most 80 characters of a
// value.
func TestValidationErrorsStaySmall(t *testing.T) {
	tl := limitsTool()
	huge := strings.Repeat("ab'\"c\n", 300000/6)
	args := map[string]any{"name": huge, "code": huge, "mode": huge, "tags": []any{huge, huge, 5}, "fields": map[string]any{huge: huge}}
	for i := range 200 {
		args[fmt.Sprintf("extra_%d_%s", i, strings.Repeat("z", 1000))] = huge[:6000]
	}
	raw := argsJSON(t, args)
	require.Greater(t, len(raw), 2_600_000)
	_, err := tl.Call(context.Background(), raw)
	var te *Error
	require.True(t, errors.As(err, &te), "%v", err)
	assert.Equal(t, CodeInvalidArgument, te.Code)
	assert.LessOrEqual(t, len(te.Message), MaxErrorMessage)
	assert.NotContains(t, te.Message, "\n")
	assert.NotContains(t, te.Message, strings.Repeat("ab'\"c ", 20), "no value is quoted at length")
	assert.LessOrEqual(t, len(te.Field), 4*maxQuoted)
	res := te.Result()
	assert.LessOrEqual(t, len(res.Content[0].(mcp.TextContent).Text), MaxErrorMessage+600)

	// A message built by a handler is capped as well.
	big := InvalidArgument("format", "format must be csv, not %q", huge)
	assert.LessOrEqual(t, len(big.Message), MaxErrorMessage)
	assert.LessOrEqual(t, len(AsError(errors.New(huge)).Message), MaxErrorMessage)
}

func TestElideQuoted(t *testing.T) {
	v := strings.Repeat("x", 200)
	got := elideQuoted("value '" + v + "' does not match pattern '^[A-Z]{3}$'")
	assert.Equal(t, "value '"+strings.Repeat("x", 80)+"…' does not match pattern '^[A-Z]{3}$'", got)
	assert.Equal(t, "short 'one'", elideQuoted("short 'one'"))
	assert.Equal(t, `got "`+strings.Repeat("y", 80)+"…", elideQuoted(`got "`+strings.Repeat("y", 100)))
}

// issue finding 8: client-side refusals and unknown triggers are the
// caller's to fix (invalid_argument), not upstream errors; and a 2xx whose
// body cannot be used is told apart from an upstream error reply.
func TestAsErrorMapsInvalidArgumentsAndBodyErrors(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: a referral id is required", partnercenter.ErrInvalidArgument),
		fmt.Errorf("wrapped: %w", fmt.Errorf("%w: page size must be between 1 and 10000", workspan.ErrInvalidArgument)),
		fmt.Errorf("%w: pipedrive://nope", triggers.ErrUnknownTrigger),
	} {
		e := AsError(err)
		assert.Equal(t, CodeInvalidArgument, e.Code, "%v", err)
		assert.Equal(t, err.Error(), e.Message)
	}
	be := &upstream.BodyError{Connector: "workspan", Status: 200, Kind: upstream.BodyMalformed, Err: errors.New("unexpected EOF")}
	e := AsError(fmt.Errorf("load: %w", be))
	assert.Equal(t, CodeUpstreamError, e.Code)
	assert.Contains(t, e.Message, "malformed response body")
}

// issue finding 7: secrets echoed — a transport error is reported with the
// outermost error's (redacted) text, not an inner one's.
func TestAsErrorUsesTheRedactedText(t *testing.T) {
	red := upstream.NewRedactor("super-secret-token")
	inner := &net.OpError{Op: "dial", Err: errors.New("refused for super-secret-token")}
	e := AsError(red.RedactError(inner))
	assert.Equal(t, CodeUnavailable, e.Code)
	assert.NotContains(t, e.Message, "super-secret-token")
}

type bigIDArgs struct {
	DealID int64 `json:"deal_id" jsonschema:"minimum=1"`
}

// issue finding 8: integer ids above 2^53 — mcp-go decodes params.arguments
// into an `any` (float64 numbers), which would turn 9007199254740993 into
// …992; the server hands the tool the raw JSON it kept instead.
func TestBigIntegerArgumentsArriveExactly(t *testing.T) {
	var got int64
	reg := NewRegistry()
	reg.Add(New(Spec{Name: "test_big", Title: "Big", Toolset: "test", Operation: "Big", ReadOnly: true, Description: "big"},
		func(_ context.Context, in bigIDArgs) (echoOut, error) {
			got = in.DealID
			return echoOut{Echo: strconv.FormatInt(in.DealID, 10)}, nil
		}))
	srv := NewServer(reg, ServerOptions{Name: "t", Version: "1"})
	msg := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_big","arguments":{"deal_id":9007199254740993}}}`
	resp := srv.HandleMessage(context.Background(), json.RawMessage(msg))
	raw, err := json.Marshal(resp)
	require.NoError(t, err)
	assert.Equal(t, int64(9007199254740993), got, "%s", raw)
	assert.Contains(t, string(raw), `9007199254740993`)

	// What mcp-go's decoded Arguments alone would have given.
	var req mcp.CallToolRequest
	require.NoError(t, json.Unmarshal([]byte(msg), &req))
	viaAny, err := json.Marshal(req.Params.Arguments)
	require.NoError(t, err)
	assert.JSONEq(t, `{"deal_id":9007199254740992}`, string(viaAny), "float64 rounds it")
	exact, err := rawArguments(req)
	require.NoError(t, err)
	assert.JSONEq(t, `{"deal_id":9007199254740993}`, string(exact))
}
