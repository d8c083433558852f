package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// series is one gathered series: its labels and its gauge or counter value.
type series struct {
	labels map[string]string
	value  float64
}

// cosellSeries gathers the series of every cosell_ family.
func cosellSeries(t *testing.T, m *Metrics) map[string][]series {
	t.Helper()
	families, err := m.reg.Gather()
	require.NoError(t, err)
	out := map[string][]series{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "cosell_") {
			continue
		}
		for _, mt := range f.GetMetric() {
			s := series{labels: map[string]string{}, value: mt.GetGauge().GetValue() + mt.GetCounter().GetValue()}
			for _, l := range mt.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			out[f.GetName()] = append(out[f.GetName()], s)
		}
	}
	return out
}

func TestConnectionLabel(t *testing.T) {
	assert.Equal(t, "pipedrive", ConnectionLabel("pipedrive"))
	assert.Equal(t, "pipedrive:caller", ConnectionLabel("pipedrive:0123456789ab"))
	assert.Equal(t, "partnercenter:caller", ConnectionLabel("partnercenter:0123456789ab"))
}

// issue finding 5: per-credential state bounded — 20,000 distinct caller
// credentials, each observed upstream (a refused 401 included), add a fixed
// number of series: caller connections are counted per connector, never
// per credential.
func TestSeriesBoundedUnderCredentialFlood(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	budgets := throttle.NewRegistry(throttle.Config{Limit: 5, Window: time.Minute, Clock: fc}, throttle.WithMaxConnections(1000))
	m := New(budgets, func() int { return 0 })
	own := budgets.Budget("pipedrive")
	require.NoError(t, own.Acquire(context.Background()))
	m.ObserveUpstream("pipedrive", 200, 0)
	before := cosellSeries(t, m)

	for i := range 20000 {
		name := fmt.Sprintf("pipedrive:%012x", i)
		if b, err := budgets.Get(name); err == nil {
			require.NoError(t, b.Acquire(context.Background()))
		}
		m.ObserveUpstream(name, 401, time.Millisecond)
		fc.Advance(10 * time.Millisecond)
	}
	after := cosellSeries(t, m)
	total := func(s map[string][]series) (n int) {
		for _, ms := range s {
			n += len(ms)
		}
		return n
	}
	t.Logf("cosell_ series: %d before, %d after 20,000 credentials", total(before), total(after))
	assert.LessOrEqual(t, total(after), total(before)+6, "one upstream status, one wait and the caller gauges")

	for name, ms := range after {
		for _, s := range ms {
			for k, v := range s.labels {
				assert.NotRegexp(t, `:[0-9a-f]{12}$`, v, "%s{%s} carries a credential's connection", name, k)
			}
		}
	}
	require.Len(t, after["cosell_caller_connections"], 1)
	assert.Equal(t, map[string]string{"connector": "pipedrive"}, after["cosell_caller_connections"][0].labels)
	assert.LessOrEqual(t, after["cosell_caller_connections"][0].value, 1000.0)
	assert.Positive(t, after["cosell_caller_connections_refused_total"][0].value)
	var calls float64
	for _, s := range after["cosell_upstream_requests_total"] {
		if l := s.labels; l["connection"] == "pipedrive:caller" && l["status"] == "401" {
			calls = s.value
		}
	}
	assert.Equal(t, 20000.0, calls, "every caller's exchange is still counted")
	require.Len(t, after["cosell_budget_remaining"], 1, "budget gauges only for the server's own connections")
	assert.Equal(t, map[string]string{"connection": "pipedrive"}, after["cosell_budget_remaining"][0].labels)
}
