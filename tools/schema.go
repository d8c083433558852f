package tools

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
)

// reflector generates the flat schemas every MCP client accepts: no $ref,
// no multi-type fields, additionalProperties false, required unless omitempty.
var reflector = jsonschema.Reflector{
	DoNotReference:            true,
	ExpandedStruct:            true,
	AllowAdditionalProperties: false,
	Anonymous:                 true,
	Mapper: func(t reflect.Type) *jsonschema.Schema {
		if t == reflect.TypeFor[json.RawMessage]() || t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Interface {
			// Values an upstream leaves untyped, and maps of any values
			// (custom fields), are free-form objects.
			return &jsonschema.Schema{Type: "object", AdditionalProperties: jsonschema.TrueSchema}
		}
		return nil
	},
}

// SchemaOf returns the JSON Schema of T as raw JSON, without $schema/$id.
func SchemaOf[T any]() json.RawMessage {
	return schemaOfType(reflect.TypeFor[T]())
}

func schemaOfType(t reflect.Type) json.RawMessage {
	s := reflector.ReflectFromType(t)
	s.Version = ""
	s.ID = ""
	raw, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("tools: schema of %s: %v", t, err))
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(fmt.Sprintf("tools: schema of %s: %v", t, err))
	}
	if _, ok := m["properties"]; !ok && m["type"] == "object" {
		// An argument-less tool still needs an explicit, closed object schema.
		m["properties"] = map[string]any{}
	}
	out, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("tools: schema of %s: %v", t, err))
	}
	return out
}

// ListedOutputSchemaOf returns the output schema of T as tools/list carries
// it: an object whose description names the result's fields in declaration
// order, nested ones in parentheses and lists with [], e.g.
// "Fields: deals[] (id, title, status), has_more, next_cursor.". An agent
// learns the shape for about a third of the bytes of the full schema; the full,
// closed schema is in schemas/<tool>.json, and the tests validate every
// result against it.
func ListedOutputSchemaOf[T any]() json.RawMessage {
	return listedSchemaOfType(reflect.TypeFor[T]())
}

func listedSchemaOfType(t reflect.Type) json.RawMessage {
	full := reflector.ReflectFromType(t)
	listed := &jsonschema.Schema{Type: "object"}
	if fields := fieldList(full); fields != "" {
		listed.Description = "Fields: " + fields + "."
	}
	raw, err := json.Marshal(listed)
	if err != nil {
		panic(fmt.Sprintf("tools: listed schema of %s: %v", t, err))
	}
	return raw
}

// fieldList names s's fields in order; nested objects list theirs in
// parentheses, arrays get a trailing [].
func fieldList(s *jsonschema.Schema) string {
	if s.Properties == nil {
		return ""
	}
	var b strings.Builder
	for p := s.Properties.Oldest(); p != nil; p = p.Next() {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Key)
		v := p.Value
		if v.Type == "array" && v.Items != nil {
			b.WriteString("[]")
			v = v.Items
		}
		if inner := fieldList(v); inner != "" {
			b.WriteString(" (" + inner + ")")
		}
	}
	return b.String()
}
