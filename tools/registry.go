package tools

import (
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

// Policy decides which tools are listed and which may be called.
type Policy struct {
	// Toolsets enabled; empty means all. The server toolset is always enabled.
	Toolsets []string
	// ReadOnly refuses every tool that is not read-only.
	ReadOnly bool
	// IncludeDeprecated lists deprecated tools too (they are callable either way).
	IncludeDeprecated bool
}

// Validate checks the policy's toolsets against the registry.
func (p Policy) Validate(r *Registry) error {
	known := r.Toolsets()
	for _, ts := range p.Toolsets {
		if !slices.Contains(known, ts) {
			return fmt.Errorf("unknown toolset %q (known: %s)", ts, strings.Join(known, ", "))
		}
	}
	return nil
}

// Allows reports whether t may be called, and if not, why.
func (p Policy) Allows(t Tool) *Error {
	if len(p.Toolsets) > 0 && t.Toolset != ToolsetServer && !slices.Contains(p.Toolsets, t.Toolset) {
		return &Error{Code: CodeForbidden, Message: fmt.Sprintf("tool %s belongs to toolset %q, which this server does not enable (--toolsets %s)", t.Name, t.Toolset, strings.Join(p.Toolsets, ","))}
	}
	if p.ReadOnly && !t.ReadOnly {
		return &Error{Code: CodeForbidden, Message: fmt.Sprintf("tool %s changes data and this server runs read-only (--read-only)", t.Name)}
	}
	return nil
}

// Lists reports whether t appears in tools/list.
func (p Policy) Lists(t Tool) bool {
	return p.Allows(t) == nil && (!t.Deprecated || p.IncludeDeprecated)
}
