package tools

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type projArgs struct {
	Status string `json:"status,omitempty" jsonschema:"enum=open,enum=won"`
	Full   bool   `json:"full,omitempty"`
	Limit  int    `json:"limit,omitempty" jsonschema:"minimum=1"`
}

type projRow struct {
	ID     int64   `json:"id"`
	Title  string  `json:"title"`
	Status string  `json:"status" jsonschema:"enum=open,enum=won"`
	Value  float64 `json:"value"`
	Owner  string  `json:"owner,omitempty"`
}

type projHit struct {
	projRow
	MatchedOn string `json:"matched_on"`
}

type projOut struct {
	Rows       []projHit `json:"rows"`
	HasMore    bool      `json:"has_more"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// projTool lists two rows and counts its runs (an upstream call each).
func projTool(runs *atomic.Int32) Tool {
	return New(Spec{Name: "test_list", Title: "List", Toolset: "test", Operation: "List", ReadOnly: true, Description: "list",
		Projection: &Projection{Rows: "rows", Exclusive: []string{"full"}}},
		func(_ context.Context, in projArgs) (projOut, error) {
			runs.Add(1)
			return projOut{Rows: []projHit{
				{projRow{ID: 1, Title: "Contoso", Status: "open", Value: 10, Owner: "Ann"}, "title"},
				{projRow{ID: 2, Title: "Fabrikam", Status: "won", Value: 20}, "organization"},
			}, HasMore: in.Limit == 2, NextCursor: "c2"}, nil
		})
}

func TestProjectionKeepsTheRequestedFieldsAndTheID(t *testing.T) {
	var runs atomic.Int32
	tl := projTool(&runs)
	out, err := tl.Call(context.Background(), json.RawMessage(`{"fields":["matched_on","title"],"limit":2}`))
	require.NoError(t, err)
	raw, ok := out.(json.RawMessage)
	require.True(t, ok, "a projected result is its JSON")
	assert.Equal(t, `{"rows":[{"id":1,"title":"Contoso","matched_on":"title"},{"id":2,"title":"Fabrikam","matched_on":"organization"}],"has_more":true,"next_cursor":"c2"}`,
		string(raw), "rows keep their declared order; the other members stay, and the handler got its other arguments")
	require.NoError(t, tl.CheckResult(out), "the full output schema holds a projected result")

	out, err = tl.Call(context.Background(), json.RawMessage(`{"fields":["id"]}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"rows":[{"id":1},{"id":2}],"has_more":false,"next_cursor":"c2"}`, string(out.(json.RawMessage)))
	require.NoError(t, tl.CheckResult(out))

	out, err = tl.Call(context.Background(), json.RawMessage(`{"limit":2}`))
	require.NoError(t, err)
	typed, ok := out.(projOut)
	require.True(t, ok, "without fields the typed result is returned as is")
	assert.Equal(t, "Ann", typed.Rows[0].Owner)
	require.NoError(t, tl.CheckResult(out))
	assert.Equal(t, int32(3), runs.Load())
}

func TestProjectionRefusesBadFieldsBeforeTheHandlerRuns(t *testing.T) {
	var runs atomic.Int32
	tl := projTool(&runs)
	cases := map[string]string{
		`{"fields":["title","colour","colour"]}`: `unknown field "colour": the rows rows have id, title, status, value, owner, matched_on`,
		`{"fields":[]}`:                          "fields is empty",
		`{"fields":["title"],"full":true}`:       "cannot be combined with full",
		`{"fields":"title"}`:                     "want array",
		`{"fields":[1]}`:                         "want string",
		`{"fields":null}`:                        "want array",
		`{"fields":["title"],"limit":0}`:         "minimum",
	}
	for args, want := range cases {
		_, err := tl.Call(context.Background(), json.RawMessage(args))
		var te *Error
		require.True(t, errors.As(err, &te), "%s: %v", args, err)
		assert.Equal(t, CodeInvalidArgument, te.Code, args)
		assert.Contains(t, te.Message, want, args)
	}
	assert.Zero(t, runs.Load(), "no bad argument reaches the handler")

	_, err := tl.Call(context.Background(), json.RawMessage(`{"fields":["title"],"full":false}`))
	assert.NoError(t, err, "full false is no full record")
}

func TestProjectionSchemas(t *testing.T) {
	var runs atomic.Int32
	tl := projTool(&runs)
	var full, listed, output map[string]any
	require.NoError(t, json.Unmarshal(tl.InputSchema, &full))
	require.NoError(t, json.Unmarshal(tl.ListedInputSchema, &listed))
	require.NoError(t, json.Unmarshal(tl.OutputSchema, &output))

	arg := full["properties"].(map[string]any)[FieldsArgument].(map[string]any)
	assert.Equal(t, "array", arg["type"])
	assert.Equal(t, []any{"id", "title", "status", "value", "owner", "matched_on"}, arg["items"].(map[string]any)["enum"],
		"the enumeration comes from the row struct, embedded fields included")
	assert.EqualValues(t, 1, arg["minItems"])
	assert.Nil(t, full["required"], "fields is optional")

	larg := listed["properties"].(map[string]any)[FieldsArgument].(map[string]any)
	assert.Equal(t, map[string]any{"type": "string"}, larg["items"], "the listed schema leaves the names to the listed output schema")
	assert.Contains(t, larg["description"], "rows[]")
	assert.Contains(t, string(tl.MCPTool().RawOutputSchema), "rows[] (id, title, status, value, owner, matched_on)")

	rows := output["properties"].(map[string]any)["rows"].(map[string]any)["items"].(map[string]any)
	assert.Equal(t, []any{"id"}, rows["required"], "a projection may drop any member of a row but its id")
	assert.Equal(t, false, rows["additionalProperties"], "rows stay closed")
	assert.ErrorContains(t, tl.CheckResult(json.RawMessage(`{"rows":[{"title":"x"}],"has_more":false}`)), "id")
	assert.ErrorContains(t, tl.CheckResult(json.RawMessage(`{"rows":[{"id":1,"colour":"x"}],"has_more":false}`)), "colour")
}

func TestProjectionMisuseIsAProgrammingError(t *testing.T) {
	spec := func(p Projection) Spec {
		return Spec{Name: "test_bad", Title: "Bad", Toolset: "test", Operation: "Bad", ReadOnly: true, Description: "bad", Projection: &p}
	}
	handler := func(context.Context, projArgs) (projOut, error) { return projOut{}, nil }
	assert.Panics(t, func() { New(spec(Projection{Rows: "nope"}), handler) }, "no such member")
	assert.Panics(t, func() { New(spec(Projection{Rows: "has_more"}), handler) }, "not an array of objects")
	assert.Panics(t, func() { New(spec(Projection{Rows: "rows", Exclusive: []string{"limit"}}), handler) }, "exclusive must be a boolean argument")
	assert.Panics(t, func() {
		New(spec(Projection{Rows: "tags"}), func(context.Context, projArgs) (listedOut, error) { return listedOut{}, nil })
	}, "rows of strings")
	assert.Panics(t, func() {
		New(spec(Projection{Rows: "rows"}), func(context.Context, struct {
			Owner struct{} `json:"owner"`
		}) (struct {
			Rows []struct {
				Name string `json:"name"`
			} `json:"rows"`
		}, error) {
			return struct {
				Rows []struct {
					Name string `json:"name"`
				} `json:"rows"`
			}{}, nil
		})
	}, "rows without an id")
	assert.Panics(t, func() {
		New(spec(Projection{Rows: "rows"}), func(context.Context, struct {
			Fields []string `json:"fields"`
		}) (projOut, error) {
			return projOut{}, nil
		})
	}, "an argument already named fields")
}
