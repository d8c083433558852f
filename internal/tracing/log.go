package tracing

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log formats of NewLogHandler (--log-format).
const (
	// LogText is slog's key=value text, one record per line.
	LogText = "text"
	// LogJSON is one JSON object per line (slog.JSONHandler), for log
	// pipelines.
	LogJSON = "json"
)

// CheckLogFormat reports an error naming the accepted values unless format
// is LogText or LogJSON.
func CheckLogFormat(format string) error {
	if format == LogText || format == LogJSON {
		return nil
	}
	return fmt.Errorf("want %s or %s, not %q", LogText, LogJSON, format)
}

// NewLogHandler returns the log handler of format writing to w: a
// slog.JSONHandler for LogJSON, else a slog.TextHandler. Both write the same
// fields (time, level, msg and the record's attributes).
func NewLogHandler(w io.Writer, format string, opts *slog.HandlerOptions) slog.Handler {
	if format == LogJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// WithTraceIDs wraps h so that a record logged with a context inside a span
// (a tool call's, when tracing is on) carries trace_id and span_id, to find
// the trace of a log line and the log lines of a trace. Records logged
// without such a context are passed on unchanged.
func WithTraceIDs(h slog.Handler) slog.Handler {
	if _, ok := h.(traceIDs); ok {
		return h
	}
	return traceIDs{h}
}

type traceIDs struct{ slog.Handler }

func (h traceIDs) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceIDs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceIDs{h.Handler.WithAttrs(attrs)}
}

func (h traceIDs) WithGroup(name string) slog.Handler { return traceIDs{h.Handler.WithGroup(name)} }
