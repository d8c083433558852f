package tools

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

type progressKey struct{}

// withProgressToken remembers the caller's progress token for Progress.
func withProgressToken(ctx context.Context, req mcp.CallToolRequest) context.Context {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return ctx
	}
	return context.WithValue(ctx, progressKey{}, req.Params.Meta.ProgressToken)
}

// Progress sends notifications/progress for the running tool call when the
// caller asked for progress (sent a progressToken); otherwise it does nothing.
func Progress(ctx context.Context, done, total float64, message string) {
	token, ok := ctx.Value(progressKey{}).(mcp.ProgressToken)
	if !ok || token == nil {
		return
	}
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return
	}
	params := map[string]any{"progressToken": token, "progress": done, "message": message}
	if total > 0 {
		params["total"] = total
	}
	_ = srv.SendNotificationToClient(ctx, "notifications/progress", params)
}
