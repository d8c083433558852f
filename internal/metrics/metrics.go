// Package metrics holds the server's Prometheus metrics: upstream calls,
// throttle budgets and waits, tool latency, sessions and subscriptions.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Metrics is one registry of the server's metrics.
type Metrics struct {
	reg *prometheus.Registry

	upstreamCalls *prometheus.CounterVec
	budgetWait    *prometheus.HistogramVec
	toolLatency   *prometheus.HistogramVec
	sessions      prometheus.Gauge
}

// New registers the metrics; budgets and subscriptions are read at scrape time.
func New(budgets *throttle.Registry, subscriptions func() int) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.upstreamCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cosell_upstream_requests_total", Help: "Upstream HTTP requests by connection and status code (0 = no reply).",
	}, []string{"connection", "status"})
	m.budgetWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cosell_budget_wait_seconds", Help: "Time requests waited for their connection's throttle budget.",
		Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 15, 30, 60},
	}, []string{"connection"})
	m.toolLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cosell_tool_call_seconds", Help: "Tool call latency by tool and outcome.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	}, []string{"tool", "outcome"})
	m.sessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cosell_active_sessions", Help: "Open MCP sessions."})
	remaining := prometheus.NewDesc("cosell_budget_remaining", "Requests a connection may still send in the current window.", []string{"connection"}, nil)
	limit := prometheus.NewDesc("cosell_budget_limit", "Requests a connection may send per window.", []string{"connection"}, nil)
	m.reg.MustRegister(m.upstreamCalls, m.budgetWait, m.toolLatency, m.sessions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectorFunc{descs: []*prometheus.Desc{remaining, limit}, collect: func(ch chan<- prometheus.Metric) {
			for _, st := range budgets.Statuses() {
				ch <- prometheus.MustNewConstMetric(remaining, prometheus.GaugeValue, float64(st.Remaining), st.Connection)
				ch <- prometheus.MustNewConstMetric(limit, prometheus.GaugeValue, float64(st.Limit), st.Connection)
			}
		}},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cosell_trigger_subscriptions", Help: "Sessions subscribed to trigger resources."},
			func() float64 { return float64(subscriptions()) }),
	)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// ObserveUpstream counts one upstream exchange (status 0 when there was no reply).
func (m *Metrics) ObserveUpstream(connection string, status int, waited time.Duration) {
	m.upstreamCalls.WithLabelValues(connection, strconv.Itoa(status)).Inc()
	m.budgetWait.WithLabelValues(connection).Observe(waited.Seconds())
}

// ObserveTool records one tool call.
func (m *Metrics) ObserveTool(tool string, failed bool, took time.Duration) {
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	m.toolLatency.WithLabelValues(tool, outcome).Observe(took.Seconds())
}

// SessionOpened and SessionClosed track open sessions.
func (m *Metrics) SessionOpened() { m.sessions.Inc() }

// SessionClosed decrements the open sessions.
func (m *Metrics) SessionClosed() { m.sessions.Dec() }

// collectorFunc is a collector computed at scrape time.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
