// Package metrics holds the server's Prometheus metrics: upstream calls,
// throttle budgets and waits, tool latency, sessions and subscriptions.
package metrics

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// ConnectionLabel is the value of the connection label for a connection:
// the server's own connections keep their name ("pipedrive"); every
// caller-owned one ("pipedrive:1a2b3c4d5e6f") shares "<connector>:caller",
// so that callers' credentials cannot create series without bound.
func ConnectionLabel(connection string) string {
	if connector, ok := throttle.CallerConnection(connection); ok {
		return connector + ":caller"
	}
	return connection
}

// Metrics is one registry of the server's metrics.
type Metrics struct {
	reg *prometheus.Registry

	upstreamCalls *prometheus.CounterVec
	budgetWait    *prometheus.HistogramVec
	toolLatency   *prometheus.HistogramVec
	sessions      prometheus.Gauge
}

// New registers the metrics; budgets and subscriptions are read at scrape
// time. Budget gauges exist per connection for the server's own
// connections; caller-owned ones are counted per connector.
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
	callers := prometheus.NewDesc("cosell_caller_connections", "Budgets held for callers' own credentials, by connector.", []string{"connector"}, nil)
	exhausted := prometheus.NewDesc("cosell_caller_connections_exhausted", "Callers' own connections with no request left in the current window or paused, by connector.", []string{"connector"}, nil)
	callersMax := prometheus.NewDesc("cosell_caller_connections_max", "Cap on budgets held for callers' own credentials.", nil, nil)
	evicted := prometheus.NewDesc("cosell_caller_connections_evicted_total", "Callers' budgets dropped as idle or to make room.", nil, nil)
	refused := prometheus.NewDesc("cosell_caller_connections_refused_total", "New caller connections refused because the cap was reached by active ones.", nil, nil)
	m.reg.MustRegister(m.upstreamCalls, m.budgetWait, m.toolLatency, m.sessions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectorFunc{descs: []*prometheus.Desc{remaining, limit, callers, exhausted, callersMax, evicted, refused}, collect: func(ch chan<- prometheus.Metric) {
			held, spent := map[string]int{}, map[string]int{}
			for _, st := range budgets.Statuses() {
				if connector, ok := throttle.CallerConnection(st.Connection); ok {
					held[connector]++
					if st.Remaining == 0 || !st.PausedUntil.IsZero() {
						spent[connector]++
					}
					continue
				}
				ch <- prometheus.MustNewConstMetric(remaining, prometheus.GaugeValue, float64(st.Remaining), st.Connection)
				ch <- prometheus.MustNewConstMetric(limit, prometheus.GaugeValue, float64(st.Limit), st.Connection)
			}
			for _, c := range slices.Sorted(maps.Keys(held)) {
				ch <- prometheus.MustNewConstMetric(callers, prometheus.GaugeValue, float64(held[c]), c)
				ch <- prometheus.MustNewConstMetric(exhausted, prometheus.GaugeValue, float64(spent[c]), c)
			}
			stats := budgets.Stats()
			ch <- prometheus.MustNewConstMetric(callersMax, prometheus.GaugeValue, float64(stats.Max))
			ch <- prometheus.MustNewConstMetric(evicted, prometheus.CounterValue, float64(stats.Evicted))
			ch <- prometheus.MustNewConstMetric(refused, prometheus.CounterValue, float64(stats.Refused))
		}},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cosell_trigger_subscriptions", Help: "Sessions subscribed to trigger resources."},
			func() float64 { return float64(subscriptions()) }),
	)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// ObserveUpstream counts one upstream exchange (status 0 when there was no
// reply). Caller-owned connections are counted together per connector
// (ConnectionLabel).
func (m *Metrics) ObserveUpstream(connection string, status int, waited time.Duration) {
	label := ConnectionLabel(connection)
	m.upstreamCalls.WithLabelValues(label, statusLabel(status)).Inc()
	m.budgetWait.WithLabelValues(label).Observe(waited.Seconds())
}

// statusLabel keeps the status label to the HTTP status codes (0 for no
// reply, "other" for anything outside 100-599).
func statusLabel(status int) string {
	if status == 0 || (status >= 100 && status <= 599) {
		return strconv.Itoa(status)
	}
	return "other"
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
