package sandbox

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The deal and activity updates and the activity list, request and reply
// checked against the spec like TestSpecConformance's cases.
func TestUpdatesSpecConformance(t *testing.T) {
	doc, router := loadSpec(t, true)
	for _, item := range doc.Paths.Map() {
		if op := item.Patch; op != nil && op.OperationID == "updateActivity" {
			resp := op.Responses.Status(http.StatusOK)
			markNullable(resp.Value.Content.Get("application/json").Schema, activityNullable, map[*openapi3.Schema]bool{})
		}
	}
	cases := []specCase{
		{name: "update deal fields", method: "PATCH", path: "/deals/8", status: 200, body: map[string]any{
			"title": "Renamed", "value": 0, "currency": "EUR", "owner_id": 3, "org_id": 4, "person_id": 5,
			"expected_close_date": "2027-02-28", "probability": 40, "label_ids": []int{7, 9}}},
		{name: "update deal clear probability and labels", method: "PATCH", path: "/deals/8", status: 200, body: map[string]any{"probability": nil, "label_ids": []int{}}},
		{name: "update deal unknown owner", method: "PATCH", path: "/deals/8", status: 400, body: map[string]any{"owner_id": 99}},
		{name: "update deal unknown person", method: "PATCH", path: "/deals/8", status: 400, body: map[string]any{"person_id": 999999}},
		{name: "update deal unknown organization", method: "PATCH", path: "/deals/8", status: 400, body: map[string]any{"org_id": 999999}},
		{name: "update deal unknown stage", method: "PATCH", path: "/deals/8", status: 400, body: map[string]any{"stage_id": 99}},
		{name: "update deal probability out of range", method: "PATCH", path: "/deals/8", status: 400, body: map[string]any{"probability": 101}},
		{name: "update deal value as text", method: "PATCH", path: "/deals/8", status: 400, body: map[string]any{"value": "lots"}, specRejects: true},
		{name: "update deal labels not a list", method: "PATCH", path: "/deals/8", status: 400, body: map[string]any{"label_ids": 7}, specRejects: true},
		{name: "update activity", method: "PATCH", path: "/activities/5", status: 200, body: map[string]any{
			"subject": "Renamed call", "type": "meeting", "due_date": "2026-10-01", "due_time": "14:30", "duration": "1:30",
			"note": "Agenda attached", "owner_id": 2, "busy": true}},
		{name: "mark activity done", method: "PATCH", path: "/activities/5", status: 200, body: map[string]any{"done": true}},
		{name: "reopen activity", method: "PATCH", path: "/activities/5", status: 200, body: map[string]any{"done": false}},
		{name: "update activity links", method: "PATCH", path: "/activities/5", status: 200, body: map[string]any{"deal_id": 3, "person_id": 7, "org_id": 2}},
		{name: "update activity unknown", method: "PATCH", path: "/activities/999999", status: 404, body: map[string]any{"done": true}},
		{name: "update activity unknown type", method: "PATCH", path: "/activities/5", status: 400, body: map[string]any{"type": "fax"}},
		{name: "update activity unknown deal", method: "PATCH", path: "/activities/5", status: 400, body: map[string]any{"deal_id": 999999}},
		{name: "update activity unknown owner", method: "PATCH", path: "/activities/5", status: 400, body: map[string]any{"owner_id": 99}},
		{name: "update activity blank subject", method: "PATCH", path: "/activities/5", status: 400, body: map[string]any{"subject": " "}},
		{name: "update activity bad due date", method: "PATCH", path: "/activities/5", status: 400, body: map[string]any{"due_date": "01.10.2026"}},
		{name: "update activity done as text", method: "PATCH", path: "/activities/5", status: 400, body: map[string]any{"done": "yes"}, specRejects: true},
		{name: "list activities updated window", method: "GET", path: "/activities?updated_since=2026-01-01T00:00:00Z&updated_until=2026-09-15T12:00:00Z&sort_by=due_date&limit=20", status: 200},
		{name: "list activities bad updated_until", method: "GET", path: "/activities?updated_until=yesterday", status: 400},
	}
	specSuite{router: router, errSchema: errorSchema(t, doc), base: "/api/v2",
		covers: []string{"PATCH /deals/{id}", "PATCH /activities/{id}", "GET /activities"}}.run(t, cases)
}

