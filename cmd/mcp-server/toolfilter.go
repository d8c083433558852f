package main

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Headers an HTTP request may send to narrow the tools it sees and calls.
const (
	HeaderToolsets = "X-MCP-Toolsets"
	HeaderTools    = "X-MCP-Tools"
	HeaderReadonly = "X-MCP-Readonly"
)

// namePattern is what a toolset or tool name looks like.
var namePattern = regexp.MustCompile(`^[a-z0-9_]+$`)

// parseNames reads a comma-separated list of toolset or tool names, as
// --toolsets, --tools and the X-MCP-* headers take them: each item is
// trimmed and must be a name (lower-case letters, digits, _); an empty
// item ("a,,b", "a,") is refused. A blank value is no list (nil).
func parseNames(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var names []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return nil, fmt.Errorf("%q has an empty item: separate names with single commas", s)
		case !namePattern.MatchString(item):
			return nil, fmt.Errorf("%q is not a name (lower-case letters, digits and _)", item)
		}
		names = append(names, item)
	}
	return names, nil
}

// parseSwitch reads a boolean header value: true/false, 1/0, yes/no, on/off.
func parseSwitch(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: use true or false (1/0, yes/no, on/off)", s)
}

// headerError is a malformed tool-selection header.
type headerError struct {
	header string
	err    error
}

func (e *headerError) Error() string { return e.header + ": " + e.err.Error() }

// requestNarrowing reads the tool-selection headers of a request; ok is
// false when it sends none. Toolset and tool names must be the
// registry's; a name the server does not enable is allowed (it narrows to
// nothing) but an unknown one is refused.
func requestNarrowing(reg *tools.Registry, h http.Header) (n tools.Narrowing, ok bool, err error) {
	header := func(name string) (string, bool) {
		vs := h.Values(name)
		if len(vs) == 0 {
			return "", false
		}
		// A list header may come as several lines (RFC 9110, 5.3).
		return strings.Join(vs, ","), true
	}
	names := func(name string, check func([]string) error) ([]string, error) {
		v, sent := header(name)
		if !sent {
			return nil, nil
		}
		ok = true
		list, err := parseNames(v)
		if err == nil && list == nil {
			err = errors.New("is empty: name at least one, or leave the header out")
		}
		if err == nil {
			err = check(list)
		}
		if err != nil {
			return nil, &headerError{name, err}
		}
		return list, nil
	}
	if n.Toolsets, err = names(HeaderToolsets, reg.CheckToolsets); err != nil {
		return n, ok, err
	}
	if n.Tools, err = names(HeaderTools, func(list []string) error {
		if err := reg.CheckToolNames(list); err != nil {
			return fmt.Errorf("%w; tools/list without the header shows the tools this server offers", err)
		}
		return nil
	}); err != nil {
		return n, ok, err
	}
	if v, sent := header(HeaderReadonly); sent {
		ok = true
		if n.ReadOnly, err = parseSwitch(v); err != nil {
			return n, ok, &headerError{HeaderReadonly, err}
		}
	}
	return n, ok, nil
}

// narrowTools applies the tool-selection headers X-MCP-Toolsets,
// X-MCP-Tools and X-MCP-Readonly of each request: that request lists and
// calls only the tools both the server's policy (--toolsets, --tools,
// --read-only) and its headers allow. They can only narrow, never widen;
// a hidden tool is refused at call time (forbidden), never run. A
// malformed value or an unknown name is a 400 naming the header.
//
// Every request's own headers apply, not those of the session's
// initialize: clients such as VS Code and Copilot Studio send the same
// headers with every request of a server entry, so each request sees the
// view its entry configures; with nothing kept per session there is no
// stored view to fall out of step with the headers, to replay on another
// replica of a cluster, or to outlive a change, and sessionless requests
// (protocol 2026-07-28) are served the same way.
func narrowTools(reg *tools.Registry, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, ok, err := requestNarrowing(reg, r.Header)
		if err != nil {
			var he *headerError
			errors.As(err, &he)
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_header", "header": he.header, "message": err.Error()})
			return
		}
		if ok {
			r = r.WithContext(tools.WithNarrowing(r.Context(), n))
		}
		next.ServeHTTP(w, r)
	})
}
