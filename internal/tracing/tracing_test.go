package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// otelEnv are the variables Setup reads; each test starts with none set.
var otelEnv = []string{
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER",
}

func clearEnv(t *testing.T) {
	for _, name := range otelEnv {
		t.Setenv(name, "")
	}
}

// install installs a provider that records into an in-memory exporter.
func install(t *testing.T) *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(Install(tp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return exp
}

func attrs(s tracetest.SpanStub) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

func TestNoEnvironmentNoTracing(t *testing.T) {
	clearEnv(t)
	exp, err := Setup(context.Background(), "test")
	require.NoError(t, err)
	assert.Nil(t, exp)
	assert.False(t, Enabled())
	require.NoError(t, exp.Shutdown(context.Background()), "a nil Exporter shuts down")
	for _, tracer := range []trace.Tracer{Tracer(), otel.GetTracerProvider().Tracer("any")} {
		_, span := tracer.Start(context.Background(), "x")
		assert.False(t, span.IsRecording())
		assert.False(t, span.SpanContext().IsValid(), "no-op spans have no ids")
		span.End()
	}
}

func TestDisabledWinsOverAnEndpoint(t *testing.T) {
	for _, off := range [][2]string{{"OTEL_SDK_DISABLED", "TRUE"}, {"OTEL_TRACES_EXPORTER", "none"}} {
		clearEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
		t.Setenv(off[0], off[1])
		exp, err := Setup(context.Background(), "test")
		require.NoError(t, err, off[0])
		assert.Nil(t, exp, off[0])
		assert.False(t, Enabled(), off[0])
	}
}

func TestSetupRefusesWhatItCannotExportTo(t *testing.T) {
	for name, env := range map[string][][2]string{
		"grpc":        {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
		"traces grpc": {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4317"}, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"}},
		"no scheme":   {{"OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"}},
	} {
		clearEnv(t)
		for _, kv := range env {
			t.Setenv(kv[0], kv[1])
		}
		exp, err := Setup(context.Background(), "test")
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "OTEL_EXPORTER_OTLP_", name)
		assert.Nil(t, exp, name)
		assert.False(t, Enabled(), name)
	}
	// A traces-specific protocol overrides the general one.
	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
	exp, err := Setup(context.Background(), "test")
	require.NoError(t, err)
	require.NoError(t, exp.Shutdown(context.Background()))
}

// TestSetupExportsOverOTLPHTTP runs the real exporter against a collector
// stand-in: the endpoint, headers and service name come from the standard
// variables, and Shutdown flushes what is buffered.
func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	type export struct {
		path, auth string
		req        *coltracepb.ExportTraceServiceRequest
	}
	got := make(chan export, 4)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- export{r.URL.Path, r.Header.Get("Authorization"), req}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	defer collector.Close()
	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer collector-key")
	t.Setenv("OTEL_SERVICE_NAME", "cosell-eu")

	exp, err := Setup(context.Background(), "1.2.3")
	require.NoError(t, err)
	require.NotNil(t, exp)
	assert.True(t, Enabled())
	assert.Equal(t, "cosell-eu", exp.Service)
	assert.Equal(t, strings.TrimPrefix(collector.URL, "http://"), exp.Endpoint)
	_, end := StartToolCall(context.Background(), Tracer(), ToolCall{Name: "pipedrive_get_deal", Toolset: "pipedrive"})
	end("")
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	require.NoError(t, exp.Shutdown(ctx), "the flush reaches the collector")
	assert.False(t, Enabled(), "shut down, the tracer records nothing")

	var e export
	select {
	case e = <-got:
	default:
		t.Fatal("Shutdown returned before the spans were exported")
	}
	assert.Equal(t, "/v1/traces", e.path)
	assert.Equal(t, "Bearer collector-key", e.auth)
	require.Len(t, e.req.ResourceSpans, 1)
	res := map[string]string{}
	for _, kv := range e.req.ResourceSpans[0].Resource.Attributes {
		res[kv.Key] = kv.Value.GetStringValue()
	}
	assert.Equal(t, "cosell-eu", res["service.name"])
	assert.Equal(t, "1.2.3", res["service.version"])
	spans := e.req.ResourceSpans[0].ScopeSpans[0].Spans
	require.Len(t, spans, 1)
	assert.Equal(t, "tools/call pipedrive_get_deal", spans[0].Name)
}

