package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	pcsandbox "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	wssandbox "github.com/cosell-mcp/cosell-mcp/connectors/workspan/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/tracing"
)

// noOtelEnv unsets the variables that would turn tracing on by itself.
func noOtelEnv(tb testing.TB) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
		tb.Setenv(name, "")
	}
}

// recordSpans installs a tracer provider whose spans the test reads back
// from an in-memory exporter, for the apps created after it.
func recordSpans(tb testing.TB) *tracetest.InMemoryExporter {
	noOtelEnv(tb)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tb.Cleanup(tracing.Install(tp))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return exp
}

// tracedApp is the real wiring on the sandboxes, logging to logs in the
// --log-format of args.
func tracedApp(t *testing.T, logs io.Writer, args ...string) (*App, Config) {
	t.Helper()
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	cfg, _, err := parseConfig("test", args, io.Discard, nil)
	require.NoError(t, err)
	log := slog.New(tracing.NewLogHandler(logs, cfg.LogFormat, nil))
	app, err := newApp(cfg, log)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	return app, cfg
}

func inProcess(t *testing.T, app *App) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(app.Server)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	return c
}

func call(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(context.Background(), req)
	require.NoError(t, err)
	return res
}

// spanTree is the spans of one trace, by id.
type spanTree struct {
	root     tracetest.SpanStub
	children map[trace.SpanID][]tracetest.SpanStub
}

// toolTrace finds the trace of the last call of tool and checks that each
// of its spans has its parent in it.
func toolTrace(t *testing.T, spans tracetest.SpanStubs, tool string) spanTree {
	t.Helper()
	var root tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "tools/call "+tool {
			root = s
		}
	}
	require.True(t, root.SpanContext.IsValid(), "no span of %s in %d spans", tool, len(spans))
	tree := spanTree{root: root, children: map[trace.SpanID][]tracetest.SpanStub{}}
	ids := map[trace.SpanID]bool{root.SpanContext.SpanID(): true}
	for _, s := range spans {
		if s.SpanContext.TraceID() == root.SpanContext.TraceID() && s.SpanContext.SpanID() != root.SpanContext.SpanID() {
			tree.children[s.Parent.SpanID()] = append(tree.children[s.Parent.SpanID()], s)
			ids[s.SpanContext.SpanID()] = true
		}
	}
	for parent := range tree.children {
		assert.True(t, ids[parent], "a span's parent is in the trace")
	}
	return tree
}

func attrMap(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// dump is everything an exported span says, as text.
func dump(spans tracetest.SpanStubs) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "%s %s %v\n", s.Name, s.Status.Description, attrMap(s))
		for _, e := range s.Events {
			fmt.Fprintf(&b, "  %s %v\n", e.Name, e.Attributes)
		}
		if s.Resource != nil {
			fmt.Fprintf(&b, "  %v\n", s.Resource.Attributes())
		}
	}
	return b.String()
}

