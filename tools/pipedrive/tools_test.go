package pipedrive_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// harness is an MCP client talking in process to a server whose Pipedrive
// tools call the sandbox over real HTTP.
type harness struct {
	*toolstest.Client
	sandbox *sandbox.Server
	budgets *throttle.Registry
}

func newHarness(t *testing.T, policy tools.Policy) *harness {
	t.Helper()
	sb := sandbox.New(sandbox.Options{})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	budgets := throttle.NewRegistry(throttle.Config{Limit: 100})
	pc := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL),
		pd.WithHTTPClient(&http.Client{Transport: httpx.Chain(budgets.Budget(pdtools.Toolset), http.DefaultTransport)}))
	reg := tools.NewRegistry()
	reg.Add(tools.ThrottleStatusTool(budgets))
	reg.Add(pdtools.Tools(pdtools.Static(pc))...)
	return &harness{Client: toolstest.New(t, reg, policy, budgets), sandbox: sb, budgets: budgets}
}

func (h *harness) call(name string, args map[string]any, out any) *mcp.CallToolResult {
	h.T.Helper()
	return h.Call(name, args, out)
}

func (h *harness) callErr(name string, args map[string]any) tools.Error {
	h.T.Helper()
	return h.CallErr(name, args)
}

func text(res *mcp.CallToolResult) string { return toolstest.Text(res) }

// The agent story of the issue: find the deal for an organization, read it
// with names, move it, lose it with a reason, log a follow-up.
func TestAgentWorksADealEndToEnd(t *testing.T) {
	h := newHarness(t, tools.Policy{})

	var found pdtools.SearchResult
	h.call("pipedrive_search_deals", map[string]any{"term": "Contoso"}, &found)
	require.NotEmpty(t, found.Deals, "a search for the organization finds its deals")
	var target pdtools.SearchHit
	for _, d := range found.Deals {
		assert.Contains(t, strings.ToLower(d.Title+" "+d.OrgName), "contoso")
		if d.Status == "open" && target.ID == 0 {
			target = d
		}
	}
	require.NotZero(t, target.ID, "an open Contoso deal exists in the seed")

	var deal pdtools.Deal
	h.call("pipedrive_get_deal", map[string]any{"deal_id": target.ID}, &deal)
	assert.Equal(t, target.ID, deal.ID)
	assert.NotEmpty(t, deal.StageName)
	assert.NotEmpty(t, deal.PipelineName)
	assert.NotEmpty(t, deal.OwnerName)
	assert.Equal(t, "Contoso Ltd", deal.OrgName)

	var pipes pdtools.Pipelines
	h.call("pipedrive_list_pipelines", nil, &pipes)
	var next pdtools.PipelineStage
	for _, p := range pipes.Pipelines {
		if p.ID != deal.PipelineID {
			continue
		}
		for _, st := range p.Stages {
			if st.ID != deal.StageID {
				next = st
				break
			}
		}
	}
	require.NotZero(t, next.ID)

	var moved pdtools.Deal
	h.call("pipedrive_update_deal_stage", map[string]any{"deal_id": deal.ID, "pipeline_id": deal.PipelineID, "stage_id": next.ID, "expected_close_date": "2027-03-31"}, &moved)
	assert.Equal(t, next.ID, moved.StageID)
	assert.Equal(t, next.Name, moved.StageName)
	assert.Equal(t, "2027-03-31", moved.ExpectedCloseDate)

	var lost pdtools.Deal
	h.call("pipedrive_update_deal_status", map[string]any{"deal_id": deal.ID, "status": "lost", "lost_reason": "Chose a competitor"}, &lost)
	assert.Equal(t, "lost", lost.Status)
	assert.Equal(t, "Chose a competitor", lost.LostReason)
	assert.NotEmpty(t, lost.LostTime)

	var act pdtools.Activity
	h.call("pipedrive_add_activity", map[string]any{"type": "call", "subject": "Debrief the loss with Contoso", "due_date": "2026-12-01", "due_time": "09:30", "duration": "00:30", "deal_id": deal.ID}, &act)
	assert.NotZero(t, act.ID)
	assert.Equal(t, deal.ID, act.DealID)
	assert.Equal(t, "call", act.Type)

	// The upstream state really changed.
	var reread pdtools.Deal
	h.call("pipedrive_get_deal", map[string]any{"deal_id": deal.ID}, &reread)
	assert.Equal(t, "lost", reread.Status)
	assert.Equal(t, next.ID, reread.StageID)
}

