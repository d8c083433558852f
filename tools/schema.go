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

// DefaultMaxStringLength bounds every string argument whose field does not
// declare its own maxLength (in characters, as JSON Schema counts): a
// longer value is refused as invalid_argument before any upstream call. A
// field that legitimately carries more (an inline upload) declares a
// larger `jsonschema:"maxLength=…"` in its struct tag.
const DefaultMaxStringLength = 64 << 10

// withStringLimits returns schema with maxLength DefaultMaxStringLength on
// every string property, array item and map value that has neither a
// maxLength nor an enum or const of its own. It is the input schema of
// schemas/<tool>.json; tools/list carries the schema without these
// defaults (the byte budget of the list), and validation enforces them.
func withStringLimits(schema json.RawMessage) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(schema, &m); err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err))
	}
	limitStrings(m)
	out, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err))
	}
	return out
}

func limitStrings(s map[string]any) {
	if s["type"] == "string" {
		_, hasMax := s["maxLength"]
		_, hasEnum := s["enum"]
		_, hasConst := s["const"]
		if !hasMax && !hasEnum && !hasConst {
			s["maxLength"] = DefaultMaxStringLength
		}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for _, p := range props {
			if ps, ok := p.(map[string]any); ok {
				limitStrings(ps)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if sub, ok := s[k].(map[string]any); ok {
			limitStrings(sub)
		}
	}
}

// boundedValue is a schema every JSON value meets whose strings, at any
// depth, are at most DefaultMaxStringLength characters long, and whose
// object keys too.
const boundedValueDef = "boundedValue"

// validationSchema is the schema arguments are validated against: the
// input schema (string limits included) where a free-form object (custom
// fields, say: additionalProperties true) admits only bounded values.
// It is never shown to a client ($ref and $defs are for validation only).
func validationSchema(input json.RawMessage) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(input, &m); err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err))
	}
	if boundFreeForm(m) {
		ref := map[string]any{"$ref": "#/$defs/" + boundedValueDef}
		m["$defs"] = map[string]any{boundedValueDef: map[string]any{
			"maxLength":            DefaultMaxStringLength,
			"items":                ref,
			"additionalProperties": ref,
			"propertyNames":        map[string]any{"maxLength": DefaultMaxStringLength},
		}}
	}
	out, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err))
	}
	return out
}

// boundFreeForm replaces every "additionalProperties": true below s with a
// reference to the bounded value schema and reports whether it did.
func boundFreeForm(s map[string]any) bool {
	found := false
	if s["additionalProperties"] == true {
		s["additionalProperties"] = map[string]any{"$ref": "#/$defs/" + boundedValueDef}
		s["propertyNames"] = map[string]any{"maxLength": DefaultMaxStringLength}
		found = true
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for _, p := range props {
			if ps, ok := p.(map[string]any); ok && boundFreeForm(ps) {
				found = true
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if sub, ok := s[k].(map[string]any); ok && boundFreeForm(sub) {
			found = true
		}
	}
	return found
}