// TestToolCallSpanTree follows tool calls on the three sandboxes: each is a
// span with one budget wait and one upstream request per exchange below
// it, and no secret of any connector appears in anything exported.
func TestToolCallSpanTree(t *testing.T) {
	exp := recordSpans(t)
	app, _ := tracedApp(t, io.Discard)
	c := inProcess(t, app)

	res := call(t, c, "pipedrive_get_deal", map[string]any{"deal_id": 7})
	require.False(t, res.IsError, "%v", res.Content)
	tree := toolTrace(t, exp.GetSpans(), "pipedrive_get_deal")
	root := tree.root
	assert.Equal(t, trace.SpanKindServer, root.SpanKind)
	assert.False(t, root.Parent.IsValid(), "over stdio/in process a call starts its own trace")
	a := attrMap(root)
	assert.Equal(t, "pipedrive_get_deal", a["gen_ai.tool.name"])
	assert.Equal(t, "pipedrive", a["cosell.toolset"])
	assert.Equal(t, "ok", a["cosell.result"])
	assert.Len(t, a["cosell.session.hash"], 16)

	var waits, requests []tracetest.SpanStub
	for _, s := range tree.children[root.SpanContext.SpanID()] {
		switch {
		case s.Name == "budget wait":
			waits = append(waits, s)
		case s.SpanKind == trace.SpanKindClient:
			requests = append(requests, s)
		default:
			t.Errorf("unexpected span %q under the tool call", s.Name)
		}
	}
	require.NotEmpty(t, requests)
	assert.Len(t, waits, len(requests), "every request waited for its slot")
	firstWait, firstRequest := waits[0].EndTime, requests[0].StartTime
	for _, w := range waits {
		wa := attrMap(w)
		assert.Equal(t, "pipedrive", wa["cosell.connection"])
		assert.Equal(t, "granted", wa["cosell.budget.outcome"])
		assert.Equal(t, "interactive", wa["cosell.budget.priority"])
		assert.Contains(t, wa, "cosell.budget.waited_ms")
		if w.EndTime.Before(firstWait) {
			firstWait = w.EndTime
		}
	}
	for _, r := range requests {
		if r.StartTime.Before(firstRequest) {
			firstRequest = r.StartTime
		}
	}
	assert.False(t, firstWait.After(firstRequest), "the first request leaves after a granted wait")
	var deal tracetest.SpanStub
	for _, r := range requests {
		if r.Name == "GET /api/v2/deals/{id}" {
			deal = r
		}
	}
	require.NotEmpty(t, deal.Name, "requests: %s", dump(requests))
	ra := attrMap(deal)
	assert.Equal(t, "GET", ra["http.request.method"])
	assert.Equal(t, "127.0.0.1", ra["server.address"])
	assert.Equal(t, "/api/v2/deals/{id}", ra["url.template"])
	assert.Equal(t, "200", ra["http.response.status_code"])
	assert.Equal(t, "pipedrive", ra["cosell.connection"])
	assert.Empty(t, tree.children[deal.SpanContext.SpanID()], "a request span has no children")

	// WorkSpan and Partner Center fetch OAuth tokens with secrets in their
	// bodies; an error result is traced with its code.
	res = call(t, c, "workspan_list_reports", nil)
	require.False(t, res.IsError, "%v", res.Content)
	ws := toolTrace(t, exp.GetSpans(), "workspan_list_reports")
	assert.NotEmpty(t, ws.children[ws.root.SpanContext.SpanID()])
	res = call(t, c, "partnercenter_list_referrals", map[string]any{"limit": 1})
	require.False(t, res.IsError, "%v", res.Content)
	res = call(t, c, "pipedrive_get_deal", map[string]any{"deal_id": 987654321})
	require.True(t, res.IsError)
	failed := toolTrace(t, exp.GetSpans(), "pipedrive_get_deal").root
	assert.Equal(t, "not_found", attrMap(failed)["cosell.result"])
	assert.Equal(t, codes.Error, failed.Status.Code)

	all := dump(exp.GetSpans())
	for _, secret := range []string{pdsandbox.DefaultToken, wssandbox.DefaultAppUserSecret, pcsandbox.DefaultClientSecret, pcsandbox.DefaultToken, "987654321"} {
		assert.NotContains(t, all, secret)
	}
	assert.NotContains(t, all, "?", "no query string is recorded")
}

// TestThrottledCallShowsTheBudgetWait runs out of budget: the refused call
// has a budget-wait span with the throttled outcome and no request span.
func TestThrottledCallShowsTheBudgetWait(t *testing.T) {
	exp := recordSpans(t)
	app, _ := tracedApp(t, io.Discard, "--budget-limit", "1")
	c := inProcess(t, app)

	var res *mcp.CallToolResult
	for range 3 { // the one slot goes to the first request; a later one is refused
		if res = call(t, c, "pipedrive_get_stage", map[string]any{"stage_id": 3}); res.IsError {
			break
		}
	}
	require.True(t, res.IsError, "the budget of 1 never ran out")
	tree := toolTrace(t, exp.GetSpans(), "pipedrive_get_stage")
	assert.Equal(t, "throttled", attrMap(tree.root)["cosell.result"])
	assert.Equal(t, codes.Error, tree.root.Status.Code)
	var throttled []tracetest.SpanStub
	for _, s := range tree.children[tree.root.SpanContext.SpanID()] {
		if s.SpanKind == trace.SpanKindClient {
			continue // requests granted before the refusal
		}
		require.Equal(t, "budget wait", s.Name)
		if attrMap(s)["cosell.budget.outcome"] == "throttled" {
			throttled = append(throttled, s)
		}
	}
	require.Len(t, throttled, 1)
	a := attrMap(throttled[0])
	assert.Equal(t, "pipedrive", a["cosell.connection"])
	assert.NotEmpty(t, a["cosell.budget.retry_after_s"])
	assert.Equal(t, codes.Error, throttled[0].Status.Code)
}

