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
	"unicode"
	"unicode/utf8"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
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
	// Creates, on a tool that creates an upstream record, turns an error
	// that leaves the create's outcome unknown into outcome_unknown with
	// advice on how to check (see Creates). Such a tool is neither
	// read-only nor idempotent.
	Creates *Creates
	// Projection, on a list tool whose rows are structs, adds a `fields`
	// argument that keeps only the named fields of each row (see
	// Projection).
	Projection *Projection
}

// Tool is a Spec with its schemas and typed handler.
type Tool struct {
	Spec
	// InputSchema is the full input schema (schemas/<tool>.json): every
	// string without a maxLength of its own has DefaultMaxStringLength.
	InputSchema json.RawMessage
	// ListedInputSchema is the input schema tools/list carries: the same
	// without the default string limits, which validation enforces all
	// the same (the list's byte budget has no room for them).
	ListedInputSchema json.RawMessage
	OutputSchema      json.RawMessage
	// ListedOutputSchema is the compact output schema tools/list carries
	// (see ListedOutputSchemaOf); OutputSchema is the full one.
	ListedOutputSchema json.RawMessage

	validator  *jsv.Schema
	call       func(ctx context.Context, args json.RawMessage) (any, error)
	projection *projection
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
	if c := spec.Creates; c != nil && (spec.ReadOnly || spec.Idempotent || c.Record == "" || c.Check == "") {
		panic(fmt.Sprintf("tools: %s: a creating tool is neither read-only nor idempotent, and names its record and how to check for it", spec.Name))
	}
	for _, t := range []reflect.Type{reflect.TypeFor[In](), reflect.TypeFor[Out]()} {
		if t.Kind() != reflect.Struct {
			panic(fmt.Sprintf("tools: %s: %s is not a struct", spec.Name, t))
		}
	}
	listed := SchemaOf[In]()
	t := Tool{Spec: spec, InputSchema: withStringLimits(listed), ListedInputSchema: listed, OutputSchema: SchemaOf[Out](), ListedOutputSchema: ListedOutputSchemaOf[Out]()}
	if spec.Projection != nil {
		t.projection = newProjection(spec.Name, *spec.Projection, listed, reflect.TypeFor[Out]())
		t.ListedInputSchema = t.projection.withArgument(t.ListedInputSchema, false)
		t.InputSchema = t.projection.withArgument(t.InputSchema, true)
		t.OutputSchema = t.projection.relaxRows(t.OutputSchema)
	}
	t.validator = compileSchema(spec.Name, validationSchema(t.InputSchema))
	t.call = func(ctx context.Context, args json.RawMessage) (any, error) {
		var in In
		// Numbers decode from their JSON text: an int64 id above 2^53
		// keeps every digit (no float64 on the way).
		dec := json.NewDecoder(bytes.NewReader(args))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			return nil, InvalidArgument("", "arguments do not match the schema: %s", elideQuoted(strings.TrimPrefix(err.Error(), "json: ")))
		}
		out, err := fn(ctx, in)
		if err != nil {
			// The one place where a create's unknown outcome is told
			// from a failure that is safe to retry.
			return out, spec.Creates.outcomeUnknown(err)
		}
		return out, nil
	}
	return t
}

// Call validates raw JSON arguments against the input schema, decodes them
// and runs the handler. A nil or empty args means no arguments. On a tool
// with a Projection, a `fields` argument is checked first, taken out of
// the arguments the handler decodes, and applied to its result, which is
// then the projected JSON (json.RawMessage) instead of the typed value.
func (t Tool) Call(ctx context.Context, args json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(args)) == 0 || string(bytes.TrimSpace(args)) == "null" {
		args = json.RawMessage(`{}`)
	}
	inst, err := jsv.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return nil, InvalidArgument("", "arguments are not valid JSON: %v", err)
	}
	var fields []string
	if t.projection != nil {
		var perr *Error
		if fields, args, perr = t.projection.take(args); perr != nil {
			return nil, perr
		}
	}
	if err := t.validator.Validate(inst); err != nil {
		return nil, validationError(err)
	}
	out, err := t.call(ctx, args)
	if err != nil || fields == nil {
		return out, err
	}
	return t.projection.apply(out, fields)
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

// Bounds of a validation error's message.
const (
	// MaxErrorMessage bounds the message of every error result, in bytes.
	MaxErrorMessage = 2 << 10
	// maxQuoted bounds a quoted value or an argument's location within a
	// message, in characters.
	maxQuoted = 80
)

// validationError condenses a schema validation failure into one line per
// problem, naming the argument: "limit: got string, want integer". Values
// the validator quotes are cut to 80 characters, argument locations too,
// and the whole message to MaxErrorMessage bytes: a huge argument gets a
// short answer.
func validationError(err error) *Error {
	var ve *jsv.ValidationError
	if !errors.As(err, &ve) {
		return InvalidArgument("", "%s", capMessage(elideQuoted(err.Error())))
	}
	var msgs []string
	field := ""
	size := 0
	var walk func(e *jsv.ValidationError)
	walk = func(e *jsv.ValidationError) {
		if size > MaxErrorMessage {
			return
		}
		_, isSchema := e.ErrorKind.(*kind.Schema)
		_, isRef := e.ErrorKind.(*kind.Reference)
		if !isSchema && !(isRef && len(e.Causes) == 1) && len(e.Causes) == 0 {
			loc := elide(oneLine(strings.Join(e.InstanceLocation, "/")))
			msg := elideQuoted(kindMessage(e))
			if loc != "" {
				if field == "" {
					field = loc
				}
				msg = loc + ": " + msg
			}
			msgs = append(msgs, msg)
			size += len(msg) + 2
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(msgs) == 0 {
		msgs = append(msgs, elideQuoted(ve.Error()))
	}
	return InvalidArgument(field, "%s", capMessage(strings.Join(msgs, "; ")))
}

// kindMessage is the validator's text for one problem, without its
// location.
func kindMessage(e *jsv.ValidationError) string {
	one := &jsv.ValidationError{SchemaURL: e.SchemaURL, ErrorKind: e.ErrorKind}
	return strings.TrimPrefix(one.Error(), "at '': ")
}

// oneLine replaces line breaks and other control characters with spaces.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// elide cuts s to maxQuoted characters, marking the cut with "…".
func elide(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return s
	}
	n := 0
	for i := range s {
		if n == maxQuoted {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// elideQuoted cuts every single- or double-quoted value in msg to
// maxQuoted characters and removes line breaks.
func elideQuoted(msg string) string {
	if len(msg) <= maxQuoted && !strings.ContainsAny(msg, "\n\r") {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		c := msg[i]
		if c != '\'' && c != '"' {
			if c == '\n' || c == '\r' {
				b.WriteByte(' ')
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		// Find the closing quote, skipping backslash escapes.
		j := i + 1
		for j < len(msg) && msg[j] != c {
			if msg[j] == '\\' {
				j++
			}
			j++
		}
		b.WriteByte(c)
		if j >= len(msg) {
			// Unbalanced: the rest is one value.
			b.WriteString(elide(oneLine(msg[i+1:])))
			break
		}
		b.WriteString(elide(oneLine(msg[i+1 : j])))
		b.WriteByte(c)
		i = j + 1
	}
	return b.String()
}

// capMessage cuts msg to MaxErrorMessage bytes on a character boundary.
func capMessage(msg string) string {
	if len(msg) <= MaxErrorMessage {
		return msg
	}
	cut := MaxErrorMessage - len("…")
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
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
