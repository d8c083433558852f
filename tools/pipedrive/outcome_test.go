package pipedrive_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// The faults and the marker are toolstest's.
type fault = toolstest.Fault

const (
	noFault    = toolstest.NoFault
	garbage    = toolstest.Garbage
	emptyBody  = toolstest.EmptyBody
	badGateway = toolstest.BadGateway
	hang       = toolstest.Hang
	marker     = toolstest.Marker
)

// faultHarness runs the Pipedrive tools against a faulty upstream; direct
// reads the sandbox with no fault and no budget, to check its state.
type faultHarness struct {
	*toolstest.Client
	direct *pd.Client
	budget *throttle.Budget
}

func newFaultHarness(t *testing.T, f fault, method, path string) *faultHarness {
	t.Helper()
	up := &toolstest.FaultyUpstream{T: t, Sandbox: sandbox.New(sandbox.Options{}), Fault: f, Release: make(chan struct{}),
		Match:       func(r *http.Request) bool { return r.Method == method && r.URL.Path == path },
		GarbageBody: `{"success":true,"data":{"id":`}
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(up.Release) }) // runs before ts.Close
	// Interactive calls never wait for budget: an exhausted one refuses at once.
	budgets := throttle.NewRegistry(throttle.Config{Limit: 100, MaxWait: -1})
	hc := &http.Client{Transport: httpx.Chain(budgets.Budget(pdtools.Toolset), http.DefaultTransport)}
	if f == hang {
		// Short, as the caches are warm by then: the create is the only call.
		hc.Timeout = time.Second
	}
	client := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL), pd.WithHTTPClient(hc))
	reg := tools.NewRegistry()
	reg.Add(pdtools.Tools(pdtools.Static(client))...)
	return &faultHarness{
		Client: toolstest.New(t, reg, tools.Policy{IncludeDeprecated: true}, budgets),
		direct: pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL)),
		budget: budgets.Budget(pdtools.Toolset),
	}
}

// exhaust spends the whole budget, so that the next call is refused before
// anything is sent.
func (h *faultHarness) exhaust(t *testing.T) {
	t.Helper()
	ctx := throttle.WithPriority(context.Background(), throttle.Interactive)
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "the budget never ran out")
		if h.budget.Acquire(ctx) != nil {
			return
		}
	}
}

// countDeals returns how many deals the sandbox has with this title.
func (h *faultHarness) countDeals(t *testing.T, title string) int {
	t.Helper()
	deals, _, err := h.direct.ListDeals(context.Background(), pd.ListDealsParams{SortBy: "id", SortDirection: "desc", Limit: 100})
	require.NoError(t, err)
	n := 0
	for _, d := range deals {
		if d.Title == title {
			n++
		}
	}
	return n
}

// countActivities returns how many activities of the deal have this subject.
func (h *faultHarness) countActivities(t *testing.T, dealID int64, subject string) int {
	t.Helper()
	acts, _, err := h.direct.ListActivities(context.Background(), pd.ListActivitiesParams{DealID: dealID, Limit: 500})
	require.NoError(t, err)
	n := 0
	for _, a := range acts {
		if a.Subject == subject {
			n++
		}
	}
	return n
}

// issue finding: duplicate creates — every Pipedrive create whose request
// reached Pipedrive without a trustworthy answer is outcome_unknown (never
// "try again") and tells how to check; exactly one record exists
// upstream. A create refused before anything was sent is not
// outcome_unknown, and nothing exists.
func TestCreatesWithUnknownOutcome(t *testing.T) {
	type createTool struct {
		name, method, path string
		// args of a create titled title, for the harness h.
		args func(h *faultHarness, title string) map[string]any
		// count returns how many records titled title exist.
		count func(t *testing.T, h *faultHarness, args map[string]any, title string) int
		check string // what the outcome_unknown message tells to do
	}
	dealArgs := func(_ *faultHarness, title string) map[string]any { return map[string]any{"title": title} }
	countDeals := func(t *testing.T, h *faultHarness, _ map[string]any, title string) int { return h.countDeals(t, title) }
	createTools := []createTool{
		{name: "pipedrive_add_deal", method: http.MethodPost, path: "/api/v2/deals", args: dealArgs, count: countDeals, check: "pipedrive_search_deals"},
		{name: "pipedrive_add_deal_deprecated", method: http.MethodPost, path: "/api/v2/deals", args: dealArgs, count: countDeals, check: "pipedrive_search_deals"},
		{name: "pipedrive_add_activity", method: http.MethodPost, path: "/api/v2/activities",
			args: func(h *faultHarness, subject string) map[string]any {
				deals, _, err := h.direct.ListDeals(context.Background(), pd.ListDealsParams{Limit: 1})
				require.NoError(h.T, err)
				require.NotEmpty(h.T, deals)
				return map[string]any{"type": "call", "subject": subject, "deal_id": deals[0].ID}
			},
			count: func(t *testing.T, h *faultHarness, args map[string]any, subject string) int {
				return h.countActivities(t, args["deal_id"].(int64), subject)
			},
			check: "activities of its deal"},
	}
	cases := []struct {
		fault   fault
		refused bool // the budget is exhausted before the create
		code    string
		records int
	}{
		{fault: garbage, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: emptyBody, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: badGateway, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: hang, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: noFault, refused: true, code: tools.CodeThrottled, records: 0},
	}
	for _, tool := range createTools {
		for _, c := range cases {
			name := string(c.fault)
			if c.refused {
				name = "refused by the budget before sending"
			}
			t.Run(tool.name+"/"+name, func(t *testing.T) {
				h := newFaultHarness(t, c.fault, tool.method, tool.path)
				// A first create warms the tool's caches (and is held to
				// the full output schema by the harness).
				warm := tool.args(h, "warm-up "+tool.name)
				h.Call(tool.name, warm, &map[string]any{})
				require.Equal(t, 1, tool.count(t, h, warm, "warm-up "+tool.name))
				if c.refused {
					h.exhaust(t)
				}

				title := fmt.Sprintf("%s %s %s", marker, tool.name, c.fault)
				args := tool.args(h, title)
				e := h.CallErr(tool.name, args)
				t.Logf("%s: %s", e.Code, e.Message)
				assert.Equal(t, c.code, e.Code, e.Message)
				assert.Equal(t, c.records, tool.count(t, h, args, title), "records upstream")
				assert.NotContains(t, e.Message, "try again")
				assert.Empty(t, e.RequestID, "Pipedrive has no idempotency key")
				if c.code == tools.CodeOutcomeUnknown {
					assert.Contains(t, e.Message, "Do not retry blindly")
					assert.Contains(t, e.Message, tool.check)
				} else {
					assert.NotContains(t, strings.ToLower(e.Message), "may or may not")
				}
			})
		}
	}
}
