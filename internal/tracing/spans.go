package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Attribute keys of the server's own spans (semantic-convention keys come
// from semconv).
const (
	// MCPMethodKey is the MCP method of a request ("tools/call").
	MCPMethodKey = attribute.Key("mcp.method.name")
	// ToolNameKey is the tool a call runs.
	ToolNameKey = attribute.Key("gen_ai.tool.name")
	// ToolsetKey is the toolset (connector) of the tool.
	ToolsetKey = attribute.Key("cosell.toolset")
	// SessionHashKey identifies the MCP session without revealing its id:
	// the first 8 bytes of its SHA-256, in hex.
	SessionHashKey = attribute.Key("cosell.session.hash")
	// ResultKey is a tool call's outcome: "ok" or the error code
	// (invalid_argument, throttled, …).
	ResultKey = attribute.Key("cosell.result")
	// ConnectionKey names the connection whose budget is spent (connector,
	// or connector and a hash of the caller's credential), as on the
	// upstream request spans.
	ConnectionKey = httpx.ConnectionKey
	// PriorityKey is interactive or background.
	PriorityKey = attribute.Key("cosell.budget.priority")
	// WaitedKey is how long a caller waited for budget, in milliseconds.
	WaitedKey = attribute.Key("cosell.budget.waited_ms")
	// OutcomeKey is how a wait for budget ended: granted, throttled or
	// canceled.
	OutcomeKey = attribute.Key("cosell.budget.outcome")
	// RetryAfterKey is, for a throttled wait, the seconds until a slot is
	// expected.
	RetryAfterKey = attribute.Key("cosell.budget.retry_after_s")
)

// ToolCall names a tool call for its span. It holds no argument values.
type ToolCall struct {
	// Name is the tool.
	Name string
	// Toolset is the tool's toolset, if known.
	Toolset string
	// Session is the MCP session id, recorded only hashed (SessionHashKey).
	Session string
}

// StartToolCall starts the span of a tool call, "tools/call <name>", with
// tracer, as a child of ctx's span (an incoming traceparent's, see
// IncomingTraceContext),
// and returns the context to run the call in and the function that ends
// the span with the call's outcome: "" for success, else the error code the
// caller received (which becomes error.type and the span's error status; a
// message never goes in, as it may quote an argument).
func StartToolCall(ctx context.Context, tracer trace.Tracer, call ToolCall) (context.Context, func(code string)) {
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, MCPMethodKey.String("tools/call"), ToolNameKey.String(call.Name))
	if call.Toolset != "" {
		attrs = append(attrs, ToolsetKey.String(call.Toolset))
	}
	if call.Session != "" {
		sum := sha256.Sum256([]byte(call.Session))
		attrs = append(attrs, SessionHashKey.String(hex.EncodeToString(sum[:8])))
	}
	ctx, span := tracer.Start(ctx, "tools/call "+call.Name,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return ctx, func(code string) {
		if code == "" {
			span.SetAttributes(ResultKey.String("ok"))
		} else {
			span.SetAttributes(ResultKey.String(code), semconv.ErrorTypeKey.String(code))
			span.SetStatus(codes.Error, code)
		}
		span.End()
	}
}

// BudgetWaits is the throttle.WaitHook (throttle.Config.OnWait) that records
// every wait for budget made inside a trace as a "budget wait" span, child
// of the waiting call's span: the connection, the priority, how long it
// waited (on the budget's clock) and whether it was granted, throttled
// (with the retry delay) or canceled. A wait outside any trace (a poller's)
// is not recorded: alone, it would be a trace of its own that says little.
func BudgetWaits(tracer trace.Tracer) throttle.WaitHook {
	return func(ctx context.Context, connection string) func(throttle.Wait) {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return nil
		}
		_, span := tracer.Start(ctx, "budget wait", trace.WithAttributes(ConnectionKey.String(connection)))
		return func(w throttle.Wait) {
			span.SetAttributes(PriorityKey.String(w.Priority.String()),
				WaitedKey.Float64(float64(w.Waited.Microseconds())/1000))
			var te *throttle.ThrottledError
			switch {
			case w.Err == nil:
				span.SetAttributes(OutcomeKey.String("granted"))
			case errors.As(w.Err, &te):
				span.SetAttributes(OutcomeKey.String("throttled"), RetryAfterKey.Int(te.RetryAfterSeconds()))
				span.SetStatus(codes.Error, "throttled")
			default:
				span.SetAttributes(OutcomeKey.String("canceled"))
				span.SetStatus(codes.Error, "canceled")
			}
			span.End()
		}
	}
}

// IncomingTraceContext reads the W3C trace context (traceparent,
// tracestate) of an incoming MCP request's HTTP headers, so that the tool
// call's span joins the caller's trace. It has the methods of mcp-go's
// tracing.Propagator, for server.WithPropagator. Over stdio there are no
// headers and a call starts a trace of its own.
type IncomingTraceContext struct{}

// Extract returns ctx with the remote span context of h, if it has a valid
// traceparent.
func (IncomingTraceContext) Extract(ctx context.Context, h http.Header) context.Context {
	if h.Get("traceparent") == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject does nothing: the server sends its trace context nowhere (the
// upstreams are third-party APIs; see httpx.TracedTransport).
func (IncomingTraceContext) Inject(context.Context, http.Header) {}
