package tools

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ToolsetServer is the toolset of tools about the server itself; it is always enabled.
const ToolsetServer = "server"

// Registry holds every tool the binary offers.
type Registry struct {
	tools  []Tool
	byName map[string]int
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byName: map[string]int{}} }

// Add registers tools; a duplicate name is a programming error and panics.
func (r *Registry) Add(ts ...Tool) {
	for _, t := range ts {
		if _, dup := r.byName[t.Name]; dup {
			panic(fmt.Sprintf("tools: duplicate tool %q", t.Name))
		}
		if t.Toolset == "" || t.Operation == "" {
			panic(fmt.Sprintf("tools: %s needs a toolset and an operation", t.Name))
		}
		r.byName[t.Name] = len(r.tools)
		r.tools = append(r.tools, t)
	}
}

// Tools returns all tools sorted by name.
func (r *Registry) Tools() []Tool {
	out := slices.Clone(r.tools)
	slices.SortFunc(out, func(a, b Tool) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup finds a tool by name.
func (r *Registry) Lookup(name string) (Tool, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Tool{}, false
	}
	return r.tools[i], true
}

// Toolsets returns the distinct toolset names, sorted.
func (r *Registry) Toolsets() []string {
	var out []string
	for _, t := range r.tools {
		if !slices.Contains(out, t.Toolset) {
			out = append(out, t.Toolset)
		}
	}
	slices.Sort(out)
	return out
}

// Policy decides which tools are listed and which may be called. A tool
// must pass every restriction (toolsets, the tool allow-list, read-only):
// the enabled set is their intersection.
type Policy struct {
	// Toolsets enabled; empty means all. The server toolset is always enabled.
	Toolsets []string
	// Tools is an allow-list of tool names (--tools); empty means no such
	// restriction. It is exact: a server tool is enabled only if named, and
	// a deprecated tool it names is listed.
	Tools []string
	// ReadOnly refuses every tool that is not read-only.
	ReadOnly bool
	// IncludeDeprecated lists deprecated tools too (they are callable either way).
	IncludeDeprecated bool
}

// Validate checks the policy's toolsets and tool names against the registry.
func (p Policy) Validate(r *Registry) error {
	if err := r.CheckToolsets(p.Toolsets); err != nil {
		return fmt.Errorf("--toolsets: %w", err)
	}
	if err := r.CheckToolNames(p.Tools); err != nil {
		return fmt.Errorf("--tools: %w; `mcp-server tools` lists every tool", err)
	}
	return nil
}

// Allows reports whether t may be called, and if not, why.
func (p Policy) Allows(t Tool) *Error {
	return restriction{p.Toolsets, p.Tools, p.ReadOnly}.allows(t, serverLimits)
}

// Lists reports whether t appears in tools/list.
func (p Policy) Lists(t Tool) bool {
	return p.Allows(t) == nil && (!t.Deprecated || p.IncludeDeprecated || slices.Contains(p.Tools, t.Name))
}

// AllowsIn is Allows for one request: the policy, then the request's
// Narrowing (if ctx carries one).
func (p Policy) AllowsIn(ctx context.Context, t Tool) *Error {
	if err := p.Allows(t); err != nil {
		return err
	}
	if n, ok := NarrowingFrom(ctx); ok {
		return n.restriction().allows(t, requestLimits)
	}
	return nil
}

// ListsIn is Lists for one request: a tool the request's Narrowing leaves
// out is not listed, and a deprecated tool it names is.
func (p Policy) ListsIn(ctx context.Context, t Tool) bool {
	if p.AllowsIn(ctx, t) != nil {
		return false
	}
	n, _ := NarrowingFrom(ctx)
	return !t.Deprecated || p.IncludeDeprecated || slices.Contains(p.Tools, t.Name) || slices.Contains(n.Tools, t.Name)
}

// Narrowing is what one request asks the policy to narrow to (over HTTP,
// the headers X-MCP-Toolsets, X-MCP-Tools and X-MCP-Readonly). It can only
// narrow: a tool must pass the server's Policy and the Narrowing, so a
// request never reaches a tool the server does not enable. Its fields mean
// what Policy's do.
type Narrowing struct {
	Toolsets []string
	Tools    []string
	ReadOnly bool
}

type narrowingKey struct{}

// WithNarrowing returns ctx carrying the request's Narrowing.
func WithNarrowing(ctx context.Context, n Narrowing) context.Context {
	return context.WithValue(ctx, narrowingKey{}, n)
}

// NarrowingFrom returns the request's Narrowing, if it has one.
func NarrowingFrom(ctx context.Context) (Narrowing, bool) {
	n, ok := ctx.Value(narrowingKey{}).(Narrowing)
	return n, ok
}

func (n Narrowing) restriction() restriction { return restriction{n.Toolsets, n.Tools, n.ReadOnly} }

// restriction is one layer of tool selection, the server's or a request's.
type restriction struct {
	toolsets, tools []string
	readOnly        bool
}

// limitNames names where each restriction of a layer comes from, for its
// error messages.
type limitNames struct{ toolsets, tools, readOnly, who, readOnlyMode string }

var (
	serverLimits  = limitNames{"--toolsets", "--tools", "--read-only", "this server", "this server runs read-only"}
	requestLimits = limitNames{"header X-MCP-Toolsets", "header X-MCP-Tools", "header X-MCP-Readonly", "this request", "this request asks for read-only tools"}
)

func (r restriction) allows(t Tool, names limitNames) *Error {
	if len(r.toolsets) > 0 && t.Toolset != ToolsetServer && !slices.Contains(r.toolsets, t.Toolset) {
		return &Error{Code: CodeForbidden, Message: fmt.Sprintf("tool %s belongs to toolset %q, which %s does not enable (%s %s)", t.Name, t.Toolset, names.who, names.toolsets, strings.Join(r.toolsets, ","))}
	}
	if len(r.tools) > 0 && !slices.Contains(r.tools, t.Name) {
		return &Error{Code: CodeForbidden, Message: fmt.Sprintf("tool %s is not among the tools %s enables (%s)", t.Name, names.who, names.tools)}
	}
	if r.readOnly && !t.ReadOnly {
		return &Error{Code: CodeForbidden, Message: fmt.Sprintf("tool %s changes data and %s (%s)", t.Name, names.readOnlyMode, names.readOnly)}
	}
	return nil
}

// CheckToolsets reports the names that are no toolset of r.
func (r *Registry) CheckToolsets(names []string) error {
	known := r.Toolsets()
	var bad []string
	for _, ts := range names {
		if !slices.Contains(known, ts) {
			bad = append(bad, fmt.Sprintf("%q", ts))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unknown toolset %s (known: %s)", strings.Join(bad, ", "), strings.Join(known, ", "))
	}
	return nil
}

// CheckToolNames reports the names that are no tool of r, each with the
// tool names closest to it.
func (r *Registry) CheckToolNames(names []string) error {
	var bad []string
	for _, n := range names {
		if _, ok := r.byName[n]; ok {
			continue
		}
		msg := fmt.Sprintf("%q", n)
		if near := r.closeNames(n); len(near) > 0 {
			msg += " (did you mean " + strings.Join(near, ", ") + "?)"
		}
		bad = append(bad, msg)
	}
	switch len(bad) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("unknown tool %s", bad[0])
	}
	return fmt.Errorf("unknown tools %s", strings.Join(bad, ", "))
}

// maxCloseNames bounds the suggestions for an unknown tool name.
const maxCloseNames = 3

// closeNames are the tool names nearest to name: within a few edits of
// it, or containing it (or contained in it), nearest first.
func (r *Registry) closeNames(name string) []string {
	type near struct {
		name string
		dist int
	}
	var found []near
	limit := max(2, len(name)/4)
	for _, t := range r.tools {
		d := editDistance(name, t.Name)
		if d > limit && (len(name) < 4 || !strings.Contains(t.Name, name) && !strings.Contains(name, t.Name)) {
			continue
		}
		found = append(found, near{t.Name, d})
	}
	slices.SortFunc(found, func(a, b near) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for _, f := range found[:min(len(found), maxCloseNames)] {
		out = append(out, f.name)
	}
	return out
}

// editDistance is the Levenshtein distance of a and b, in bytes (tool
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
