package tools

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// BudgetFunc returns the throttle budget a toolset spends from, if any.
type BudgetFunc func(ctx context.Context, toolset string) *throttle.Budget

// ServerOptions configures NewServer.
type ServerOptions struct {
	Name         string
	Version      string
	Instructions string
	Policy       Policy
	// Budget reports the budget behind a toolset; its status goes into each result's _meta.
	Budget BudgetFunc
	Logger *slog.Logger
	// OnToolCall, when set, learns of every tool call (for metrics).
	OnToolCall func(tool string, failed bool, took time.Duration)
	// Hooks, when set, receive the server's own hooks too (e.g. subscription tracking).
	Hooks *server.Hooks
	// Extra server options (resources, prompts, hooks) added by the caller.
	Extra []server.ServerOption
}

// NewServer builds the MCP server: every registered tool is added (so a
// deprecated tool stays callable by name); tools/list shows only what the
// policy lists; calls are checked against the policy at call time. A
// request whose context carries a Narrowing (WithNarrowing) sees and calls
// only the tools both the policy and its Narrowing allow.
func NewServer(reg *Registry, opts ServerOptions) *server.MCPServer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hooks := opts.Hooks
	if hooks == nil {
		hooks = &server.Hooks{}
	}
	hooks.AddAfterListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
		kept := res.Tools[:0]
		for _, mt := range res.Tools {
			if t, ok := reg.Lookup(mt.Name); !ok || opts.Policy.ListsIn(ctx, t) {
				kept = append(kept, mt)
			}
		}
		res.Tools = kept
	})
	sopts := []server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithHooks(hooks),
		server.WithRoots(),
		server.WithLogging(),
	}
	if opts.Instructions != "" {
		sopts = append(sopts, server.WithInstructions(opts.Instructions))
	}
	sopts = append(sopts, opts.Extra...)
	s := server.NewMCPServer(opts.Name, opts.Version, sopts...)
	for _, t := range reg.Tools() {
		s.AddTool(t.MCPTool(), t.handler(opts))
	}
	return s
}

// MCPTool returns the MCP definition of the tool, with the listed input
// schema (see Tool.ListedInputSchema).
func (t Tool) MCPTool() mcp.Tool {
	schema := t.ListedInputSchema
	if schema == nil {
		schema = t.InputSchema
	}
	mt := mcp.NewToolWithRawSchema(t.Name, t.Description, schema)
	mt.RawOutputSchema = t.ListedOutputSchema
	mt.Annotations = t.annotations()
	mt.Title = t.Title
	return mt
}

// annotations states only the hints that differ from the MCP defaults
// (readOnly false, destructive true, idempotent false, openWorld true):
// the destructive and idempotent hints mean nothing on a read-only tool.
// The title is the tool's top-level title, which clients prefer.
func (t Tool) annotations() mcp.ToolAnnotation {
	var a mcp.ToolAnnotation
	if t.ReadOnly {
		a.ReadOnlyHint = mcp.ToBoolPtr(true)
	} else {
		if !t.Destructive {
			a.DestructiveHint = mcp.ToBoolPtr(false)
		}
		if t.Idempotent {
			a.IdempotentHint = mcp.ToBoolPtr(true)
		}
	}
	if t.Local {
		a.OpenWorldHint = mcp.ToBoolPtr(false)
	}
	return a
}

// handler adapts the typed tool to mcp-go: policy check, interactive
// priority, error mapping, structured result plus one compact text block,
// and the remaining budget in _meta.
func (t Tool) handler(opts ServerOptions) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		var res *mcp.CallToolResult
		if perr := opts.Policy.AllowsIn(ctx, t); perr != nil {
			res = perr.Result()
		} else {
			args, err := rawArguments(req)
			if err != nil {
				res = InvalidArgument("", "arguments are not valid JSON: %v", err).Result()
			} else {
				ctx = withProgressToken(throttle.WithPriority(ctx, throttle.Interactive), req)
				out, err := t.Call(ctx, args)
				if err != nil {
					res = AsError(err).Result()
				} else {
					res = successResult(out)
				}
			}
		}
		if opts.Budget != nil {
			if b := opts.Budget(ctx, t.Toolset); b != nil {
				res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"budget": BudgetOf(b.Status())}}
			}
		}
		attrs := []any{"tool", t.Name, "ms", time.Since(start).Milliseconds()}
		if res.IsError {
			attrs = append(attrs, "error", errorCode(res))
		}
		opts.Logger.InfoContext(ctx, "tool call", attrs...)
		if opts.OnToolCall != nil {
			opts.OnToolCall(t.Name, res.IsError, time.Since(start))
		}
		return res, nil
	}
}

// rawArguments returns a call's arguments as the client sent them. mcp-go
// decodes params.arguments into an `any`, whose numbers are float64: an id
// above 2^53 (9007199254740993) would come back from it rounded
// (9007199254740992). Its CallToolParams.UnmarshalJSON keeps the original
// bytes in RawArguments, which every JSON-RPC transport (stdio, streamable
// HTTP, in-process) fills; only a request built in Go without JSON has
// none, and then Arguments is all there is.
func rawArguments(req mcp.CallToolRequest) (json.RawMessage, error) {
	if len(req.Params.RawArguments) > 0 {
		return req.Params.RawArguments, nil
	}
	if raw, ok := req.Params.Arguments.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(req.Params.Arguments)
}

func successResult(out any) *mcp.CallToolResult {
	text, err := json.Marshal(out)
	if err != nil {
		return (&Error{Code: CodeUpstreamError, Message: "result could not be encoded: " + err.Error()}).Result()
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(string(text))},
		StructuredContent: out,
	}
}

func errorCode(res *mcp.CallToolResult) string {
	if len(res.Content) == 0 {
		return ""
	}
	tc, ok := res.Content[0].(mcp.TextContent)
	if !ok {
		return ""
	}
	var body struct {
		Error Error `json:"error"`
	}
	_ = json.Unmarshal([]byte(tc.Text), &body)
	return body.Error.Code
}
