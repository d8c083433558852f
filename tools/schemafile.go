package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SchemaFile is the checked-in description of one tool's schemas.
func SchemaFile(t Tool) []byte {
	doc := struct {
		Name         string          `json:"name"`
		Toolset      string          `json:"toolset"`
		Operation    string          `json:"operation"`
		InputSchema  json.RawMessage `json:"inputSchema"`
		OutputSchema json.RawMessage `json:"outputSchema"`
	}{t.Name, t.Toolset, t.Operation, t.InputSchema, t.OutputSchema}
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	_ = json.Indent(&buf, raw, "", "  ")
	buf.WriteByte('\n')
	return buf.Bytes()
}

// WriteSchemas writes one <tool>.json per tool into dir and removes files
// of tools that no longer exist.
func WriteSchemas(reg *Registry, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, t := range reg.Tools() {
		name := t.Name + ".json"
		want[name] = true
		if err := os.WriteFile(filepath.Join(dir, name), SchemaFile(t), 0o644); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !want[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove stale %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}