// An activity update changes only what its body names, keeps the done
// time in step with done, moves the deal's next activity, and changes
// nothing when it is refused.
func TestUpdateActivity(t *testing.T) {
	e := newEnv(t, Options{})
	deal := e.do("POST", "/api/v2/deals", map[string]any{"title": "Tailspin Toys — scoping", "person_id": 3}).obj(t)
	dealID := num(deal["id"])
	created := e.do("POST", "/api/v2/activities", map[string]any{
		"subject": "Scoping call", "type": "call", "deal_id": dealID, "due_date": "2026-09-16", "due_time": "09:00", "duration": "0:30", "note": "Bring the SOW",
	}).obj(t)
	later := e.do("POST", "/api/v2/activities", map[string]any{"subject": "Proposal", "type": "task", "deal_id": dealID, "due_date": "2026-10-16"}).obj(t)
	path := "/api/v2/activities/" + strconv.Itoa(num(created["id"]))
	next := func() any {
		return e.do("GET", "/api/v2/deals/"+strconv.Itoa(dealID)+"?include_fields=next_activity_id", nil).obj(t)["next_activity_id"]
	}
	require.Equal(t, created["id"], next(), "the earliest undone activity of the deal")

	e.clock.Advance(time.Hour)
	moved := e.do("PATCH", path, map[string]any{"due_date": "2026-09-30", "subject": "Scoping call (moved)"}).obj(t)
	want := map[string]any{}
	for k, v := range created {
		want[k] = v
	}
	want["due_date"], want["subject"], want["update_time"] = "2026-09-30", "Scoping call (moved)", "2026-09-15T13:00:00Z"
	assert.Equal(t, want, moved, "only the named fields (and update_time) change")

	done := e.do("PATCH", path, map[string]any{"done": true}).obj(t)
	assert.Equal(t, true, done["done"])
	assert.Equal(t, "2026-09-15T13:00:00Z", done["marked_as_done_time"])
	assert.Equal(t, later["id"], next(), "a done activity is no longer the deal's next one")

	e.clock.Advance(time.Hour)
	again := e.do("PATCH", path, map[string]any{"done": true}).obj(t)
	assert.Equal(t, "2026-09-15T13:00:00Z", again["marked_as_done_time"], "marking a done activity done keeps its time")
	reopened := e.do("PATCH", path, map[string]any{"done": false}).obj(t)
	assert.Equal(t, false, reopened["done"])
	assert.Nil(t, reopened["marked_as_done_time"])

	cleared := e.do("PATCH", path, map[string]any{"due_time": nil, "duration": nil, "note": nil}).obj(t)
	assert.Nil(t, cleared["due_time"])
	assert.Nil(t, cleared["duration"])
	assert.Nil(t, cleared["note"])
	assert.Equal(t, "2026-09-30", cleared["due_date"])

	relinked := e.do("PATCH", path, map[string]any{"person_id": 7}).obj(t)
	assert.Equal(t, 7, num(relinked["person_id"]))
	assert.Equal(t, []any{map[string]any{"person_id": 7.0, "primary": true}}, relinked["participants"], "the person becomes the primary participant")
	assert.Equal(t, dealID, num(relinked["deal_id"]), "the deal stays")

	before := e.do("GET", path, nil).obj(t)
	e.do("PATCH", path, map[string]any{"subject": "Never", "type": "fax"}).failed(t, http.StatusBadRequest)
	e.do("PATCH", path, map[string]any{"done": true, "owner_id": 42}).failed(t, http.StatusBadRequest)
	assert.Equal(t, before, e.do("GET", path, nil).obj(t), "a rejected update changes nothing")
	e.do("PATCH", "/api/v2/activities/abc", map[string]any{"done": true}).failed(t, http.StatusBadRequest)
}

// The activity list sorted by due date pages with v2 cursors: every
// activity once, in due order, under its filters.
func TestActivitiesPageByDueDate(t *testing.T) {
	e := newEnv(t, Options{})
	for _, dir := range []string{"asc", "desc"} {
		all := e.all("/api/v2/activities?done=false&sort_by=due_date&sort_direction=" + dir + "&limit=7")
		require.NotEmpty(t, all)
		seen := map[int]bool{}
		for i, a := range all {
			require.False(t, seen[num(a["id"])], "activity %v twice", a["id"])
			seen[num(a["id"])] = true
			require.Equal(t, false, a["done"])
			if i == 0 {
				continue
			}
			prev, cur := dueOf(all[i-1]), dueOf(a)
			if dir == "asc" {
				require.LessOrEqual(t, prev, cur)
			} else {
				require.GreaterOrEqual(t, prev, cur)
			}
		}
		require.Len(t, all, len(e.all("/api/v2/activities?done=false&limit=500")), "the same activities in any order")
	}
	window := e.all("/api/v2/activities?updated_since=2026-09-01T00:00:00Z&updated_until=2026-09-10T00:00:00Z&limit=5")
	for _, a := range window {
		assert.GreaterOrEqual(t, a["update_time"], "2026-09-01T00:00:00Z")
		assert.Less(t, a["update_time"], "2026-09-10T00:00:00Z")
	}
}

func dueOf(a map[string]any) string {
	d, _ := a["due_date"].(string)
	return d
}

// The update routes go through the gateway's budget and Pipedrive's burst
// limit like every other route.
func TestUpdateRoutesSpendTheBudget(t *testing.T) {
	routes := []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/api/v2/activities/3", map[string]any{"done": true}},
		{"PATCH", "/api/v2/deals/3", map[string]any{"value": 0}},
		{"GET", "/api/v2/activities?sort_by=due_date", nil},
	}
	e := newEnv(t, Options{EnforceBudget: BudgetLimit{Limit: len(routes), Window: time.Minute}, Burst: 100})
	for _, r := range routes {
		rep := e.do(r.method, r.path, r.body)
		rep.ok(t)
		require.NotEmpty(t, rep.header.Get("x-ratelimit-remaining"), r.path)
	}
	refused := e.do("PATCH", "/api/v2/activities/3", map[string]any{"done": false})
	require.Equal(t, http.StatusTooManyRequests, refused.status, "body: %s", refused.raw)
	assert.NotEmpty(t, refused.header.Get("Retry-After"))
	require.Equal(t, 1, e.srv.GatewayRefusals(DefaultToken))
	require.Len(t, e.srv.Arrivals(DefaultToken), len(routes)+1)

	burst := newEnv(t, Options{Burst: 1, BurstWindow: 2 * time.Second})
	ok := burst.do("PATCH", "/api/v2/activities/3", map[string]any{"done": true})
	ok.ok(t)
	assert.Equal(t, "5", ok.header.Get("x-token-cost"))
	assert.Equal(t, "Request over limit", burst.do("PATCH", "/api/v2/activities/3", map[string]any{"done": false}).failed(t, http.StatusTooManyRequests))
}
