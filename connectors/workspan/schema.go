package workspan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ObjectSchema is the JSON schema of the objects of an integration, as
// GetObjectEventSchema answers it ({"schema": {...}}; the connector's
// object-event triggers take their payload's fields from it). Its fields
// are the schema's properties in the order the document lists them, those
// of a nested object flattened to dotted names (sales_details.crm_opportunity_id).
type ObjectSchema struct {
	Title  string
	Fields []SchemaField
}

// SchemaField is one property of an ObjectSchema, with the JSON Schema
// keywords that say how to fill it.
type SchemaField struct {
	Name string
	// Type is the JSON type (string, number, integer, boolean, array,
	// object); "" when the schema does not say.
	Type string
	// Format, e.g. date or date-time, and Pattern, a regular expression.
	Format, Pattern string
	Description     string
	// Enum are the allowed values, as text (e.g. the stage names).
	Enum []string
	// Required: named in the required list of its object (and of every
	// object around it).
	Required bool
	// ReadOnly: WorkSpan sets it (readOnly: true); a load does not.
	ReadOnly bool
}

// Field returns the field called name.
func (s *ObjectSchema) Field(name string) (SchemaField, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return SchemaField{}, false
}

// Schema bounds: deeper nesting or more fields are not read.
const (
	maxSchemaDepth  = 4
	maxSchemaFields = 1000
)

// UnmarshalJSON reads the reply of GetObjectEventSchema.
func (s *ObjectSchema) UnmarshalJSON(b []byte) error {
	var reply struct {
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(b, &reply); err != nil {
		return err
	}
	if len(reply.Schema) == 0 || reply.Schema[0] != '{' {
		return errors.New("the reply has no schema object")
	}
	var root schemaNode
	if err := json.Unmarshal(reply.Schema, &root); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	*s = ObjectSchema{Title: root.Title}
	return s.flatten("", &root, true, false, 0)
}

// schemaNode is the part of a JSON Schema read here.
type schemaNode struct {
	Title       string            `json:"title"`
	Type        json.RawMessage   `json:"type"`
	Format      string            `json:"format"`
	Pattern     string            `json:"pattern"`
	Description string            `json:"description"`
	Enum        []json.RawMessage `json:"enum"`
	Required    []string          `json:"required"`
	ReadOnly    bool              `json:"readOnly"`
	Properties  json.RawMessage   `json:"properties"`
}

// flatten appends the properties of node, in document order; required and
// readOnly are those of node itself.
func (s *ObjectSchema) flatten(prefix string, node *schemaNode, required, readOnly bool, depth int) error {
	if len(node.Properties) == 0 || depth >= maxSchemaDepth {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(node.Properties))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("schema: properties is not an object")
	}
	for dec.More() && len(s.Fields) < maxSchemaFields {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		name, _ := t.(string)
		var prop schemaNode
		if err := dec.Decode(&prop); err != nil {
			return fmt.Errorf("schema: property %q: %w", name, err)
		}
		req, ro := required && slices.Contains(node.Required, name), readOnly || prop.ReadOnly
		typ := jsonType(prop.Type)
		if typ == "object" && len(prop.Properties) > 0 {
			if err := s.flatten(prefix+name+".", &prop, req, ro, depth+1); err != nil {
				return err
			}
			continue
		}
		f := SchemaField{Name: prefix + name, Type: typ, Format: prop.Format, Pattern: prop.Pattern,
			Description: prop.Description, Required: req, ReadOnly: ro}
		for _, v := range prop.Enum {
			if t, ok := enumText(v); ok {
				f.Enum = append(f.Enum, t)
			}
		}
		s.Fields = append(s.Fields, f)
	}
	return nil
}

// jsonType reads a type given as a name or a list of names (the first that
// is not "null").
func jsonType(raw json.RawMessage) string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, t := range many {
			if t != "null" {
				return t
			}
		}
	}
	return ""
}

// enumText renders an enum value: a string as itself, anything else but
// null (which only says the field may be empty) as its JSON text.
func enumText(raw json.RawMessage) (string, bool) {
	text := strings.TrimSpace(string(raw))
	if text == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	return text, true
}
