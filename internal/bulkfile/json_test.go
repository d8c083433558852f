package bulkfile

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var jsonOpt = Options{Format: FormatJSON}

func TestJSONValid(t *testing.T) {
	input := `[
	  {"name": "Acme", "amount": 10.5, "won": true, "note": null},
	  {"name": "Beta \"B\"", "region": "EMEA", "amount": -3e2}
	]`
	sum, err := Validate(strings.NewReader(input), jsonOpt)
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Rows)
	assert.Equal(t, []string{"name", "amount", "won", "note", "region"}, sum.Columns)
	assert.Equal(t, int64(len(input)), sum.Bytes)
}

func TestJSONBOM(t *testing.T) {
	sum, err := Validate(strings.NewReader("\xEF\xBB\xBF[{\"a\":1}]"), jsonOpt)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Rows)
}

func TestJSONProblems(t *testing.T) {
	cases := []struct {
		name, input string
		want        Problem
	}{
		{"empty", "", Problem{Message: "the file is empty"}},
		{"empty array", "[]", Problem{Message: "the JSON array is empty"}},
		{"object at top", `{"a":1}`, Problem{Message: "expected a JSON array of objects, found an object"}},
		{"number at top", `42`, Problem{Message: "expected a JSON array of objects, found a number"}},
		{"element not object", `[{"a":1}, 7, {"a":2}]`, Problem{Row: 2, Message: "expected an object, found a number"}},
		{"element array", `[[1,2], {"a":2}]`, Problem{Row: 1, Message: "expected an object, found an array"}},
		{"nested object", `[{"a":1},{"a":2,"owner":{"id":1}}]`, Problem{Row: 2, Column: "owner", Message: "value is an object: values must be strings, numbers, booleans or null (no nested objects or arrays)"}},
		{"nested array", `[{"tags":["x","y"]}]`, Problem{Row: 1, Column: "tags", Message: "value is an array: values must be strings, numbers, booleans or null (no nested objects or arrays)"}},
		{"duplicate key", `[{"a":1,"a":2}]`, Problem{Row: 1, Column: "a", Message: "duplicate key in the object"}},
		{"empty key", `[{"":1}]`, Problem{Row: 1, Message: "empty key"}},
		{"truncated", `[{"a":1},{"a":2`, Problem{Row: 2, Message: "the JSON ends unexpectedly (truncated file?)"}},
		{"trailing data", `[{"a":1}] [{"a":2}]`, Problem{Message: "unexpected data after the JSON array"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, onlyProblem(t, tc.input, jsonOpt))
		})
	}
}

func TestJSONSyntaxError(t *testing.T) {
	p := onlyProblem(t, `[{"a":1},{"a":]`, jsonOpt)
	assert.Equal(t, 2, p.Row)
	assert.Contains(t, p.Message, "invalid JSON at byte")
	assert.Contains(t, p.Message, "invalid character ']'")
}

func TestJSONSeveralProblemsAndNestedSkip(t *testing.T) {
	ve := problems(t, `[{"a":{"b":[1,{"c":2}]}},{"a":1},{"a":[]}]`, jsonOpt)
	assert.Equal(t, []Problem{
		{Row: 1, Column: "a", Message: "value is an object: values must be strings, numbers, booleans or null (no nested objects or arrays)"},
		{Row: 3, Column: "a", Message: "value is an array: values must be strings, numbers, booleans or null (no nested objects or arrays)"},
	}, ve.Problems)
}

func TestJSONLimits(t *testing.T) {
	p := onlyProblem(t, `[{"a":1},{"a":2},{"a":3}]`, Options{Format: FormatJSON, MaxRows: 2})
	assert.Equal(t, Problem{Row: 3, Message: "more than 2 data rows (the limit); split the file"}, p)

	p = onlyProblem(t, `[{"a":1},{"a":2},{"a":3}]`, Options{Format: FormatJSON, MaxBytes: 12})
	assert.Equal(t, Problem{Message: "the file is larger than the limit of 12 bytes"}, p)
}