// TestIncomingTraceparentIsTheParent calls a tool over streamable HTTP with
// a W3C traceparent: the tool call's span continues the caller's trace.
func TestIncomingTraceparentIsTheParent(t *testing.T) {
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	exp := recordSpans(t)
	app, cfg := tracedApp(t, io.Discard, "--http", "127.0.0.1:0")
	hc, err := httpAuth(cfg)
	require.NoError(t, err)
	h, _ := httpHandler(app, hc, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	c, err := client.NewStreamableHttpClient(srv.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{
		"traceparent": "00-" + traceID + "-" + parentID + "-01",
	}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	res := call(t, c, "pipedrive_get_stage", map[string]any{"stage_id": 3})
	require.False(t, res.IsError, "%v", res.Content)

	root := toolTrace(t, exp.GetSpans(), "pipedrive_get_stage").root
	assert.Equal(t, traceID, root.SpanContext.TraceID().String())
	assert.Equal(t, parentID, root.Parent.SpanID().String())
	assert.True(t, root.Parent.IsRemote())
}

// TestJSONLogsOfATracedCall: with --log-format json every line is one JSON
// object; the tool call's record has its fields and its trace.
func TestJSONLogsOfATracedCall(t *testing.T) {
	exp := recordSpans(t)
	var logs syncBuffer
	app, _ := tracedApp(t, &logs, "--log-format", "json")
	c := inProcess(t, app)
	res := call(t, c, "pipedrive_get_deal", map[string]any{"deal_id": 987654321})
	require.True(t, res.IsError)

	var record map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not one JSON object: %s", line)
		assert.Contains(t, rec, "time")
		assert.Contains(t, rec, "level")
		if rec["msg"] == "tool call" {
			record = rec
		}
	}
	require.NotNil(t, record, "no tool call record in %s", logs.String())
	assert.Equal(t, "INFO", record["level"])
	assert.Equal(t, "pipedrive_get_deal", record["tool"])
	assert.Equal(t, "not_found", record["error"])
	assert.Contains(t, record, "ms")
	root := toolTrace(t, exp.GetSpans(), "pipedrive_get_deal").root
	assert.Equal(t, root.SpanContext.TraceID().String(), record["trace_id"])
	assert.Equal(t, root.SpanContext.SpanID().String(), record["span_id"])
}

func TestBadLogFormatRefusesToStart(t *testing.T) {
	noOtelEnv(t)
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	for _, args := range [][]string{{"--log-format", "xml"}, {"--log-format", "JSON"}} {
		err := run(context.Background(), append([]string{"call"}, append(args, "throttle_status")...), nil, io.Discard, io.Discard)
		require.Error(t, err, "%v", args)
		assert.Contains(t, err.Error(), "--log-format (COSELL_LOG_FORMAT)")
		assert.Contains(t, err.Error(), "want text or json")
	}
	t.Setenv("COSELL_LOG_FORMAT", "yaml")
	err := run(context.Background(), []string{"call", "throttle_status"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `COSELL_LOG_FORMAT): want text or json, not "yaml"`)
}

// TestSpansAreFlushedWhenTheAppCloses sets tracing up from the standard
// environment, as a deployment does: the spans still buffered when the
// server exits reach the collector.
func TestSpansAreFlushedWhenTheAppCloses(t *testing.T) {
	var mu sync.Mutex
	var names []string
	var service string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.Resource.Attributes {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					names = append(names, sp.Name)
				}
			}
		}
	}))
	defer collector.Close()
	noOtelEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.URL+"/v1/traces")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	cfg, _, err := parseConfig("test", nil, io.Discard, nil)
	require.NoError(t, err)
	app, err := newApp(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.True(t, tracing.Enabled())
	res := call(t, inProcess(t, app), "throttle_status", nil)
	require.False(t, res.IsError)
	app.Close()
	assert.False(t, tracing.Enabled(), "closed, nothing is recorded")

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, names, "tools/call throttle_status")
	assert.Equal(t, "cosell-mcp", service)
}

// TestNoTracingWithoutTheEnvironment: no OTEL endpoint, no instrumentation
// at all — the upstream chain is the untraced one and no span is started.
func TestNoTracingWithoutTheEnvironment(t *testing.T) {
	noOtelEnv(t)
	app, _ := tracedApp(t, io.Discard)
	assert.False(t, tracing.Enabled())
	assert.Nil(t, app.tracer)
	chain, ok := app.transport("pipedrive").(*httpx.RetryTransport)
	require.True(t, ok)
	assert.Equal(t, http.DefaultTransport, chain.Base.(*httpx.ThrottleTransport).Base)
	_, span := otel.GetTracerProvider().Tracer("x").Start(context.Background(), "x")
	assert.False(t, span.IsRecording(), "the global provider is a no-op")
	span.End()
}

// BenchmarkTracedToolCall compares a tool call on the sandbox without
// tracing (the default) and with every span recorded and discarded.
// Run with -benchmem: "off" should allocate as the untraced code did.
func BenchmarkTracedToolCall(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			noOtelEnv(b)
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
				b.Cleanup(tracing.Install(tp))
			}
			c := benchApp(b)
			req := mcp.CallToolRequest{}
			req.Params.Name = "pipedrive_get_deal"
			req.Params.Arguments = map[string]any{"deal_id": 7}
			_, err := c.CallTool(context.Background(), req) // warm caches
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if res, err := c.CallTool(context.Background(), req); err != nil || res.IsError {
					b.Fatalf("call failed: %v %v", err, res)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestJSONLogsOfTheCommand: the command's own logger follows --log-format,
// so a server started with json writes nothing but JSON lines on stderr.
func TestJSONLogsOfTheCommand(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	var stdout, stderr strings.Builder
	require.NoError(t, run(context.Background(), []string{"call", "--log-format", "json", "throttle_status"}, strings.NewReader(""), &stdout, &stderr))
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "not a JSON line: %q", l)
		assert.NotEmpty(t, rec["level"])
		assert.NotEmpty(t, rec["msg"])
	}
}
