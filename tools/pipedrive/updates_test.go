package pipedrive_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// today is the fake clock's date in the tests below.
var today = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// requestLog notes "METHOD path" of every request that reaches the sandbox.
type requestLog struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.seen = append(l.seen, r.Method+" "+r.URL.Path)
	l.mu.Unlock()
	l.next.ServeHTTP(w, r)
}

// since returns the requests after the first n.
func (l *requestLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen[n:])
}

func (l *requestLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// writes counts the PATCH, POST and DELETE requests among reqs.
func writes(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if !strings.HasPrefix(r, http.MethodGet+" ") {
			n++
		}
	}
	return n
}

// dated is an MCP client of the Pipedrive tools over a sandbox whose clock,
// shared with the client, stands at today; every request is logged.
type dated struct {
	*toolstest.Client
	pd  *pd.Client
	log *requestLog
}

func newDated(t *testing.T) *dated {
	t.Helper()
	fc := clock.NewFake(today)
	log := &requestLog{next: sandbox.New(sandbox.Options{Clock: fc, Burst: 1 << 20})}
	ts := httptest.NewServer(log)
	t.Cleanup(ts.Close)
	c := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL), pd.WithClock(fc))
	reg := tools.NewRegistry()
	reg.Add(pdtools.Tools(pdtools.Static(c))...)
	return &dated{Client: toolstest.New(t, reg, tools.Policy{}, nil), pd: c, log: log}
}

// The request: change the value and expected close date of a
// deal, tag it with a referral id, and clear what can be cleared.
func TestUpdateDeal(t *testing.T) {
	h := newDated(t)
	var d pdtools.Deal
	h.Call("pipedrive_add_deal", map[string]any{"title": "Fabrikam — data estate", "pipeline_id": 2, "value": 80000, "currency": "USD"}, &d)

	var got pdtools.Deal
	h.Call("pipedrive_update_deal", map[string]any{"deal_id": d.ID, "value": 125000, "expected_close_date": "2026-06-30",
		"custom_fields": map[string]any{"Partner Center referral ID": "7c1e0e4a-55b1-4d8e-9a7e-3f1f0c2d9b10", "co-sell motion": "Joint"}}, &got)
	assert.Equal(t, 125000.0, got.Value)
	assert.Equal(t, "2026-06-30", got.ExpectedCloseDate)
	assert.Equal(t, d.StageID, got.StageID, "the stage stays")
	assert.Equal(t, "Partner Co-sell", got.PipelineName)
	assert.Equal(t, "7c1e0e4a-55b1-4d8e-9a7e-3f1f0c2d9b10", got.CustomFields["Partner Center referral ID"])
	assert.Equal(t, "Joint", got.CustomFields["Co-sell motion"])

	var read pdtools.Deal
	h.Call("pipedrive_get_deal", map[string]any{"deal_id": d.ID}, &read)
	read.NextActivityID = 0 // only reads carry it
	assert.Equal(t, got, read, "the result is the deal as pipedrive_get_deal returns it")

	got = pdtools.Deal{} // a result decodes into a fresh value: absent fields stay absent
	h.Call("pipedrive_update_deal", map[string]any{"deal_id": d.ID, "value": 0, "probability": 0, "label_ids": []any{5, 2, 5},
		"owner_id": 3, "title": "  Fabrikam — data estate (phase 2) ", "custom_fields": map[string]any{"Co-sell motion": nil}}, &got)
	assert.Zero(t, got.Value, "0 is a value")
	require.NotNil(t, got.Probability)
	assert.Zero(t, *got.Probability)
	assert.Equal(t, []int64{2, 5}, got.LabelIDs)
	assert.Equal(t, int64(3), got.OwnerID)
	assert.Equal(t, "Daniel Okafor", got.OwnerName)
	assert.Equal(t, "Fabrikam — data estate (phase 2)", got.Title)
	assert.NotContains(t, got.CustomFields, "Co-sell motion", "null clears a custom field")
	assert.Contains(t, got.CustomFields, "Partner Center referral ID")

	got = pdtools.Deal{}
	h.Call("pipedrive_update_deal", map[string]any{"deal_id": d.ID, "clear": []any{"probability"}, "label_ids": []any{}}, &got)
	assert.Nil(t, got.Probability)
	assert.Empty(t, got.LabelIDs)
	assert.Equal(t, "2026-06-30", got.ExpectedCloseDate, "what is not given stays")

	raw, err := h.pd.GetDeal(context.Background(), d.ID)
	require.NoError(t, err)
	assert.Nil(t, raw.Probability)
	assert.Empty(t, raw.LabelIDs)
	assert.Zero(t, raw.Value)
}

