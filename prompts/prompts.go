// Package prompts holds the MCP prompt templates for co-sell workflows.
//
// Each prompt is an embedded file <name>.md: a front matter block between
// "---" lines, then a text/template body that uses the prompt's arguments.
//
//	---
//	name: review_pipeline
//	description: One line shown in prompts/list.
//	toolset: pipedrive            (or a comma list)
//	writes: false
//	argument: pipeline | required | Pipeline name or id.
//	argument: stale_days | optional | Days in a stage after which a deal is stale.
//	---
//	Review the pipeline "{{.pipeline}}" ...
//
// Every declared argument is visible to the body; an optional one that was
// not given is the empty string.
package prompts

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

//go:embed *.md
var files embed.FS

// Prompt is one prompt template.
type Prompt struct {
	Name        string
	Description string
	// Toolsets the prompt's tools belong to; all must be enabled to offer it.
	Toolsets []string
	// Writes reports whether the workflow calls tools that change data.
	Writes    bool
	Arguments []Argument

	body *template.Template
}

// Argument is one argument of a prompt.
type Argument struct {
	Name        string
	Description string
	Required    bool
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var (
	loadOnce sync.Once
	loaded   []Prompt
	loadErr  error
)

// All returns the embedded prompts, sorted by name.
func All() ([]Prompt, error) {
	loadOnce.Do(func() { loaded, loadErr = load(files) })
	if loadErr != nil {
		return nil, loadErr
	}
	out := make([]Prompt, len(loaded))
	for i, p := range loaded {
		p.Toolsets = slices.Clone(p.Toolsets)
		p.Arguments = slices.Clone(p.Arguments)
		out[i] = p
	}
	return out, nil
}

func load(fsys fs.FS) ([]Prompt, error) {
	paths, err := fs.Glob(fsys, "*.md")
	if err != nil {
		return nil, err
	}
	var out []Prompt
	for _, path := range paths {
		if path == "README.md" {
			continue
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, err
		}
		p, err := parse(string(data))
		if err != nil {
			return nil, fmt.Errorf("prompts: %s: %w", path, err)
		}
		if want := strings.TrimSuffix(path, ".md"); p.Name != want {
			return nil, fmt.Errorf("prompts: %s: name %q does not match the file name", path, p.Name)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// parse reads one prompt file: front matter, then the template body.
func parse(text string) (Prompt, error) {
	var p Prompt
	text = strings.ReplaceAll(text, "\r\n", "\n")
	rest, ok := strings.CutPrefix(text, "---\n")
	if !ok {
		return p, errors.New("missing front matter: the file must start with a --- line")
	}
	header, body, ok := strings.Cut(rest, "\n---\n")
	if !ok {
		return p, errors.New("front matter is not closed by a --- line")
	}
	seenWrites := false
	for i, line := range strings.Split(header, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return p, fmt.Errorf("front matter line %d: want key: value", i+2)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "name":
			p.Name = value
		case "description":
			p.Description = value
		case "toolset", "toolsets":
			for _, ts := range strings.Split(value, ",") {
				ts = strings.TrimSpace(ts)
				if !namePattern.MatchString(ts) {
					return p, fmt.Errorf("front matter line %d: bad toolset %q", i+2, ts)
				}
				if !slices.Contains(p.Toolsets, ts) {
					p.Toolsets = append(p.Toolsets, ts)
				}
			}
		case "writes":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return p, fmt.Errorf("front matter line %d: writes must be true or false", i+2)
			}
			p.Writes, seenWrites = b, true
		case "argument":
			a, err := parseArgument(value)
			if err != nil {
				return p, fmt.Errorf("front matter line %d: %w", i+2, err)
			}
			if slices.ContainsFunc(p.Arguments, func(b Argument) bool { return b.Name == a.Name }) {
				return p, fmt.Errorf("front matter line %d: argument %q declared twice", i+2, a.Name)
			}
			p.Arguments = append(p.Arguments, a)
		default:
			return p, fmt.Errorf("front matter line %d: unknown key %q", i+2, key)
		}
	}
	switch {
	case !namePattern.MatchString(p.Name):
		return p, fmt.Errorf("name %q must be snake_case", p.Name)
	case p.Description == "":
		return p, errors.New("description is missing")
	case len(p.Toolsets) == 0:
		return p, errors.New("toolset is missing")
	case !seenWrites:
		return p, errors.New("writes is missing")
	case strings.TrimSpace(body) == "":
		return p, errors.New("body is empty")
	}
	tmpl, err := template.New(p.Name).Option("missingkey=error").Parse(strings.TrimLeft(body, "\n"))
	if err != nil {
		return p, err
	}
	p.body = tmpl
	return p, nil
}

// parseArgument reads "NAME | required|optional | description".
func parseArgument(value string) (Argument, error) {
	parts := strings.SplitN(value, "|", 3)
	if len(parts) != 3 {
		return Argument{}, errors.New("argument: want NAME | required|optional | description")
	}
	a := Argument{Name: strings.TrimSpace(parts[0]), Description: strings.TrimSpace(parts[2])}
	if !namePattern.MatchString(a.Name) {
		return a, fmt.Errorf("argument name %q must be snake_case", a.Name)
	}
	switch strings.TrimSpace(parts[1]) {
	case "required":
		a.Required = true
	case "optional":
	default:
		return a, fmt.Errorf("argument %q: want required or optional", a.Name)
	}
	return a, nil
}

// Render fills the template with args. A required argument that is missing
// or blank, or an argument the prompt does not declare, is an error.
func (p Prompt) Render(args map[string]string) (string, error) {
	if p.body == nil {
		return "", fmt.Errorf("prompt %q has no template", p.Name)
	}
	var unknown []string
	for name := range args {
		if !slices.ContainsFunc(p.Arguments, func(a Argument) bool { return a.Name == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return "", fmt.Errorf("prompt %s: unknown argument %s", p.Name, strings.Join(unknown, ", "))
	}
	data := make(map[string]string, len(p.Arguments))
	var missing []string
	for _, a := range p.Arguments {
		v := strings.TrimSpace(args[a.Name])
		if v == "" && a.Required {
			missing = append(missing, a.Name)
		}
		data[a.Name] = v
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("prompt %s: missing required argument %s", p.Name, strings.Join(missing, ", "))
	}
	var buf bytes.Buffer
	if err := p.body.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("prompt %s: %w", p.Name, err)
	}
	return buf.String(), nil
}

// Offered reports whether the prompt is offered when enabled reports the
// enabled toolsets and readOnly is the server's mode.
func (p Prompt) Offered(enabled func(toolset string) bool, readOnly bool) bool {
	if readOnly && p.Writes {
		return false
	}
	for _, ts := range p.Toolsets {
		if !enabled(ts) {
			return false
		}
	}
	return true
}

// Register adds the prompts to an MCP server: a prompt is offered only when
// every toolset it needs is enabled (enabled(toolset) reports that) and, when
// readOnly is true, only prompts that do not write.
func Register(s *server.MCPServer, enabled func(toolset string) bool, readOnly bool) error {
	all, err := All()
	if err != nil {
		return err
	}
	var entries []server.ServerPrompt
	for _, p := range all {
		if !p.Offered(enabled, readOnly) {
			continue
		}
		entries = append(entries, server.ServerPrompt{Prompt: p.mcpPrompt(), Handler: p.handler()})
	}
	if len(entries) > 0 {
		s.AddPrompts(entries...)
	}
	return nil
}

func (p Prompt) mcpPrompt() mcp.Prompt {
	opts := []mcp.PromptOption{mcp.WithPromptDescription(p.Description)}
	for _, a := range p.Arguments {
		aopts := []mcp.ArgumentOption{mcp.ArgumentDescription(a.Description)}
		if a.Required {
			aopts = append(aopts, mcp.RequiredArgument())
		}
		opts = append(opts, mcp.WithArgument(a.Name, aopts...))
	}
	return mcp.NewPrompt(p.Name, opts...)
}

func (p Prompt) handler() server.PromptHandlerFunc {
	return func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		text, err := p.Render(req.Params.Arguments)
		if err != nil {
			return nil, err
		}
		return mcp.NewGetPromptResult(p.Description, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
		}), nil
	}
}