// Bad arguments are refused before any upstream call.
// TestReferenceDataExpiresOnTheClientClock: pipelines and stages are
// trusted for ten minutes of the client's clock, then loaded again.
func TestReferenceDataExpiresOnTheClientClock(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	sb := sandbox.New(sandbox.Options{Clock: fc})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	pc := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL), pd.WithClock(fc))
	reg := tools.NewRegistry()
	reg.Add(pdtools.Tools(pdtools.Static(pc))...)
	c := toolstest.New(t, reg, tools.Policy{}, nil)

	var first, again pdtools.Pipelines
	c.Call("pipedrive_list_pipelines", nil, &first)
	require.NotEmpty(t, first.Pipelines)
	loaded := sb.RequestCount()

	fc.Advance(10*time.Minute - time.Second)
	c.Call("pipedrive_list_pipelines", nil, &again)
	assert.Equal(t, first, again)
	assert.Equal(t, loaded, sb.RequestCount(), "still fresh: no upstream call")

	fc.Advance(time.Second)
	c.Call("pipedrive_list_pipelines", nil, &again)
	assert.Equal(t, first, again)
	assert.Equal(t, 2*loaded, sb.RequestCount(), "ten minutes old: loaded again")
}

func TestValidationSpendsNoUpstreamCalls(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	// Warm the reference cache (pipelines, stages, users, activity types).
	h.call("pipedrive_list_pipelines", nil, &pdtools.Pipelines{})
	h.callErr("pipedrive_add_activity", map[string]any{"type": "nonsense", "subject": "x"})
	before := h.sandbox.RequestCount()

	cases := []struct {
		tool  string
		args  map[string]any
		field string
		msg   string
	}{
		{"pipedrive_update_deal_stage", map[string]any{"deal_id": 1, "pipeline_id": 2, "stage_id": 3}, "stage_id", "belongs to pipeline 1"},
		{"pipedrive_update_deal_stage", map[string]any{"deal_id": 1, "pipeline_id": 1, "stage_id": 3, "expected_close_date": "31/12/2026"}, "expected_close_date", "YYYY-MM-DD"},
		{"pipedrive_update_deal_status", map[string]any{"deal_id": 1, "status": "won", "lost_reason": "price"}, "lost_reason", "only be given with status lost"},
		{"pipedrive_update_deal_status", map[string]any{"deal_id": 1, "status": "closed"}, "status", ""},
		{"pipedrive_add_deal", map[string]any{"title": "X", "pipeline_id": 1, "stage_id": 8}, "stage_id", "belongs to pipeline 2"},
		{"pipedrive_add_deal", map[string]any{"title": "X", "expected_close_date": "2026-02-30"}, "expected_close_date", "YYYY-MM-DD"},
		{"pipedrive_add_deal", map[string]any{"value": 10}, "", "title"},
		{"pipedrive_add_deal", map[string]any{"title": "X", "colour": "red"}, "", "colour"},
		{"pipedrive_add_activity", map[string]any{"type": "call", "subject": "x", "due_time": "9:30"}, "due_time", ""},
		{"pipedrive_add_activity", map[string]any{"type": "carrier-pigeon", "subject": "x"}, "type", "unknown activity type"},
		{"pipedrive_list_deals", map[string]any{"updated_since": "last tuesday"}, "updated_since", "RFC 3339"},
		{"pipedrive_list_deals", map[string]any{"limit": "ten"}, "limit", ""},
		{"pipedrive_get_deal", map[string]any{"deal_id": 1.5}, "deal_id", ""},
		{"pipedrive_search_deals", map[string]any{"term": "a"}, "term", ""},
	}
	for _, c := range cases {
		e := h.callErr(c.tool, c.args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%s %v: %s", c.tool, c.args, e.Message)
		if c.field != "" {
			assert.Equal(t, c.field, e.Field, "%s %v: %s", c.tool, c.args, e.Message)
		}
		assert.Contains(t, e.Message, c.msg, "%s %v", c.tool, c.args)
	}
	assert.Equal(t, before, h.sandbox.RequestCount(), "validation failures must not reach the upstream")
}

func TestUpstreamErrorsAreMapped(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	e := h.callErr("pipedrive_get_deal", map[string]any{"deal_id": 987654})
	assert.Equal(t, tools.CodeNotFound, e.Code)
	assert.Contains(t, e.Message, "not found")
	e = h.callErr("pipedrive_get_stage", map[string]any{"stage_id": 987654})
	assert.Equal(t, tools.CodeNotFound, e.Code)
}

func TestDeprecatedToolsAreHiddenButCallable(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	list, err := h.MCP.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	names := map[string]bool{}
	for _, tl := range list.Tools {
		names[tl.Name] = true
		assert.True(t, len(tl.RawOutputSchema) > 0 || tl.OutputSchema.Type == "object", tl.Name)
	}
	assert.True(t, names["pipedrive_add_deal"])
	assert.True(t, names["throttle_status"])
	assert.False(t, names["pipedrive_add_deal_deprecated"])
	assert.False(t, names["pipedrive_update_deal_stage_deprecated"])

	var d pdtools.Deal
	h.call("pipedrive_add_deal_deprecated", map[string]any{"title": "Legacy script deal", "stage_id": 9}, &d)
	assert.Equal(t, int64(9), d.StageID)
	assert.Equal(t, int64(2), d.PipelineID, "pipeline follows the stage")
	var moved pdtools.Deal
	h.call("pipedrive_update_deal_stage_deprecated", map[string]any{"deal_id": d.ID, "stage_id": 10}, &moved)
	assert.Equal(t, "Co-sell Proposal", moved.StageName)

	shown := newHarness(t, tools.Policy{IncludeDeprecated: true})
	list, err = shown.MCP.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	var all []string
	for _, tl := range list.Tools {
		all = append(all, tl.Name)
	}
	assert.Contains(t, all, "pipedrive_add_deal_deprecated")
}

func TestReadOnlyAndToolsetsAreEnforcedAtCallTime(t *testing.T) {
	h := newHarness(t, tools.Policy{ReadOnly: true})
	list, err := h.MCP.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	for _, tl := range list.Tools {
		assert.True(t, *tl.Annotations.ReadOnlyHint, "%s listed in read-only mode", tl.Name)
	}
	before := h.sandbox.RequestCount()
	e := h.callErr("pipedrive_update_deal_status", map[string]any{"deal_id": 1, "status": "won"})
	assert.Equal(t, tools.CodeForbidden, e.Code)
	assert.Contains(t, e.Message, "read-only")
	assert.Equal(t, before, h.sandbox.RequestCount())
	var deal pdtools.Deal
	h.call("pipedrive_get_deal", map[string]any{"deal_id": 1}, &deal)

	off := newHarness(t, tools.Policy{Toolsets: []string{"partnercenter"}})
	e = off.callErr("pipedrive_get_deal", map[string]any{"deal_id": 1})
	assert.Equal(t, tools.CodeForbidden, e.Code)
	var st tools.ThrottleStatus
	off.call("throttle_status", nil, &st) // the server toolset is always on
}

func TestListDealsPagesAndFilters(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	seen := map[int64]bool{}
	cursor := ""
	pages := 0
	for {
		args := map[string]any{"pipeline_id": 1, "status": "open", "limit": 25}
		if cursor != "" {
			args["cursor"] = cursor
		}
		var page pdtools.DealList
		h.call("pipedrive_list_deals", args, &page)
		pages++
		for _, d := range page.Deals {
			assert.False(t, seen[d.ID], "deal %d returned twice", d.ID)
			seen[d.ID] = true
			assert.Equal(t, "open", d.Status)
			assert.Equal(t, "Sales", d.PipelineName)
			assert.NotEmpty(t, d.StageName)
		}
		if !page.HasMore {
			assert.Empty(t, page.NextCursor)
			break
		}
		cursor = page.NextCursor
		require.Less(t, pages, 50)
	}
	assert.Greater(t, pages, 1, "enough open Sales deals to page")
	assert.NotEmpty(t, seen)
}

func TestResultsCarryBudgetMeta(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	res := h.call("pipedrive_get_deal", map[string]any{"deal_id": 1}, &pdtools.Deal{})
	require.NotNil(t, res.Meta)
	raw, err := json.Marshal(res.Meta.AdditionalFields["budget"])
	require.NoError(t, err)
	var st tools.Budget
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.Equal(t, 100, st.Limit)
	assert.Equal(t, st.Limit-st.Used, st.Remaining)
	assert.Equal(t, h.sandbox.RequestCount(), st.Used, "every upstream request was counted")
}

func TestDealReadsShowTheNextActivity(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var d pdtools.Deal
	h.call("pipedrive_add_deal", map[string]any{"title": "Northwind — next step", "pipeline_id": 1}, &d)
	var got pdtools.Deal
	h.call("pipedrive_get_deal", map[string]any{"deal_id": d.ID}, &got)
	assert.Zero(t, got.NextActivityID, "a new deal has no next step")

	var act pdtools.Activity
	h.call("pipedrive_add_activity", map[string]any{"type": "meeting", "subject": "Scoping", "deal_id": d.ID, "due_date": "2027-02-01"}, &act)
	h.call("pipedrive_get_deal", map[string]any{"deal_id": d.ID}, &got)
	assert.Equal(t, act.ID, got.NextActivityID)

	var list pdtools.DealList
	h.call("pipedrive_list_deals", map[string]any{"pipeline_id": 1, "status": "open", "limit": 500}, &list)
	var found bool
	for _, row := range list.Deals {
		if row.ID == d.ID {
			found = true
			assert.Equal(t, act.ID, row.NextActivityID)
		}
	}
	assert.True(t, found)
}
