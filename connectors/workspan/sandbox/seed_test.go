package sandbox

import (
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func snapshot(s *Server) map[string]map[string]any {
	s.mu.Lock()
	ids := make([]string, 0, len(s.objects))
	for id := range s.objects {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	out := map[string]map[string]any{}
	for _, id := range ids {
		out[id], _ = s.Object(id)
	}
	return out
}

func TestSeedIsDeterministic(t *testing.T) {
	now := clock.NewFake(testNow)
	a, b, c := New(Options{Clock: now, Seed: 7}), New(Options{Clock: now, Seed: 7}), New(Options{Clock: now, Seed: 8})
	for _, s := range []*Server{a, b, c} {
		t.Cleanup(s.Close)
	}
	assert.Equal(t, snapshot(a), snapshot(b))
	assert.NotEqual(t, snapshot(a), snapshot(c))
}

func TestSeedContents(t *testing.T) {
	s := New(Options{Clock: clock.NewFake(testNow)})
	t.Cleanup(s.Close)
	docs := snapshot(s)
	idRE := regexp.MustCompile(`^[1-9][0-9]{17}$`)
	kinds := map[string]int{}
	stagesSeen := map[string]bool{}
	withCRM, linked, future, noAmount := 0, 0, 0, 0
	for id, d := range docs {
		require.Regexp(t, idRE, id)
		kinds[d["object_type"].(string)]++
		if d["object_type"] != kindOpportunity {
			continue
		}
		stagesSeen[d["stage"].(string)] = true
		assert.Contains(t, d["name"], " — ")
		assert.NotEmpty(t, d["account_name"])
		assert.NotEmpty(t, d["partner"])
		assert.Regexp(t, `^[A-Z]{3}$`, d["currency"])
		closeAt, err := time.Parse(dateLayout, d["close_date"].(string))
		require.NoError(t, err)
		if closeAt.After(testNow) {
			future++
			assert.False(t, isClosed(d["stage"].(string)), "open deals close in the future")
		}
		if _, ok := d["external_ids"].(map[string]any)[fieldCRMOpportunityID]; ok {
			withCRM++
		}
		if d["partner_center"] != nil {
			linked++
		}
		if d["amount"] == nil {
			noAmount++
		}
	}
	assert.Equal(t, map[string]int{kindOpportunity: 40, kindAccount: 15}, kinds)
	assert.Len(t, stagesSeen, 6)
	assert.Equal(t, 20, withCRM)
	assert.Positive(t, linked)
	assert.Positive(t, future)
	assert.Positive(t, noAmount)
	assert.Len(t, s.reports, 12)
}
