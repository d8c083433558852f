// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment and holds the server's span helpers: the span of a tool call
// (StartToolCall), of a wait for throttle budget (BudgetWaits), the W3C trace
// context of an incoming MCP request (IncomingTraceContext) and log records
// that carry the trace (WithTraceIDs). The span of an upstream HTTP request
// is httpx.TracedTransport.
//
// Tracing is on only when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and neither OTEL_SDK_DISABLED=true
// nor OTEL_TRACES_EXPORTER=none says otherwise). Off, no exporter runs,
// Enabled reports false and the server installs none of its
// instrumentation, so an untraced call does exactly what it did without it.
//
// Spans carry names, codes, hosts and path templates: never a secret, an
// argument value, a query string or a header other than the upstream's
// request and correlation ids.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName names the server's tracer (its instrumentation scope).
const InstrumentationName = "github.com/cosell-mcp/cosell-mcp"

// DefaultServiceName is service.name when OTEL_SERVICE_NAME is not set.
const DefaultServiceName = "cosell-mcp"

// ShutdownTimeout bounds the flush of the spans still buffered on exit.
const ShutdownTimeout = 5 * time.Second

type installed struct {
	tracer trace.Tracer
}

var current atomic.Pointer[installed]

var noopTracer = noop.NewTracerProvider().Tracer(InstrumentationName)

// Install makes tp the provider of the server's spans, and returns the
// function that puts the previous one back. A nil tp turns tracing off.
// Setup calls it; a test installs a provider with an in-memory exporter.
func Install(tp trace.TracerProvider) (restore func()) {
	var next *installed
	if tp != nil {
		next = &installed{tracer: tp.Tracer(InstrumentationName)}
	}
	prev := current.Swap(next)
	return func() { current.Store(prev) }
}

// Enabled reports whether spans are recorded: whether a provider is
// installed. The server installs its instrumentation only then.
func Enabled() bool { return current.Load() != nil }

// Tracer returns the server's tracer: the installed provider's, or one that
// records nothing.
func Tracer() trace.Tracer {
	if in := current.Load(); in != nil {
		return in.tracer
	}
	return noopTracer
}

// Exporter is tracing as Setup started it: spans batched and exported over
// OTLP/HTTP.
type Exporter struct {
	// Service is the service.name spans are exported under.
	Service string
	// Endpoint is the collector's host, for a log line (no path, no
	// credentials).
	Endpoint string

	tp      *sdktrace.TracerProvider
	restore func()
}

// Shutdown flushes the spans still buffered and stops exporting, within
// ctx's deadline; the server's tracer records nothing afterwards. A nil
// Exporter does nothing.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if e == nil {
		return nil
	}
	e.restore()
	return e.tp.Shutdown(ctx)
}

// Setup starts tracing if the environment asks for it, and returns nil
// (tracing off) if it does not. It reads:
//   - OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: on
//     when either is set; the exporter reads them, and the OTLP headers,
//     timeout, compression, TLS and protocol variables, itself;
//   - OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none: off all the same;
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES: the resource
//     (service.name defaults to DefaultServiceName);
//   - OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*: read by the SDK.
//
// version becomes service.version. The provider is installed (Install) and
// also made OpenTelemetry's global one. The caller must call Shutdown on
// exit.
func Setup(ctx context.Context, version string) (*Exporter, error) {
	endpoint, on, err := configured()
	if err != nil || !on {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	service := DefaultServiceName
	for _, kv := range res.Attributes() {
		if kv.Key == semconv.ServiceNameKey {
			service = kv.Value.AsString()
		}
	}
	return &Exporter{Service: service, Endpoint: endpoint, tp: tp, restore: Install(tp)}, nil
}

// configured reads whether the environment turns tracing on, and the
// collector's host for a log line.
func configured() (endpoint string, on bool, err error) {
	raw := env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if raw == "" {
		raw = env("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if raw == "" || strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(env("OTEL_TRACES_EXPORTER"), "none") {
		return "", false, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, errors.New("OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT: want an http(s) URL of an OTLP/HTTP collector, e.g. http://localhost:4318")
	}
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if env(name) == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	switch p := env(name); p {
	case "", "http/protobuf", "http/json":
	default:
		return "", false, fmt.Errorf("%s=%s: spans are exported over OTLP/HTTP: use http/protobuf (the default) or http/json, and the collector's HTTP port (4318)", name, p)
	}
	return u.Host, true, nil
}

func env(name string) string { return strings.TrimSpace(os.Getenv(name)) }
