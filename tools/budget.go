package tools

import (
	"context"
	"strings"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Budget is a connection's throttle budget as agents see it.
type Budget struct {
	Connection    string `json:"connection"`
	Limit         int    `json:"limit"`
	WindowSeconds int    `json:"window_seconds"`
	Used          int    `json:"used"`
	Remaining     int    `json:"remaining"`
	// ResetSeconds is how long until the next slot frees (0 when one is free).
	ResetSeconds int `json:"reset_seconds"`
	// PausedSeconds is set while an upstream rate-limit signal pauses the connection.
	PausedSeconds int `json:"paused_seconds,omitempty"`
	Waiting       int `json:"waiting,omitempty"`
}

// BudgetOf renders a throttle status for agents.
func BudgetOf(s throttle.Status) Budget {
	b := Budget{
		Connection: s.Connection, Limit: s.Limit, WindowSeconds: throttle.Seconds(s.Window),
		Used: s.Used, Remaining: s.Remaining, ResetSeconds: s.ResetSeconds(), Waiting: s.Waiting,
	}
	if !s.PausedUntil.IsZero() {
		b.PausedSeconds = throttle.Seconds(s.PausedUntil.Sub(s.At))
	}
	return b
}

// ThrottleStatusArgs takes no arguments.
type ThrottleStatusArgs struct{}

// ThrottleStatus is the result of throttle_status.
type ThrottleStatus struct {
	Connections []Budget `json:"connections"`
}

// ThrottleStatusTool reports every connection's throttle budget; it spends none.
func ThrottleStatusTool(budgets *throttle.Registry) Tool {
	return New(Spec{
		Name: "throttle_status", Title: "Throttle budget status", Toolset: ToolsetServer, Operation: "ThrottleStatus",
		ReadOnly: true, Idempotent: true, Local: true,
		Description: "Each connection's call budget: limit per window, used, remaining, seconds until a slot frees. Costs no budget.",
	}, func(ctx context.Context, _ ThrottleStatusArgs) (ThrottleStatus, error) {
		out := ThrottleStatus{Connections: []Budget{}}
		for _, s := range budgets.Statuses() {
			if visibleTo(ctx, s.Connection) {
				out.Connections = append(out.Connections, BudgetOf(s))
			}
		}
		return out, nil
	})
}

// visibleTo reports whether a connection's budget may be shown to the
// caller: the server's own connections, and the caller's, never another
// caller's.
func visibleTo(ctx context.Context, connection string) bool {
	connector, _, own := strings.Cut(connection, ":")
	if !own {
		return true
	}
	return connection == ConnectionName(connector, Credential(ctx, connector))
}
