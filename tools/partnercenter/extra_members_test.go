package partnercenter_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// upstreamReferral carries members the Go model does not declare, at the top level and nested.
const upstreamReferral = `{"id":"r1","name":"Contoso","status":"Active","substatus":"Accepted","direction":"Outgoing",
 "createdDateTime":"2026-09-01T00:00:00Z","eTag":"\"e1\"","solutionArea":"AI Business Solutions",
 "partnerRole":{"name":"Services"},
 "customerProfile":{"name":"Contoso","address":{"country":"US"},"crmAccountId":"A-1"},
 "details":{"dealValue":5,"currency":"USD","estimatedSeats":40},
 "registrations":[{"id":"g1","status":"ReviewPending","reviewer":"msft"}]}`

// Full output (partnercenter_get_referral, list with full: true) keeps every member the
// upstream returned; compact rows stay compact.
func TestFullOutputKeepsUndeclaredMembers(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch strings.TrimRight(r.URL.Path, "/") {
		case "/v1.0/engagements/referrals/r1":
			_, _ = w.Write([]byte(upstreamReferral))
		case "/v1.0/engagements/referrals":
			_, _ = w.Write([]byte(`{"@odata.context":"ctx","value":[` + upstreamReferral + `]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	budgets := throttle.NewRegistry(throttle.Config{Limit: 100})
	client := pc.New(pc.StaticToken("t"), pc.WithBaseURL(ts.URL+"/v1.0/engagements"))
	reg := tools.NewRegistry()
	reg.Add(pctools.Tools(pctools.Static(client))...)
	h := toolstest.New(t, reg, tools.Policy{}, budgets)

	check := func(ref map[string]any) {
		t.Helper()
		assert.Equal(t, "r1", ref["id"])
		assert.Equal(t, "Active", ref["status"], "declared members still decode")
		assert.Equal(t, "AI Business Solutions", ref["solutionArea"])
		assert.Equal(t, map[string]any{"name": "Services"}, ref["partnerRole"])
		cp, _ := ref["customerProfile"].(map[string]any)
		assert.Equal(t, "A-1", cp["crmAccountId"])
		d, _ := ref["details"].(map[string]any)
		assert.Equal(t, 40.0, d["estimatedSeats"])
		assert.Equal(t, 5.0, d["dealValue"])
		regs, _ := ref["registrations"].([]any)
		require.Len(t, regs, 1)
		assert.Equal(t, "msft", regs[0].(map[string]any)["reviewer"])
	}

	var got map[string]any
	h.Call("partnercenter_get_referral", map[string]any{"id": "r1"}, &got)
	ref, _ := got["referral"].(map[string]any)
	require.NotNil(t, ref, "%v", got)
	check(ref)

	var full map[string]any
	h.Call("partnercenter_list_referrals", map[string]any{"full": true}, &full)
	items, _ := full["full"].([]any)
	require.Len(t, items, 1, "%v", full)
	check(items[0].(map[string]any))

	var rows map[string]any
	h.Call("partnercenter_list_referrals", map[string]any{}, &rows)
	list, _ := rows["referrals"].([]any)
	require.Len(t, list, 1, "%v", rows)
	assert.NotContains(t, list[0], "solutionArea", "compact rows stay compact")
}