// Bad arguments are refused before the write: no PATCH reaches Pipedrive.
func TestUpdateDealRefusesBadArguments(t *testing.T) {
	h := newDated(t)
	// Warm the caches the checks use (reference data, custom fields).
	h.Call("pipedrive_list_pipelines", nil, &pdtools.Pipelines{})
	h.Call("pipedrive_add_deal", map[string]any{"title": "Warm-up", "custom_fields": map[string]any{"Licensed seats": 10}}, &pdtools.Deal{})
	before := h.log.len()

	cases := []struct {
		args  map[string]any
		field string
		msg   string
	}{
		{map[string]any{"deal_id": 1}, "", "at least one field"},
		{map[string]any{"deal_id": 1, "title": "   "}, "title", "blank"},
		{map[string]any{"deal_id": 1, "expected_close_date": "2026-02-30"}, "expected_close_date", "YYYY-MM-DD"},
		{map[string]any{"deal_id": 1, "probability": 20, "clear": []any{"probability"}}, "clear", "both given and cleared"},
		{map[string]any{"deal_id": 1, "probability": 101}, "probability", ""},
		{map[string]any{"deal_id": 1, "value": -5}, "value", ""},
		{map[string]any{"deal_id": 1, "currency": "usd"}, "currency", ""},
		{map[string]any{"deal_id": 1, "clear": []any{"title"}}, "clear/0", ""},
		{map[string]any{"deal_id": 1, "label_ids": []any{0}}, "label_ids/0", ""},
		{map[string]any{"deal_id": 1, "stage_id": 3}, "", "stage_id"},
		{map[string]any{"deal_id": 1, "custom_fields": map[string]any{"Referral": "x"}}, "custom_fields", "Partner Center referral ID"},
		{map[string]any{"deal_id": 1, "custom_fields": map[string]any{"Co-sell motion": "Solo"}}, "custom_fields", "Partner-led, Microsoft-led, Joint"},
	}
	for _, c := range cases {
		e := h.CallErr("pipedrive_update_deal", c.args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%v: %s", c.args, e.Message)
		assert.Equal(t, c.field, e.Field, "%v: %s", c.args, e.Message)
		assert.Contains(t, e.Message, c.msg, "%v", c.args)
	}
	assert.Empty(t, h.log.since(before), "refused without a call")

	// An owner the cached users do not know costs one reload, never a write.
	e := h.CallErr("pipedrive_update_deal", map[string]any{"deal_id": 1, "owner_id": 42})
	assert.Equal(t, tools.CodeInvalidArgument, e.Code)
	assert.Equal(t, "owner_id", e.Field)
	assert.Contains(t, e.Message, "user 42 not found; users: 1 Alex Morgan, 2 Priya Natarajan")
	assert.Zero(t, writes(h.log.since(before)))
}

// Every "not found" names the record and where valid ids come from, for
// the record a call is about (not_found) and for one it links to
// (invalid_argument).
func TestNotFoundNamesTheRecordAndWhereToFindIt(t *testing.T) {
	h := newDated(t)
	cases := []struct {
		tool  string
		args  map[string]any
		code  string
		field string
		msg   string
	}{
		{"pipedrive_get_deal", map[string]any{"deal_id": 4242}, tools.CodeNotFound, "",
			"deal 4242 not found; find deals with pipedrive_search_deals or pipedrive_list_deals"},
		{"pipedrive_get_deal", map[string]any{"deal_id": 4242, "full": true}, tools.CodeNotFound, "", "deal 4242 not found"},
		{"pipedrive_update_deal", map[string]any{"deal_id": 4242, "value": 1}, tools.CodeNotFound, "", "deal 4242 not found; find deals"},
		{"pipedrive_update_deal_stage", map[string]any{"deal_id": 4242, "pipeline_id": 1, "stage_id": 2}, tools.CodeNotFound, "", "deal 4242 not found"},
		{"pipedrive_update_deal_status", map[string]any{"deal_id": 4242, "status": "won"}, tools.CodeNotFound, "", "deal 4242 not found"},
		{"pipedrive_update_deal_status", map[string]any{"deal_id": 4242, "status": "deleted"}, tools.CodeNotFound, "", "deal 4242 not found"},
		{"pipedrive_get_stage", map[string]any{"stage_id": 4242}, tools.CodeNotFound, "",
			"stage 4242 not found; pipedrive_list_pipelines lists every pipeline's stages"},
		{"pipedrive_update_activity", map[string]any{"activity_id": 4242, "done": true}, tools.CodeNotFound, "",
			"activity 4242 not found; find activities with pipedrive_list_activities"},
		{"pipedrive_update_deal", map[string]any{"deal_id": 1, "person_id": 999999}, tools.CodeInvalidArgument, "person_id",
			"person 999999 not found; find persons with pipedrive_search_persons"},
		{"pipedrive_update_deal", map[string]any{"deal_id": 1, "org_id": 999999}, tools.CodeInvalidArgument, "org_id",
			"organization 999999 not found; find organizations with pipedrive_search_organizations"},
		{"pipedrive_add_activity", map[string]any{"type": "call", "subject": "x", "deal_id": 999999}, tools.CodeInvalidArgument, "deal_id",
			"deal 999999 not found; find deals with"},
	}
	for _, c := range cases {
		e := h.CallErr(c.tool, c.args)
		assert.Equal(t, c.code, e.Code, "%s %v: %s", c.tool, c.args, e.Message)
		assert.Equal(t, c.field, e.Field, "%s %v", c.tool, c.args)
		assert.Contains(t, e.Message, c.msg, "%s %v", c.tool, c.args)
		assert.NotContains(t, e.Message, "Entity was not found", "%s %v", c.tool, c.args)
	}
}

// addActivities adds activities to deal dealID through the tools and
// returns their ids in order; each entry is a due date, with "done" to
// mark it done.
func addActivities(t *testing.T, h *dated, dealID int64, dues ...string) []int64 {
	t.Helper()
	ids := make([]int64, len(dues))
	for i, due := range dues {
		date, done := strings.CutSuffix(due, " done")
		var a pdtools.Activity
		h.Call("pipedrive_add_activity", map[string]any{"type": "task", "subject": fmt.Sprintf("Step %d", i+1), "deal_id": dealID,
			"due_date": date, "note": fmt.Sprintf("Note %d", i+1)}, &a)
		if done {
			h.Call("pipedrive_update_activity", map[string]any{"activity_id": a.ID, "done": true}, &a)
		}
		ids[i] = a.ID
	}
	return ids
}

func activityIDs(acts []pdtools.Activity) []int64 {
	out := make([]int64, len(acts))
	for i, a := range acts {
		out[i] = a.ID
	}
	return out
}

func TestListActivitiesOfADeal(t *testing.T) {
	h := newDated(t)
	var d pdtools.Deal
	h.Call("pipedrive_add_deal", map[string]any{"title": "Contoso — activity windows", "pipeline_id": 1}, &d)
	ids := addActivities(t, h, d.ID, "2026-03-10", "2026-02-20", "2026-03-02", "2026-02-25 done", "2026-03-01")
	upcoming, overdue, todays, done, yesterday := ids[0], ids[1], ids[2], ids[3], ids[4]

	var all pdtools.ActivityList
	h.Call("pipedrive_list_activities", map[string]any{"deal_id": d.ID}, &all)
	assert.Equal(t, []int64{overdue, done, yesterday, todays, upcoming}, activityIDs(all.Activities), "earliest due first")
	assert.False(t, all.HasMore)
	for _, a := range all.Activities {
		assert.Equal(t, d.ID, a.DealID)
		assert.Equal(t, "Alex Morgan", a.OwnerName)
		assert.Empty(t, a.Note, "compact rows")
		assert.Empty(t, a.DealTitle)
	}

	for _, c := range []struct {
		args map[string]any
		want []int64
	}{
		{map[string]any{"due": "overdue"}, []int64{overdue, yesterday}},
		{map[string]any{"due": "today"}, []int64{todays}},
		{map[string]any{"due": "upcoming"}, []int64{upcoming}},
		{map[string]any{"due": "overdue", "done": false}, []int64{overdue, yesterday}},
		{map[string]any{"done": true}, []int64{done}},
		{map[string]any{"done": false, "due": "today"}, []int64{todays}},
	} {
		c.args["deal_id"] = d.ID
		var got pdtools.ActivityList
		h.Call("pipedrive_list_activities", c.args, &got)
		assert.Equal(t, c.want, activityIDs(got.Activities), "%v", c.args)
		assert.False(t, got.HasMore, "%v", c.args)
	}

	var full pdtools.ActivityList
	h.Call("pipedrive_list_activities", map[string]any{"deal_id": d.ID, "due": "today", "full": true}, &full)
	require.Len(t, full.Activities, 1)
	assert.Equal(t, "Note 3", full.Activities[0].Note)
	assert.Equal(t, "Contoso — activity windows", full.Activities[0].DealTitle)
	assert.NotEmpty(t, full.Activities[0].AddTime)
}

// A due window over many activities pages like any list: every match
// once, pages possibly short, and at most a few upstream pages per call.
func TestListActivitiesDueWindowPages(t *testing.T) {
	h := newDated(t)
	ctx := context.Background()
	var want []int64
	for a, err := range paginateActivities(ctx, h.pd, pd.ListActivitiesParams{Done: new(bool), SortBy: "due_date", Limit: 500}) {
		require.NoError(t, err)
		if a.DueDate != "" && a.DueDate < today.Format(time.DateOnly) {
			want = append(want, a.ID)
		}
	}
	require.Greater(t, len(want), 4, "the seed has overdue activities")

	var got []int64
	cursor := ""
	for calls := 0; ; calls++ {
		require.Less(t, calls, 100)
		args := map[string]any{"due": "overdue", "limit": 4}
		if cursor != "" {
			args["cursor"] = cursor
		}
		before := h.log.len()
		var page pdtools.ActivityList
		h.Call("pipedrive_list_activities", args, &page)
		assert.LessOrEqual(t, len(page.Activities), 4)
		assert.LessOrEqual(t, len(h.log.since(before)), 3+3, "at most 3 list pages, plus reference data on the first call")
		for _, a := range page.Activities {
			assert.False(t, a.Done)
			got = append(got, a.ID)
		}
		if !page.HasMore {
			break
		}
		cursor = page.NextCursor
	}
	assert.Equal(t, want, got, "every overdue activity once, in due order")

	// Upcoming ones sort after every past one: with small pages a call
	// may scan its three pages without a match, and say so.
	var page pdtools.ActivityList
	before := h.log.len()
	h.Call("pipedrive_list_activities", map[string]any{"due": "upcoming", "limit": 1}, &page)
	assert.Empty(t, page.Activities)
	assert.True(t, page.HasMore)
	assert.NotEmpty(t, page.NextCursor)
	assert.Equal(t, []string{"GET /api/v2/activities", "GET /api/v2/activities", "GET /api/v2/activities"}, h.log.since(before))
}

// paginateActivities walks every page of the activity list.
func paginateActivities(ctx context.Context, c *pd.Client, p pd.ListActivitiesParams) func(func(pd.Activity, error) bool) {
	return func(yield func(pd.Activity, error) bool) {
		for {
			page, resp, err := c.ListActivities(ctx, p)
			if err != nil {
				yield(pd.Activity{}, err)
				return
			}
			for _, a := range page {
				if !yield(a, nil) {
					return
				}
			}
			if resp.NextCursor == "" {
				return
			}
			p.Cursor = resp.NextCursor
		}
	}
}

func TestListActivitiesRefusesBadArguments(t *testing.T) {
	h := newDated(t)
	before := h.log.len()
	for _, c := range []struct {
		args  map[string]any
		field string
		msg   string
	}{
		{map[string]any{"due": "overdue", "done": true}, "done", "not done"},
		{map[string]any{"due": "tomorrow"}, "due", ""},
		{map[string]any{"updated_since": "last week"}, "updated_since", "RFC 3339"},
		{map[string]any{"updated_since": "2026-03-01", "updated_until": "2026-02-01"}, "updated_until", "after updated_since"},
		{map[string]any{"limit": 501}, "limit", ""},
	} {
		e := h.CallErr("pipedrive_list_activities", c.args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%v: %s", c.args, e.Message)
		assert.Equal(t, c.field, e.Field, "%v", c.args)
		assert.Contains(t, e.Message, c.msg, "%v", c.args)
	}
	assert.Empty(t, h.log.since(before))
}

func TestUpdateActivity(t *testing.T) {
	h := newDated(t)
	var d pdtools.Deal
	h.Call("pipedrive_add_deal", map[string]any{"title": "Northwind — follow-up", "pipeline_id": 1}, &d)
	id := addActivities(t, h, d.ID, "2026-03-05")[0]

	var a pdtools.Activity
	h.Call("pipedrive_update_activity", map[string]any{"activity_id": id, "done": true}, &a)
	assert.True(t, a.Done)
	assert.Equal(t, "2026-03-02T12:00:00Z", a.DoneTime)
	assert.Equal(t, "Step 1", a.Subject, "what is not given stays")

	a = pdtools.Activity{}
	h.Call("pipedrive_update_activity", map[string]any{"activity_id": id, "done": false, "type": "meeting", "subject": "Workshop",
		"due_date": "2026-03-09", "due_time": "14:30", "duration": "01:30", "note": "Room 4", "user_id": 2}, &a)
	assert.False(t, a.Done)
	assert.Empty(t, a.DoneTime)
	assert.Equal(t, "meeting", a.Type)
	assert.Equal(t, "Workshop", a.Subject)
	assert.Equal(t, "2026-03-09", a.DueDate)
	assert.Equal(t, "14:30:00", a.DueTime)
	assert.Equal(t, "01:30:00", a.Duration)
	assert.Equal(t, "Room 4", a.Note)
	assert.Equal(t, "Priya Natarajan", a.OwnerName)

	before := h.log.len()
	for _, c := range []struct {
		args  map[string]any
		field string
		msg   string
	}{
		{map[string]any{"activity_id": id}, "", "at least one field"},
		{map[string]any{"activity_id": id, "type": "carrier-pigeon"}, "type", "known types: call, meeting"},
		{map[string]any{"activity_id": id, "subject": " "}, "subject", "blank"},
		{map[string]any{"activity_id": id, "due_date": "09/03/2026"}, "due_date", "YYYY-MM-DD"},
		{map[string]any{"activity_id": id, "due_time": "9:30"}, "due_time", ""},
		{map[string]any{"activity_id": id, "done": "yes"}, "done", ""},
	} {
		e := h.CallErr("pipedrive_update_activity", c.args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%v: %s", c.args, e.Message)
		assert.Equal(t, c.field, e.Field, "%v", c.args)
		assert.Contains(t, e.Message, c.msg, "%v", c.args)
	}
	assert.Empty(t, h.log.since(before), "refused without a call")
	e := h.CallErr("pipedrive_update_activity", map[string]any{"activity_id": id, "user_id": 77})
	assert.Equal(t, "user_id", e.Field)
	assert.Contains(t, e.Message, "user 77 not found; users: 1 Alex Morgan")
	assert.Zero(t, writes(h.log.since(before)))
}

// A full deal read carries what the connector's deal response does; a
// compact one is as before.
func TestFullDealReads(t *testing.T) {
	h := newDated(t)
	var d pdtools.Deal
	h.Call("pipedrive_add_deal", map[string]any{"title": "Woodgrove Bank — Copilot pilot", "pipeline_id": 1, "value": 40000, "person_id": 3, "owner_id": 2}, &d)
	ids := addActivities(t, h, d.ID, "2026-02-26 done", "2026-03-04", "2026-03-20")

	var compact pdtools.DetailedDeal
	h.Call("pipedrive_get_deal", map[string]any{"deal_id": d.ID}, &compact)
	assert.Nil(t, compact.Details)
	assert.Equal(t, ids[1], compact.NextActivityID)

	var full pdtools.DetailedDeal
	before := h.log.len()
	h.Call("pipedrive_get_deal", map[string]any{"deal_id": d.ID, "full": true}, &full)
	assert.Equal(t, compact.Deal, full.Deal, "full adds details only")
	require.NotNil(t, full.Details)
	det := full.Details
	assert.Equal(t, int64(1), det.CreatorID)
	assert.Equal(t, "Alex Morgan", det.CreatorName)
	assert.Equal(t, "priya.natarajan@treyresearch.net", det.OwnerEmail)
	assert.Equal(t, 4000.0, det.WeightedValue, "10% (the first stage's probability) of 40,000")
	assert.Equal(t, pdtools.DealCounts{Activities: 3, DoneActivities: 1, UndoneActivities: 2, Participants: 1, Followers: 1}, det.Counts)
	assert.Equal(t, &pdtools.ActivityBrief{ID: ids[1], Type: "task", Subject: "Step 2", DueDate: "2026-03-04"}, det.NextActivity)
	assert.Equal(t, &pdtools.ActivityBrief{ID: ids[0], Type: "task", Subject: "Step 1", DueDate: "2026-02-26"}, det.LastActivity)
	assert.NotEmpty(t, det.SmartBCCEmail)
	assert.Equal(t, []string{fmt.Sprintf("GET /api/v2/deals/%d", d.ID), "GET /api/v2/activities", "GET /v1/users"}, h.log.since(before),
		"the deal, its two activities in one call, the users once")

	h.Call("pipedrive_update_deal", map[string]any{"deal_id": d.ID, "probability": 75}, &pdtools.Deal{})
	before = h.log.len()
	full = pdtools.DetailedDeal{}
	h.Call("pipedrive_get_deal", map[string]any{"deal_id": d.ID, "full": true}, &full)
	assert.Equal(t, 30000.0, full.Details.WeightedValue, "the deal's own probability wins")
	assert.Len(t, h.log.since(before), 2, "users cached")

	var list pdtools.DealList
	h.Call("pipedrive_list_deals", map[string]any{"pipeline_id": 1, "status": "open", "limit": 100, "full": true}, &list)
	var row *pdtools.DetailedDeal
	for i := range list.Deals {
		require.NotNil(t, list.Deals[i].Details, "every full row has details")
		if list.Deals[i].ID == d.ID {
			row = &list.Deals[i]
		}
	}
	require.NotNil(t, row)
	assert.Equal(t, full.Details, row.Details)
	require.NotNil(t, row.Probability)
	assert.Equal(t, 75.0, *row.Probability)

	var compactList pdtools.DealList
	h.Call("pipedrive_list_deals", map[string]any{"pipeline_id": 1, "status": "open", "limit": 100}, &compactList)
	for _, r := range compactList.Deals {
		assert.Nil(t, r.Details, "compact rows as before")
		assert.Nil(t, r.Probability)
	}
}
