package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Projection lets a list tool's caller keep only some fields of each row:
// the tool gains a `fields` argument (an array of the rows' field names,
// generated from the row struct), which is checked and taken out of the
// arguments before the typed handler runs, and each row of the result is
// cut to the named fields plus its id. The full output schema requires
// only the id of a row, so it holds projected results too.
type Projection struct {
	// Rows is the JSON name of the result's array member whose elements
	// (structs with an "id" field) are projected.
	Rows string
	// Exclusive names boolean arguments that return something other than
	// these rows (e.g. full records): `fields` is refused with one set.
	Exclusive []string
}

// FieldsArgument is the name of the argument a Projection adds.
const FieldsArgument = "fields"

// idField is the row member a projection always keeps.
const idField = "id"

// projection is a Projection bound to its tool's row fields.
type projection struct {
	Projection
	tool   string
	fields []string // the rows' members, in declaration order
}

// newProjection checks p against the tool's argument schema and result
// type, and reads the row fields; a mismatch is a programming error.
func newProjection(tool string, p Projection, input json.RawMessage, out reflect.Type) *projection {
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("tools: %s: projection: %s", tool, fmt.Sprintf(format, args...)))
	}
	var in struct {
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		fail("%v", err)
	}
	if _, clash := in.Properties[FieldsArgument]; clash {
		fail("the arguments already have a %q member", FieldsArgument)
	}
	for _, name := range p.Exclusive {
		if in.Properties[name].Type != "boolean" {
			fail("exclusive argument %q is not a boolean argument", name)
		}
	}
	fields := rowFields(out, p.Rows)
	if len(fields) == 0 {
		fail("%s has no array member %q of objects", out, p.Rows)
	}
	if !slices.Contains(fields, idField) {
		fail("the rows of %q have no %q member to keep", p.Rows, idField)
	}
	return &projection{Projection: p, tool: tool, fields: fields}
}

// rowFields names the members of the rows of out's array member rows, in
// declaration order; none if there is no such member of objects.
func rowFields(out reflect.Type, rows string) []string {
	s := reflector.ReflectFromType(out)
	if s.Properties == nil {
		return nil
	}
	member, ok := s.Properties.Get(rows)
	if !ok || member.Type != "array" || member.Items == nil || member.Items.Properties == nil {
		return nil
	}
	var fields []string
	for p := member.Items.Properties.Oldest(); p != nil; p = p.Next() {
		fields = append(fields, p.Key)
	}
	return fields
}

// withArgument adds the `fields` argument to an input schema: in the full
// schema with the enumeration of the row fields; in the listed one (the
// byte budget of tools/list) without it, as the listed output schema
// names the row fields already. Validation enforces the full one.
func (p *projection) withArgument(schema json.RawMessage, full bool) json.RawMessage {
	items := map[string]any{"type": "string"}
	arg := map[string]any{"type": "array", "items": items,
		"description": p.Rows + "[] fields to keep; id always."}
	if full {
		items["enum"] = p.fields
		arg["minItems"] = 1
	}
	return editSchema(schema, func(m map[string]any) {
		props, _ := m["properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
			m["properties"] = props
		}
		props[FieldsArgument] = arg
	})
}

// relaxRows makes every member of a row optional in the output schema but
// its id, which a projection always keeps.
func (p *projection) relaxRows(schema json.RawMessage) json.RawMessage {
	return editSchema(schema, func(m map[string]any) {
		props, _ := m["properties"].(map[string]any)
		member, _ := props[p.Rows].(map[string]any)
		if items, ok := member["items"].(map[string]any); ok {
			items["required"] = []string{idField}
		}
	})
}

// editSchema applies edit to a schema as a JSON object.
func editSchema(schema json.RawMessage, edit func(map[string]any)) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(schema, &m); err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err))
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("tools: schema: %v", err))
	}
	return out
}

// take reads and checks the `fields` argument and returns the arguments
// without it. Arguments that are not an object, or a `fields` that is not
// an array of strings, are left for the schema validation to report.
func (p *projection) take(args json.RawMessage) ([]string, json.RawMessage, *Error) {
	var m map[string]json.RawMessage
	if json.Unmarshal(args, &m) != nil {
		return nil, args, nil
	}
	raw, ok := m[FieldsArgument]
	if !ok {
		return nil, args, nil
	}
	var fields []string
	if string(bytes.TrimSpace(raw)) == "null" || json.Unmarshal(raw, &fields) != nil {
		return nil, args, nil
	}
	if len(fields) == 0 {
		return nil, nil, InvalidArgument(FieldsArgument, "fields is empty: name at least one field of the %s rows (%s), or leave it out for whole rows",
			p.Rows, strings.Join(p.fields, ", "))
	}
	var unknown []string
	for _, f := range fields {
		if !slices.Contains(p.fields, f) && !slices.Contains(unknown, strconv.Quote(f)) {
			unknown = append(unknown, strconv.Quote(f))
		}
	}
	if len(unknown) > 0 {
		return nil, nil, InvalidArgument(FieldsArgument, "unknown field %s: the %s rows have %s",
			strings.Join(unknown, ", "), p.Rows, strings.Join(p.fields, ", "))
	}
	for _, name := range p.Exclusive {
		if v, set := m[name]; set && string(bytes.TrimSpace(v)) == "true" {
			return nil, nil, InvalidArgument(FieldsArgument, "fields picks fields of the %s rows and cannot be combined with %s: leave out one of them", p.Rows, name)
		}
	}
	delete(m, FieldsArgument)
	rest, err := json.Marshal(m)
	if err != nil {
		return nil, nil, InvalidArgument("", "arguments could not be re-encoded: %v", err)
	}
	return fields, rest, nil
}

// apply projects the rows of a result to the requested fields and the id,
// keeping the order of the members everywhere.
func (p *projection) apply(out any, fields []string) (any, error) {
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("tools: %s: encode the result to project it: %w", p.tool, err)
	}
	top, err := objectMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("tools: %s: project the result: %w", p.tool, err)
	}
	keep := func(name string) bool { return name == idField || slices.Contains(fields, name) }
	for i, m := range top {
		if m.name != p.Rows {
			continue
		}
		var rows []json.RawMessage
		if err := json.Unmarshal(m.value, &rows); err != nil || rows == nil {
			continue // null: nothing to project
		}
		for j, row := range rows {
			members, err := objectMembers(row)
			if err != nil {
				return nil, fmt.Errorf("tools: %s: project row %d: %w", p.tool, j, err)
			}
			rows[j] = encodeMembers(slices.DeleteFunc(members, func(m member) bool { return !keep(m.name) }))
		}
		if top[i].value, err = json.Marshal(rows); err != nil {
			return nil, fmt.Errorf("tools: %s: project the result: %w", p.tool, err)
		}
	}
	return encodeMembers(top), nil
}

// member is one name and value of a JSON object.
type member struct {
	name  string
	value json.RawMessage
}

// objectMembers splits a JSON object into its members, in order.
func objectMembers(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{name, v})
	}
	return out, nil
}

// encodeMembers writes members as a JSON object, in order.
func encodeMembers(members []member) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		b.Write(name)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}
