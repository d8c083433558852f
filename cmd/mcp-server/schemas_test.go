package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/tools"
)

// TestSchemasAreCurrent fails when schemas/ drifts from the tool
// definitions; `make schemas` regenerates it.
func TestSchemasAreCurrent(t *testing.T) {
	dir := filepath.Join("..", "..", "schemas")
	reg := staticRegistry()
	want := map[string]bool{}
	for _, tl := range reg.Tools() {
		name := tl.Name + ".json"
		want[name] = true
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "schemas/%s is missing: run make schemas", name)
		assert.Equal(t, string(tools.SchemaFile(tl)), string(got), "schemas/%s is stale: run make schemas", name)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			assert.True(t, want[e.Name()], "schemas/%s has no tool: run make schemas", e.Name())
		}
	}
}

// TestSchemasSuitEveryClient checks the rules Copilot Studio and Gemini
// impose: no $ref, no multi-type fields, closed objects.
func TestSchemasSuitEveryClient(t *testing.T) {
	for _, tl := range staticRegistry().Tools() {
		for kind, raw := range map[string]json.RawMessage{"input": tl.InputSchema, "output": tl.OutputSchema} {
			var s map[string]any
			require.NoError(t, json.Unmarshal(raw, &s))
			assert.Equal(t, "object", s["type"], "%s %s", tl.Name, kind)
			walkSchema(t, tl.Name+" "+kind, s)
		}
		assert.LessOrEqual(t, len(tl.Name), 64)
		assert.NotEmpty(t, tl.Description, tl.Name)
		assert.NotEmpty(t, tl.Title, tl.Name)
	}
}

func walkSchema(t *testing.T, where string, s map[string]any) {
	t.Helper()
	_, hasRef := s["$ref"]
	assert.False(t, hasRef, "%s: $ref", where)
	_, hasDefs := s["$defs"]
	assert.False(t, hasDefs, "%s: $defs", where)
	if typ, ok := s["type"]; ok {
		_, isString := typ.(string)
		assert.True(t, isString, "%s: multi-type %v", where, typ)
	}
	if s["type"] == "object" {
		_, hasProps := s["properties"]
		if hasProps || s["additionalProperties"] != true {
			// Only a free-form upstream blob (no declared properties) may stay open.
			assert.Equal(t, false, s["additionalProperties"], "%s: additionalProperties must be false", where)
		}
		props, _ := s["properties"].(map[string]any)
		for name, p := range props {
			if ps, ok := p.(map[string]any); ok {
				walkSchema(t, where+"."+name, ps)
			}
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		walkSchema(t, where+"[]", items)
	}
}

// TestReadmeTablesAreCurrent fails when README.md's generated tables drift
// from the registry; `make docs` regenerates them.
func TestReadmeTablesAreCurrent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	want, err := renderDocs(string(raw))
	require.NoError(t, err)
	assert.Equal(t, want, string(raw), "README.md tables are stale: run make docs")
	for _, tl := range staticRegistry().Tools() {
		assert.Contains(t, string(raw), "`"+tl.Name+"`")
	}
}
