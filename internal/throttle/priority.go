package throttle

import "context"

// Priority orders callers that wait for the same budget.
type Priority int

const (
	// Interactive is work an agent is waiting on (tool calls). It is served
	// before any Background work and waits at most Config.MaxWait.
	Interactive Priority = iota
	// Background is work nobody is waiting on right now (pollers, bulk
	// chunks). It is served only when no Interactive caller is waiting and
	// waits as long as its context allows.
	Background
)

// String returns "interactive" or "background".
func (p Priority) String() string {
	switch p {
	case Interactive:
		return "interactive"
	case Background:
		return "background"
	default:
		return "unknown"
	}
}

type priorityKey struct{}

// WithPriority returns a context whose upstream calls are made with priority p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the priority carried by ctx; Interactive if none (or
// an unknown value) is set.
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok && p == Background {
		return Background
	}
	return Interactive
}
