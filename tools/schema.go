package tools

import (
	"encoding/json"
	"fmt"
	"reflect"

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
		if t == reflect.TypeFor[json.RawMessage]() {
			// Values an upstream leaves untyped are free-form objects.
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
