package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/require"

	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
)

// benchApp is the real wiring on the embedded sandbox with the budget and
// the sandbox's burst limit lifted, so the benchmark measures our code.
func benchApp(b *testing.B, args ...string) *client.Client {
	b.Helper()
	return sandboxClient(b, args, liftLimits)
}

// liftLimits lifts the budget and the sandbox's burst limit.
func liftLimits(cfg *Config) {
	cfg.BudgetLimit, cfg.BudgetMaxWait = 1_000_000, time.Minute
	cfg.PipedriveSandbox = pdsandbox.Options{Burst: 1 << 30}
}

// BenchmarkToolsList reports the tools/list payload an agent receives, for
// the default configuration and for each toolset alone.
func BenchmarkToolsList(b *testing.B) {
	for _, cfg := range toolsListConfigs {
		b.Run(cfg.name, func(b *testing.B) {
			app := sandboxApp(b, cfg.args, liftLimits)
			var size, count int
			for b.Loop() {
				size, count = toolsListSize(b, app)
			}
			b.ReportMetric(float64(size), "bytes/list")
			b.ReportMetric(float64(count), "tools")
			b.ReportMetric(float64(size)/float64(count), "bytes/tool")
		})
	}
}

// BenchmarkToolCall measures a read tool call end to end on the sandbox:
// MCP dispatch, validation, throttle, HTTP to the loopback sandbox, shaping.
func BenchmarkToolCall(b *testing.B) {
	c := benchApp(b)
	req := mcp.CallToolRequest{}
	req.Params.Name = "pipedrive_get_deal"
	req.Params.Arguments = map[string]any{"deal_id": 7}
	_, err := c.CallTool(context.Background(), req) // warm caches
	require.NoError(b, err)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		res, err := c.CallTool(context.Background(), req)
		lat = append(lat, time.Since(start))
		if err != nil || res.IsError {
			b.Fatalf("call failed: %v %v", err, res)
		}
	}
	reportPercentiles(b, lat)
}

// BenchmarkStartup measures binary start to the first initialize response.
func BenchmarkStartup(b *testing.B) {
	binary(b)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		s := startServer(b)
		s.initialize("2025-11-25")
		lat = append(lat, time.Since(start))
		s.stop()
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkHTTPToolCall measures tool calls over streamable HTTP with 1 and
// 32 concurrent sessions on the sandboxes: throughput and latency.
func BenchmarkHTTPToolCall(b *testing.B) {
	for _, sessions := range []int{1, 32} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			base := benchHTTPServer(b)
			clients := make([]*client.Client, sessions)
			for i := range clients {
				clients[i] = httpClient(b, base)
			}
			req := mcp.CallToolRequest{}
			req.Params.Name = "pipedrive_get_stage"
			req.Params.Arguments = map[string]any{"stage_id": 3}
			var mu sync.Mutex
			var lat []time.Duration
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						res, err := c.CallTool(context.Background(), req)
						d := time.Since(t0)
						if err != nil || res.IsError {
							b.Errorf("call failed: %v", err)
							return
						}
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkHTTPIdleSession reports the server's memory per idle session.
func BenchmarkHTTPIdleSession(b *testing.B) {
	app, handler := benchHTTPApp(b)
	_ = app
	srv := httptest.NewServer(handler)
	b.Cleanup(srv.Close)
	const n = 200
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		httpClient(b, srv.URL)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	for b.Loop() {
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n/1024, "KiB/idle-session")
}

func benchHTTPApp(b *testing.B) (*App, http.Handler) {
	b.Setenv("COSELL_STATE_DIR", b.TempDir())
	cfg, _, err := parseConfig("bench", nil, io.Discard, nil)
	require.NoError(b, err)
	cfg.BudgetLimit, cfg.BudgetMaxWait = 1_000_000, time.Minute
	cfg.PipedriveSandbox = pdsandbox.Options{Burst: 1 << 30}
	cfg.HTTPAddr = "127.0.0.1:0"
	app, err := newApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(b, err)
	b.Cleanup(app.Close)
	hc, err := httpAuth(cfg)
	require.NoError(b, err)
	h, _ := httpHandler(app, hc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return app, h
}

func benchHTTPServer(b *testing.B) string {
	_, h := benchHTTPApp(b)
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}

func httpClient(b *testing.B, base string) *client.Client {
	c, err := client.NewStreamableHttpClient(base + "/mcp")
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	require.NoError(b, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(context.Background(), init)
	require.NoError(b, err)
	return c
}