func TestToolCallSpan(t *testing.T) {
	exp := install(t)
	ctx, end := StartToolCall(context.Background(), Tracer(), ToolCall{Name: "pipedrive_get_deal", Toolset: "pipedrive", Session: "mcp-session-7f3a"})
	assert.True(t, trace.SpanContextFromContext(ctx).IsValid(), "the call runs inside its span")
	end("")
	_, end = StartToolCall(context.Background(), Tracer(), ToolCall{Name: "pipedrive_get_deal"})
	end("not_found")

	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	ok, failed := spans[0], spans[1]
	assert.Equal(t, "tools/call pipedrive_get_deal", ok.Name)
	assert.Equal(t, trace.SpanKindServer, ok.SpanKind)
	a := attrs(ok)
	assert.Equal(t, "tools/call", a[MCPMethodKey])
	assert.Equal(t, "pipedrive_get_deal", a[ToolNameKey])
	assert.Equal(t, "pipedrive", a[ToolsetKey])
	assert.Equal(t, "ok", a[ResultKey])
	assert.Len(t, a[SessionHashKey], 16)
	for _, v := range a {
		assert.NotContains(t, v, "mcp-session-7f3a", "the session id is only hashed")
	}
	assert.Equal(t, codes.Unset, ok.Status.Code)

	a = attrs(failed)
	assert.Equal(t, "not_found", a[ResultKey])
	assert.Equal(t, "not_found", a["error.type"])
	assert.Equal(t, codes.Error, failed.Status.Code)
	assert.NotContains(t, a, ToolsetKey)
	assert.NotContains(t, a, SessionHashKey)
}

func TestBudgetWaitSpans(t *testing.T) {
	exp := install(t)
	hook := BudgetWaits(Tracer())
	assert.Nil(t, hook(context.Background(), "pipedrive"), "no span outside a trace")

	ctx, end := StartToolCall(context.Background(), Tracer(), ToolCall{Name: "pipedrive_get_deal"})
	hook(ctx, "pipedrive")(throttle.Wait{Priority: throttle.Interactive, Waited: 1500 * time.Microsecond})
	hook(ctx, "pipedrive:1a2b3c")(throttle.Wait{Priority: throttle.Interactive, Err: &throttle.ThrottledError{RetryAfter: 12 * time.Second}})
	hook(ctx, "workspan")(throttle.Wait{Priority: throttle.Background, Err: context.Canceled})
	end("throttled")

	spans := exp.GetSpans()
	require.Len(t, spans, 4)
	call := spans[3]
	for _, s := range spans[:3] {
		assert.Equal(t, "budget wait", s.Name)
		assert.Equal(t, call.SpanContext.SpanID(), s.Parent.SpanID())
	}
	granted, throttled, canceled := attrs(spans[0]), attrs(spans[1]), attrs(spans[2])
	assert.Equal(t, map[attribute.Key]string{ConnectionKey: "pipedrive", PriorityKey: "interactive", WaitedKey: "1.5", OutcomeKey: "granted"}, granted)
	assert.Equal(t, map[attribute.Key]string{ConnectionKey: "pipedrive:1a2b3c", PriorityKey: "interactive", WaitedKey: "0", OutcomeKey: "throttled", RetryAfterKey: "12"}, throttled)
	assert.Equal(t, codes.Error, spans[1].Status.Code)
	assert.Equal(t, "canceled", canceled[OutcomeKey])
	assert.Equal(t, "background", canceled[PriorityKey])
}

func TestIncomingTraceContext(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var p IncomingTraceContext
	ctx := p.Extract(context.Background(), http.Header{"Traceparent": {parent}})
	sc := trace.SpanContextFromContext(ctx)
	assert.True(t, sc.IsRemote())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", sc.TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", sc.SpanID().String())

	for _, h := range []http.Header{nil, {}, {"Traceparent": {"garbage"}}} {
		assert.False(t, trace.SpanContextFromContext(p.Extract(context.Background(), h)).IsValid())
	}
	out := http.Header{}
	p.Inject(ctx, out)
	assert.Empty(t, out, "the server sends no trace context")
}

func TestJSONLogsCarryTheTrace(t *testing.T) {
	install(t)
	var buf bytes.Buffer
	log := slog.New(WithTraceIDs(NewLogHandler(&buf, LogJSON, nil)))
	log.Info("outside")
	ctx, end := StartToolCall(context.Background(), Tracer(), ToolCall{Name: "throttle_status"})
	log.With("component", "tools").InfoContext(ctx, "tool call", "tool", "throttle_status", "ms", 3)
	sc := trace.SpanContextFromContext(ctx)
	end("")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var outside, inside map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &outside))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &inside))
	assert.Equal(t, "outside", outside["msg"])
	assert.NotContains(t, outside, "trace_id")
	assert.Equal(t, "INFO", inside["level"])
	assert.Equal(t, "tool call", inside["msg"])
	assert.Equal(t, "throttle_status", inside["tool"])
	assert.Equal(t, "tools", inside["component"])
	assert.Equal(t, sc.TraceID().String(), inside["trace_id"])
	assert.Equal(t, sc.SpanID().String(), inside["span_id"])
}

func TestLogFormats(t *testing.T) {
	require.NoError(t, CheckLogFormat("text"))
	require.NoError(t, CheckLogFormat("json"))
	err := CheckLogFormat("xml")
	require.Error(t, err)
	assert.Equal(t, `want text or json, not "xml"`, err.Error())

	var buf bytes.Buffer
	slog.New(NewLogHandler(&buf, LogText, nil)).Info("hello", "tool", "x")
	assert.Contains(t, buf.String(), `level=INFO msg=hello tool=x`)
	h := WithTraceIDs(NewLogHandler(&buf, LogText, nil))
	assert.Equal(t, h, WithTraceIDs(h), "wrapping twice adds nothing")
}
