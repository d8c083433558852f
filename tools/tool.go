// Package tools is the MCP layer: typed tool definitions, the registry with
// its toolsets and read-only policy, error mapping and result shaping. The
// connector-specific tools live in subpackages (tools/pipedrive, …).
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

// Spec describes a tool: its MCP identity and what it does upstream.
type Spec struct {
	// Name is `<connector>_<verb>_<object>`, snake_case.
	Name string
	// Title is the human-readable name.
	Title string
	// Description says what it does, when to use it, what it returns and how paging works.
	Description string
	// Toolset groups tools (one per connector, plus "server").
	Toolset string
	// Operation is the connector operation the tool implements, e.g. "GetDeal".
	Operation string
	// ReadOnly tools do not change upstream state.
	ReadOnly bool
	// Destructive tools may overwrite or remove data.
	Destructive bool
	// Idempotent tools can be repeated with the same arguments to no further effect.
	Idempotent bool
	// Deprecated tools stay callable by name but are not listed unless asked.
	Deprecated bool
	// Local tools never call an upstream (openWorldHint false).
	Local bool
}

// Tool is a Spec with its schemas and typed handler.
type Tool struct {
	Spec
	InputSchema  json.RawMessage
	OutputSchema json.RawMessage
	// ListedOutputSchema is the compact output schema tools/list carries
	// (see ListedOutputSchemaOf); OutputSchema is the full one.
	ListedOutputSchema json.RawMessage

	validator *jsv.Schema
	call      func(ctx context.Context, args json.RawMessage) (any, error)
}

var namePattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// New defines a tool whose arguments decode into In and whose structured
// result is Out. Both must be structs; their schemas are derived from them.
func New[In, Out any](spec Spec, fn func(ctx context.Context, in In) (Out, error)) Tool {
	if !namePattern.MatchString(spec.Name) {
		panic(fmt.Sprintf("tools: invalid tool name %q", spec.Name))
	}
	if spec.ReadOnly && spec.Destructive {
		panic(fmt.Sprintf("tools: %s cannot be both read-only and destructive", spec.Name))
	}
	for _, t := range []reflect.Type{reflect.TypeFor[In](), reflect.TypeFor[Out]()} {
		if t.Kind() != reflect.Struct {
			panic(fmt.Sprintf("tools: %s: %s is not a struct", spec.Name, t))
		}
	}
	t := Tool{Spec: spec, InputSchema: SchemaOf[In](), OutputSchema: SchemaOf[Out](), ListedOutputSchema: ListedOutputSchemaOf[Out]()}
	t.validator = compileSchema(spec.Name, t.InputSchema)
	t.call = func(ctx context.Context, args json.RawMessage) (any, error) {
		var in In
		dec := json.NewDecoder(bytes.NewReader(args))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			return nil, InvalidArgument("", "arguments do not match the schema: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return fn(ctx, in)
	}
	return t
}

// Call validates raw JSON arguments against the input schema, decodes them
// and runs the handler. A nil or empty args means no arguments.
func (t Tool) Call(ctx context.Context, args json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(args)) == 0 || string(bytes.TrimSpace(args)) == "null" {
		args = json.RawMessage(`{}`)
	}
	inst, err := jsv.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return nil, InvalidArgument("", "arguments are not valid JSON: %v", err)
	}
	if err := t.validator.Validate(inst); err != nil {
		return nil, validationError(err)
	}
	return t.call(ctx, args)
}

func compileSchema(name string, schema json.RawMessage) *jsv.Schema {
	doc, err := jsv.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		panic(fmt.Sprintf("tools: %s: schema: %v", name, err))
	}
	c := jsv.NewCompiler()
	url := "mem:///" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		panic(fmt.Sprintf("tools: %s: schema: %v", name, err))
	}
	s, err := c.Compile(url)
	if err != nil {
		panic(fmt.Sprintf("tools: %s: schema: %v", name, err))
	}
	return s
}

// validationError condenses a schema validation failure into one line per
// problem, naming the argument: "limit: got string, want integer".
func validationError(err error) *Error {
	var ve *jsv.ValidationError
	if !errors.As(err, &ve) {
		return InvalidArgument("", "%v", err)
	}
	var msgs []string
	field := ""
	for _, line := range strings.Split(ve.Error(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "- at '") {
			continue
		}
		rest := strings.TrimPrefix(line, "- at '")
		loc, msg, ok := strings.Cut(rest, "': ")
		if !ok {
			continue
		}
		loc = strings.TrimPrefix(loc, "/")
		if loc == "" {
			msgs = append(msgs, msg)
		} else {
			if field == "" {
				field = loc
			}
			msgs = append(msgs, loc+": "+msg)
		}
	}
	if len(msgs) == 0 {
		msgs = append(msgs, ve.Error())
	}
	return InvalidArgument(field, "%s", strings.Join(msgs, "; "))
}

// CheckResult validates a structured result against the tool's full output
// schema (the one in schemas/, stricter than the listed one). The tests
// hold every tool's results to it.
func (t Tool) CheckResult(structured any) error {
	raw, err := json.Marshal(structured)
	if err != nil {
		return err
	}
	inst, err := jsv.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := compileSchema(t.Name+".output", t.OutputSchema).Validate(inst); err != nil {
		return fmt.Errorf("%s: result does not match its output schema: %w\n%s", t.Name, err, raw)
	}
	return nil
}
