package sandbox

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, Options{})
	wantBody := `{"success":false,"error":"unauthorized access","error_info":"Please check developers.pipedrive.com for more information about Pipedrive API.","data":null,"additional_data":null}`

	for name, token := range map[string]string{"missing": "", "wrong": "not-the-token"} {
		t.Run(name, func(t *testing.T) {
			r := e.doToken("GET", "/api/v2/deals", nil, token)
			require.Equal(t, http.StatusUnauthorized, r.status)
			require.JSONEq(t, wantBody, string(r.raw))
			require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
		})
	}

	t.Run("v1 carries errorCode", func(t *testing.T) {
		r := e.doToken("GET", "/v1/users/me", nil, "")
		require.Equal(t, float64(401), r.body["errorCode"])
		require.Equal(t, "unauthorized access", r.failed(t, http.StatusUnauthorized))
	})

	t.Run("header", func(t *testing.T) {
		e.do("GET", "/api/v2/deals?limit=1", nil).ok(t)
	})

	t.Run("legacy query parameter", func(t *testing.T) {
		e.doToken("GET", "/api/v2/pipelines?api_token="+DefaultToken, nil, "").ok(t)
		e.doToken("GET", "/v1/users/me?api_token="+DefaultToken, nil, "").ok(t)
	})

	t.Run("custom token", func(t *testing.T) {
		c := newEnv(t, Options{Token: "s3cret"})
		c.doToken("GET", "/api/v2/deals", nil, DefaultToken).failed(t, http.StatusUnauthorized)
		c.doToken("GET", "/api/v2/deals", nil, "s3cret").ok(t)
	})
}

func TestSeedShape(t *testing.T) {
	e := newEnv(t, Options{})

	pipes := e.all("/api/v2/pipelines")
	require.Len(t, pipes, 2)
	require.Equal(t, "Sales", pipes[0]["name"])
	require.Equal(t, "Partner Co-sell", pipes[1]["name"])

	stageNames := map[int][]string{}
	for _, st := range e.all("/api/v2/stages?sort_by=order_nr") {
		stageNames[num(st["pipeline_id"])] = append(stageNames[num(st["pipeline_id"])], st["name"].(string))
	}
	require.Equal(t, []string{"Lead In", "Qualified", "Contact Made", "Demo Scheduled", "Proposal Made", "Negotiations Started"}, stageNames[1])
	require.Equal(t, []string{"Referral Received", "Partner Accepted", "Joint Discovery", "Co-sell Proposal", "Committed"}, stageNames[2])

	users := e.do("GET", "/v1/users", nil).ok(t).([]any)
	require.Len(t, users, 6)
	you := 0
	for _, u := range users {
		if u.(map[string]any)["is_you"] == true {
			you++
		}
		require.Contains(t, u.(map[string]any)["email"], "@")
	}
	require.Equal(t, 1, you)
	me := e.do("GET", "/v1/users/me", nil).obj(t)
	require.Equal(t, true, me["is_you"])
	require.Equal(t, "Trey Research", me["company_name"])

	types := e.do("GET", "/v1/activityTypes", nil).ok(t).([]any)
	var keys []string
	for _, ty := range types {
		keys = append(keys, ty.(map[string]any)["key_string"].(string))
	}
	require.Subset(t, keys, []string{"call", "meeting", "email", "task", "deadline"})

	orgs := e.all("/api/v2/organizations")
	require.Len(t, orgs, 60)
	for i, a := range orgs {
		for j, b := range orgs {
			if i != j {
				require.NotContains(t, strings.ToLower(a["name"].(string)), strings.ToLower(b["name"].(string)),
					"organization names must be distinct so a search for one finds only its deals")
			}
		}
	}
	persons := e.all("/api/v2/persons")
	require.Len(t, persons, 100)
	for _, p := range persons {
		require.NotNil(t, p["org_id"])
	}

	deals := e.all("/api/v2/deals")
	require.Len(t, deals, 200)
	statuses := map[string]int{}
	pipelines := map[int]int{}
	oldest := testNow
	for _, d := range deals {
		statuses[d["status"].(string)]++
		pipelines[num(d["pipeline_id"])]++
		added, err := time.Parse(time.RFC3339, d["add_time"].(string))
		require.NoError(t, err)
		require.False(t, added.After(testNow))
		if added.Before(oldest) {
			oldest = added
		}
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, d["add_time"])
		require.Contains(t, d["title"], " — ")
		switch d["status"] {
		case "won":
			require.NotNil(t, d["won_time"])
			require.NotNil(t, d["close_time"])
			require.Nil(t, d["lost_reason"])
		case "lost":
			require.NotNil(t, d["lost_time"])
			require.NotNil(t, d["lost_reason"])
		case "open":
			require.Nil(t, d["close_time"])
		}
	}
	require.Greater(t, statuses["open"], 50)
	require.Greater(t, statuses["won"], 20)
	require.Greater(t, statuses["lost"], 20)
	require.Greater(t, pipelines[1], 50)
	require.Greater(t, pipelines[2], 30)
	require.True(t, oldest.Before(testNow.AddDate(0, -15, 0)), "deals span the last ~18 months")

	acts := e.all("/api/v2/activities")
	require.Len(t, acts, 300)
	types2 := map[string]bool{}
	done := 0
	for _, a := range acts {
		types2[a["type"].(string)] = true
		if a["done"] == true {
			done++
			require.NotNil(t, a["marked_as_done_time"])
		}
	}
	require.Len(t, types2, 5)
	require.Greater(t, done, 50)
	require.Less(t, done, 300)
}

func TestDeterministicSeed(t *testing.T) {
	paths := []string{"/api/v2/deals?limit=500", "/api/v2/activities?limit=500", "/api/v2/persons?limit=500",
		"/api/v2/organizations?limit=500", "/v1/users"}
	a, b, c := newEnv(t, Options{}), newEnv(t, Options{Seed: 1}), newEnv(t, Options{Seed: 2})
	for _, p := range paths {
		require.Equal(t, string(a.do("GET", p, nil).raw), string(b.do("GET", p, nil).raw), p)
	}
	require.NotEqual(t, string(a.do("GET", paths[0], nil).raw), string(c.do("GET", paths[0], nil).raw))
}

func TestPaginationWalksEveryDealOnce(t *testing.T) {
	e := newEnv(t, Options{})
	want := map[int]bool{}
	for _, d := range e.do("GET", "/api/v2/deals?limit=500", nil).list(t) {
		want[num(d["id"])] = true
	}
	require.Len(t, want, 200)

	for _, sortSpec := range []string{"", "sort_by=id&sort_direction=desc", "sort_by=update_time", "sort_by=add_time&sort_direction=desc"} {
		t.Run(sortSpec, func(t *testing.T) {
			seen := map[int]int{}
			pages := 0
			var prev string
			for _, d := range e.all("/api/v2/deals?limit=17&" + sortSpec) {
				seen[num(d["id"])]++
				key := fmt.Sprintf("%020d", num(d["id"]))
				if strings.Contains(sortSpec, "update_time") {
					key = d["update_time"].(string) + key
				} else if strings.Contains(sortSpec, "add_time") {
					key = d["add_time"].(string) + key
				}
				if prev != "" {
					if strings.Contains(sortSpec, "desc") {
						require.Less(t, key, prev)
					} else {
						require.Greater(t, key, prev)
					}
				}
				prev = key
				pages++
			}
			require.Len(t, seen, len(want))
			for id, n := range seen {
				require.Equal(t, 1, n, "deal %d seen %d times", id, n)
				require.True(t, want[id])
			}
		})
	}

	t.Run("inserts and deletes while paging", func(t *testing.T) {
		seen := map[int]int{}
		r := e.do("GET", "/api/v2/deals?limit=50", nil)
		for _, d := range r.list(t) {
			seen[num(d["id"])]++
		}
		cursor := r.nextCursor(t)
		e.do("POST", "/api/v2/deals", map[string]any{"title": "Added mid-walk"}).ok(t)
		e.do("DELETE", "/api/v2/deals/1", nil).ok(t) // already seen
		for cursor != "" {
			r = e.do("GET", "/api/v2/deals?limit=50&cursor="+cursor, nil)
			for _, d := range r.list(t) {
				seen[num(d["id"])]++
			}
			cursor = r.nextCursor(t)
		}
		for id, n := range seen {
			require.Equal(t, 1, n, "deal %d", id)
		}
		require.Len(t, seen, 201) // 200 seeded + the new one
	})

	t.Run("last page has null next_cursor", func(t *testing.T) {
		r := e.do("GET", "/api/v2/pipelines", nil)
		require.Contains(t, string(r.raw), `"additional_data":{"next_cursor":null}`)
	})
}

func TestInvalidCursorAndLimit(t *testing.T) {
	e := newEnv(t, Options{})
	idCursor := e.do("GET", "/api/v2/deals?limit=5", nil).nextCursor(t)
	require.NotEmpty(t, idCursor)
	for _, path := range []string{
		"/api/v2/deals?cursor=!!!",
		"/api/v2/deals?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("garbage")),
		"/api/v2/deals?sort_by=update_time&cursor=" + idCursor, // cursor of another ordering
		"/api/v2/activities?cursor=abc",
		"/api/v2/deals/search?term=contoso&cursor=abc",
		"/api/v2/deals?limit=501",
		"/api/v2/deals?limit=0",
		"/api/v2/deals?limit=ten",
		"/api/v2/stages?limit=1000",
		"/api/v2/deals?sort_by=title",
		"/api/v2/deals?sort_direction=up",
	} {
		e.do("GET", path, nil).failed(t, http.StatusBadRequest)
	}
	require.Len(t, e.do("GET", "/api/v2/deals?limit=500", nil).list(t), 200)
}

func TestDealFilters(t *testing.T) {
	e := newEnv(t, Options{})
	all := e.do("GET", "/api/v2/deals?limit=500", nil).list(t)
	count := func(pred func(map[string]any) bool) int {
		n := 0
		for _, d := range all {
			if pred(d) {
				n++
			}
		}
		return n
	}
	eq := func(field string, v int) func(map[string]any) bool {
		return func(d map[string]any) bool { return d[field] != nil && num(d[field]) == v }
	}
	cases := []struct {
		query string
		pred  func(map[string]any) bool
	}{
		{"owner_id=2", eq("owner_id", 2)},
		{"pipeline_id=2", eq("pipeline_id", 2)},
		{"stage_id=3", eq("stage_id", 3)},
		{"org_id=5", eq("org_id", 5)},
		{"person_id=7", eq("person_id", 7)},
		{"status=won", func(d map[string]any) bool { return d["status"] == "won" }},
		{"status=won,lost", func(d map[string]any) bool { return d["status"] == "won" || d["status"] == "lost" }},
		{"ids=1,5,9,1000", func(d map[string]any) bool { id := num(d["id"]); return id == 1 || id == 5 || id == 9 }},
		{"pipeline_id=1&status=open&owner_id=1", func(d map[string]any) bool {
			return num(d["pipeline_id"]) == 1 && d["status"] == "open" && num(d["owner_id"]) == 1
		}},
		{"updated_since=2026-03-01T00:00:00Z&updated_until=2026-06-01T00:00:00Z", func(d map[string]any) bool {
			u := d["update_time"].(string)
			return u >= "2026-03-01T00:00:00Z" && u < "2026-06-01T00:00:00Z"
		}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			got := e.all("/api/v2/deals?limit=23&" + c.query)
			for _, d := range got {
				require.True(t, c.pred(d), "deal %v does not match %s", d["id"], c.query)
			}
			require.Equal(t, count(c.pred), len(got))
			require.NotZero(t, len(got), "filter %s matched nothing; seed too sparse for the test", c.query)
		})
	}

	for _, bad := range []string{"status=closed", "owner_id=me", "updated_since=yesterday", "updated_until=2026-01-01", "ids=1,x"} {
		e.do("GET", "/api/v2/deals?"+bad, nil).failed(t, http.StatusBadRequest)
	}
	e.do("GET", "/api/v2/deals?filter_id=1", nil).failed(t, http.StatusNotFound)
}

func TestSearchFindsOrgDeals(t *testing.T) {
	e := newEnv(t, Options{})
	deals := e.do("GET", "/api/v2/deals?limit=500", nil).list(t)
	byOrg := map[int][]int{}
	for _, d := range deals {
		byOrg[num(d["org_id"])] = append(byOrg[num(d["org_id"])], num(d["id"]))
	}
	orgs := e.all("/api/v2/organizations")
	for _, o := range orgs {
		name := o["name"].(string)
		r := e.do("GET", "/api/v2/deals/search?limit=500&term="+url.QueryEscape(name), nil)
		var got []int
		for _, it := range r.obj(t)["items"].([]any) {
			item := it.(map[string]any)["item"].(map[string]any)
			require.Equal(t, "deal", item["type"])
			require.Equal(t, name, item["organization"].(map[string]any)["name"])
			got = append(got, num(item["id"]))
		}
		want := byOrg[num(o["id"])]
		sort.Ints(got)
		sort.Ints(want)
		require.Equal(t, want, got, "search %q", name)
		require.NotEmpty(t, got)

		// The organization search finds the organization itself.
		or := e.do("GET", "/api/v2/organizations/search?exact_match=true&fields=name&term="+url.QueryEscape(name), nil).obj(t)
		items := or["items"].([]any)
		require.Len(t, items, 1)
		require.Equal(t, num(o["id"]), num(items[0].(map[string]any)["item"].(map[string]any)["id"]))
	}

	t.Run("filters and paging", func(t *testing.T) {
		r := e.do("GET", "/api/v2/deals/search?term=migration&fields=title&status=open&limit=3", nil)
		items := r.obj(t)["items"].([]any)
		require.Len(t, items, 3)
		total := len(items)
		for c := r.nextCursor(t); c != ""; {
			r = e.do("GET", "/api/v2/deals/search?term=migration&fields=title&status=open&limit=3&cursor="+c, nil)
			for _, it := range r.obj(t)["items"].([]any) {
				item := it.(map[string]any)["item"].(map[string]any)
				require.Equal(t, "open", item["status"])
				require.Contains(t, strings.ToLower(item["title"].(string)), "migration")
				total++
			}
			c = r.nextCursor(t)
		}
		n := 0
		for _, d := range deals {
			if d["status"] == "open" && strings.Contains(strings.ToLower(d["title"].(string)), "migration") {
				n++
			}
		}
		require.Equal(t, n, total)

		orgID := num(deals[0]["org_id"])
		term := strings.SplitN(deals[0]["title"].(string), " — ", 2)[1]
		r = e.do("GET", "/api/v2/deals/search?term="+url.QueryEscape(term)+"&organization_id="+strconv.Itoa(orgID), nil)
		items = r.obj(t)["items"].([]any)
		require.NotEmpty(t, items)
		for _, it := range items {
			require.Equal(t, orgID, num(it.(map[string]any)["item"].(map[string]any)["organization"].(map[string]any)["id"]))
		}
	})

	t.Run("exact match and short terms", func(t *testing.T) {
		title := deals[10]["title"].(string)
		r := e.do("GET", "/api/v2/deals/search?exact_match=true&term="+url.QueryEscape(title), nil).obj(t)
		require.Len(t, r["items"], 1)
		r = e.do("GET", "/api/v2/deals/search?exact_match=true&term="+url.QueryEscape(title[:10]), nil).obj(t)
		require.Empty(t, r["items"])
		e.do("GET", "/api/v2/deals/search?term=a", nil).failed(t, http.StatusBadRequest)
		e.do("GET", "/api/v2/deals/search", nil).failed(t, http.StatusBadRequest)
		e.do("GET", "/api/v2/organizations/search?term=a", nil).failed(t, http.StatusBadRequest)
		e.do("GET", "/api/v2/deals/search?term=ab&fields=body", nil).failed(t, http.StatusBadRequest)
		e.do("GET", "/api/v2/deals/search?term=a&exact_match=true", nil).ok(t)
	})

	t.Run("notes are searchable", func(t *testing.T) {
		r := e.do("GET", "/api/v2/deals/search?fields=notes&term=Partner%20Center&limit=500", nil).obj(t)
		items := r["items"].([]any)
		require.NotEmpty(t, items)
		for _, it := range items {
			require.NotEmpty(t, it.(map[string]any)["item"].(map[string]any)["notes"])
		}
	})
}

func TestDealValidation(t *testing.T) {
	e := newEnv(t, Options{})
	open := e.do("POST", "/api/v2/deals", map[string]any{"title": "Validation target"}).obj(t)
	id := strconv.Itoa(num(open["id"]))

	create := map[string]any{
		"missing title":                 map[string]any{"value": 100},
		"null title":                    map[string]any{"title": nil},
		"empty title":                   map[string]any{"title": "  "},
		"title not a string":            map[string]any{"title": 42},
		"value not a number":            map[string]any{"title": "x", "value": "100"},
		"owner not an integer":          map[string]any{"title": "x", "owner_id": "1"},
		"unknown owner":                 map[string]any{"title": "x", "owner_id": 99},
		"unknown person":                map[string]any{"title": "x", "person_id": 99999},
		"unknown org":                   map[string]any{"title": "x", "org_id": 99999},
		"unknown pipeline":              map[string]any{"title": "x", "pipeline_id": 9},
		"unknown stage":                 map[string]any{"title": "x", "stage_id": 99},
		"stage not in pipeline":         map[string]any{"title": "x", "pipeline_id": 2, "stage_id": 2},
		"unknown status":                map[string]any{"title": "x", "status": "pending"},
		"lost_reason when open":         map[string]any{"title": "x", "lost_reason": "Budget"},
		"lost_reason when won":          map[string]any{"title": "x", "status": "won", "lost_reason": "Budget"},
		"won_time when lost":            map[string]any{"title": "x", "status": "lost", "won_time": "2026-01-01T00:00:00Z"},
		"lost_time when open":           map[string]any{"title": "x", "lost_time": "2026-01-01T00:00:00Z"},
		"close_time when open":          map[string]any{"title": "x", "close_time": "2026-01-01 10:00:00"},
		"bad expected_close_date":       map[string]any{"title": "x", "expected_close_date": "2026-13-01"},
		"expected_close_date with time": map[string]any{"title": "x", "expected_close_date": "2026-12-01T00:00:00Z"},
		"bad won_time":                  map[string]any{"title": "x", "status": "won", "won_time": "last week"},
		"bad currency":                  map[string]any{"title": "x", "currency": "dollars"},
		"bad visible_to":                map[string]any{"title": "x", "visible_to": 2},
		"probability out of range":      map[string]any{"title": "x", "probability": 140},
		"label_ids not integers":        map[string]any{"title": "x", "label_ids": []string{"a"}},
		"invalid json":                  `{"title": "x",`,
		"array body":                    `[{"title":"x"}]`,
	}
	for name, body := range create {
		t.Run("create/"+name, func(t *testing.T) {
			e.do("POST", "/api/v2/deals", body).failed(t, http.StatusBadRequest)
		})
	}
	update := map[string]any{
		"empty title":           map[string]any{"title": ""},
		"stage not in pipeline": map[string]any{"pipeline_id": 1, "stage_id": 8},
		"lost_reason when open": map[string]any{"lost_reason": "Budget"},
		"won_time when open":    map[string]any{"won_time": "2026-01-01T00:00:00Z"},
		"close_time when open":  map[string]any{"close_time": "2026-01-01T00:00:00Z"},
		"unknown status":        map[string]any{"status": "closed"},
		"bad date":              map[string]any{"expected_close_date": "tomorrow"},
		"value not a number":    map[string]any{"value": true},
	}
	for name, body := range update {
		t.Run("update/"+name, func(t *testing.T) {
			e.do("PATCH", "/api/v2/deals/"+id, body).failed(t, http.StatusBadRequest)
		})
	}
	// Rejected updates change nothing.
	after := e.do("GET", "/api/v2/deals/"+id, nil).obj(t)
	require.Equal(t, open, after)

	e.do("GET", "/api/v2/deals/abc", nil).failed(t, http.StatusBadRequest)
	e.do("GET", "/api/v2/deals/0", nil).failed(t, http.StatusBadRequest)
	r := e.do("GET", "/api/v2/deals/424242", nil)
	require.Equal(t, "Entity was not found", r.failed(t, http.StatusNotFound))
	require.Equal(t, "Object was not found.", r.body["error_info"])
	e.do("GET", "/api/v2/nothing", nil).failed(t, http.StatusNotFound)
	e.do("PUT", "/api/v2/deals/1", map[string]any{"title": "x"}).failed(t, http.StatusNotFound)
}

func TestDealPipelineAndStage(t *testing.T) {
	e := newEnv(t, Options{})

	d := e.do("POST", "/api/v2/deals", map[string]any{"title": "Default placement"}).obj(t)
	require.Equal(t, 1, num(d["pipeline_id"]))
	require.Equal(t, 1, num(d["stage_id"]))
	require.Equal(t, "open", d["status"])
	require.Equal(t, 1, num(d["owner_id"]))
	require.Equal(t, 1, num(d["creator_user_id"]))
	require.Equal(t, "2026-09-15T12:00:00Z", d["add_time"])
	require.Nil(t, d["person_id"])

	d = e.do("POST", "/api/v2/deals", map[string]any{"title": "Partner referral", "pipeline_id": 2}).obj(t)
	require.Equal(t, 2, num(d["pipeline_id"]))
	require.Equal(t, 7, num(d["stage_id"]), "a pipeline alone places the deal in its first stage")

	d = e.do("POST", "/api/v2/deals", map[string]any{"title": "Stage only", "stage_id": 10}).obj(t)
	require.Equal(t, 2, num(d["pipeline_id"]), "the pipeline follows the stage")

	d = e.do("POST", "/api/v2/deals", map[string]any{"title": "Both", "pipeline_id": 1, "stage_id": 4}).obj(t)
	require.Equal(t, 4, num(d["stage_id"]))
	id := strconv.Itoa(num(d["id"]))
	require.Nil(t, d["stage_change_time"])

	e.clock.Advance(time.Hour)
	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"stage_id": 9}).obj(t)
	require.Equal(t, 9, num(d["stage_id"]))
	require.Equal(t, 2, num(d["pipeline_id"]))
	require.Equal(t, "2026-09-15T13:00:00Z", d["stage_change_time"])
	require.Equal(t, "2026-09-15T13:00:00Z", d["update_time"])

	e.clock.Advance(time.Hour)
	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"pipeline_id": 1}).obj(t)
	require.Equal(t, 1, num(d["stage_id"]), "moving pipelines without a stage lands in the first stage")
	require.Equal(t, "2026-09-15T14:00:00Z", d["stage_change_time"])

	e.clock.Advance(time.Hour)
	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"title": "Renamed", "pipeline_id": 1}).obj(t)
	require.Equal(t, 1, num(d["stage_id"]))
	require.Equal(t, "2026-09-15T14:00:00Z", d["stage_change_time"], "same pipeline: no stage change")
	require.Equal(t, "2026-09-15T15:00:00Z", d["update_time"])
	require.Equal(t, "Renamed", d["title"])
}

func TestWonLostSideEffects(t *testing.T) {
	e := newEnv(t, Options{})
	d := e.do("POST", "/api/v2/deals", map[string]any{"title": "Status walk", "value": 5000, "currency": "EUR"}).obj(t)
	id := strconv.Itoa(num(d["id"]))
	require.Nil(t, d["won_time"])
	require.Nil(t, d["close_time"])

	e.clock.Advance(24 * time.Hour)
	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"status": "won"}).obj(t)
	require.Equal(t, "won", d["status"])
	require.Equal(t, "2026-09-16T12:00:00Z", d["won_time"])
	require.Equal(t, "2026-09-16T12:00:00Z", d["close_time"])
	require.Equal(t, "2026-09-16T12:00:00Z", d["update_time"])
	require.Equal(t, "2026-09-16", d["local_won_date"])
	require.Nil(t, d["lost_time"])
	require.Equal(t, float64(5000), d["value"])
	require.Equal(t, "EUR", d["currency"])

	e.clock.Advance(24 * time.Hour)
	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"status": "lost", "lost_reason": "Went with another partner"}).obj(t)
	require.Equal(t, "lost", d["status"])
	require.Equal(t, "Went with another partner", d["lost_reason"])
	require.Equal(t, "2026-09-17T12:00:00Z", d["lost_time"])
	require.Equal(t, "2026-09-17T12:00:00Z", d["close_time"])
	require.Nil(t, d["won_time"])

	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"lost_reason": "Budget cut"}).obj(t)
	require.Equal(t, "Budget cut", d["lost_reason"], "lost_reason can change while lost")

	e.clock.Advance(time.Hour)
	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"status": "open"}).obj(t)
	require.Equal(t, "open", d["status"])
	for _, f := range []string{"won_time", "lost_time", "close_time", "lost_reason"} {
		require.Nil(t, d[f], f)
	}

	d = e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"status": "won", "won_time": "2026-09-01 09:30:00"}).obj(t)
	require.Equal(t, "2026-09-01T09:30:00Z", d["won_time"])
	require.Equal(t, "2026-09-01T09:30:00Z", d["close_time"])

	d = e.do("POST", "/api/v2/deals", map[string]any{"title": "Born lost", "status": "lost", "lost_reason": "No decision"}).obj(t)
	require.Equal(t, "No decision", d["lost_reason"])
	require.NotNil(t, d["lost_time"])

	got := e.do("GET", "/api/v2/deals/"+id, nil).obj(t)
	require.Equal(t, "won", got["status"])
}

func TestDeleteDeal(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("DELETE", "/api/v2/deals/7", nil)
	require.Equal(t, map[string]any{"id": float64(7)}, r.obj(t))
	require.Equal(t, "3", r.header.Get("x-token-cost"))

	for _, d := range e.all("/api/v2/deals?limit=500") {
		require.NotEqual(t, 7, num(d["id"]))
	}
	deleted := e.do("GET", "/api/v2/deals?status=deleted", nil).list(t)
	require.Len(t, deleted, 1)
	require.Equal(t, true, deleted[0]["is_deleted"])
	require.Equal(t, "deleted", deleted[0]["status"])
	got := e.do("GET", "/api/v2/deals/7", nil).obj(t)
	require.Equal(t, true, got["is_deleted"])

	title := got["title"].(string)
	items := e.do("GET", "/api/v2/deals/search?exact_match=true&term="+url.QueryEscape(title), nil).obj(t)["items"]
	require.Empty(t, items, "deleted deals are not searchable")

	e.do("DELETE", "/api/v2/deals/999999", nil).failed(t, http.StatusNotFound)
}

func TestActivities(t *testing.T) {
	e := newEnv(t, Options{})
	deal := e.do("GET", "/api/v2/deals/12", nil).obj(t)

	a := e.do("POST", "/api/v2/activities", map[string]any{
		"subject": "Joint call with Microsoft", "type": "call", "deal_id": 12, "due_date": "2026-09-18", "due_time": "09:30", "duration": "0:45",
	}).obj(t)
	require.Equal(t, "call", a["type"])
	require.Equal(t, 12, num(a["deal_id"]))
	require.Equal(t, deal["person_id"], a["person_id"], "person follows the deal")
	require.Equal(t, deal["org_id"], a["org_id"], "organization follows the deal")
	require.Equal(t, "09:30:00", a["due_time"])
	require.Equal(t, "00:45:00", a["duration"])
	require.Equal(t, false, a["done"])
	require.Equal(t, 1, num(a["owner_id"]))
	require.Equal(t, "2026-09-15T12:00:00Z", a["add_time"])

	done := e.do("POST", "/api/v2/activities", map[string]any{"type": "email", "person_id": 3, "done": true}).obj(t)
	require.Equal(t, "Email", done["subject"], "subject defaults to the type name")
	require.Equal(t, "2026-09-15T12:00:00Z", done["marked_as_done_time"])

	got := e.do("GET", "/api/v2/activities/"+strconv.Itoa(num(a["id"])), nil).obj(t)
	require.Equal(t, a, got)

	for _, act := range e.all("/api/v2/activities?deal_id=12") {
		require.Equal(t, 12, num(act["deal_id"]))
	}
	for _, act := range e.all("/api/v2/activities?done=false&owner_id=2") {
		require.Equal(t, false, act["done"])
		require.Equal(t, 2, num(act["owner_id"]))
	}
	since := e.all("/api/v2/activities?updated_since=2026-09-15T12:00:00Z")
	require.Len(t, since, 2)

	for name, body := range map[string]any{
		"unknown type":   map[string]any{"type": "fax"},
		"unknown deal":   map[string]any{"deal_id": 999999},
		"bad due_date":   map[string]any{"due_date": "18.09.2026"},
		"bad due_time":   map[string]any{"due_time": "25:00"},
		"bad done":       map[string]any{"done": "yes"},
		"unknown person": map[string]any{"person_id": 999999},
	} {
		t.Run(name, func(t *testing.T) {
			e.do("POST", "/api/v2/activities", body).failed(t, http.StatusBadRequest)
		})
	}
	e.do("GET", "/api/v2/activities?done=maybe", nil).failed(t, http.StatusBadRequest)
	e.do("GET", "/api/v2/activities/999999", nil).failed(t, http.StatusNotFound)
}

func TestPersonsOrgsStages(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range e.all("/api/v2/persons?org_id=3") {
		require.Equal(t, 3, num(p["org_id"]))
	}
	p := e.do("GET", "/api/v2/persons/4", nil).obj(t)
	require.Equal(t, p["first_name"].(string)+" "+p["last_name"].(string), p["name"])
	o := e.do("GET", "/api/v2/organizations/4", nil).obj(t)
	require.NotEmpty(t, o["name"])
	st := e.all("/api/v2/stages?pipeline_id=2")
	require.Len(t, st, 5)
	for _, s := range st {
		require.Equal(t, 2, num(s["pipeline_id"]))
	}
	require.Equal(t, "Partner Co-sell", e.do("GET", "/api/v2/pipelines/2", nil).obj(t)["name"])
	require.Equal(t, "Qualified", e.do("GET", "/api/v2/stages/2", nil).obj(t)["name"])
	require.Len(t, e.all("/api/v2/stages?limit=2"), 11)
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Options{Burst: 5, BurstWindow: 2 * time.Second})

	for i := 0; i < 5; i++ {
		r := e.do("GET", "/api/v2/pipelines", nil)
		r.ok(t)
		require.Equal(t, "5", r.header.Get("x-ratelimit-limit"))
		require.Equal(t, strconv.Itoa(4-i), r.header.Get("x-ratelimit-remaining"))
		require.Equal(t, "2", r.header.Get("x-ratelimit-reset"))
		require.Equal(t, "5", r.header.Get("x-token-cost"))
		e.clock.Advance(100 * time.Millisecond)
	}
	r := e.do("GET", "/api/v2/deals", nil)
	require.Equal(t, "Request over limit", r.failed(t, http.StatusTooManyRequests))
	require.Equal(t, "0", r.header.Get("x-ratelimit-remaining"))
	require.Equal(t, "5", r.header.Get("x-ratelimit-limit"))
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, retry, 1)
	require.LessOrEqual(t, retry, 2)
	require.Equal(t, r.header.Get("Retry-After"), r.header.Get("x-ratelimit-reset"))

	// Writes are limited the same way, and a rejected request does not extend the window.
	e.do("POST", "/api/v2/deals", map[string]any{"title": "x"}).failed(t, http.StatusTooManyRequests)

	// The window is rolling: once the oldest request leaves it, one more is allowed.
	e.clock.Advance(1500 * time.Millisecond) // now 2.0s after the first request
	r = e.do("GET", "/api/v2/pipelines", nil)
	r.ok(t)
	require.Equal(t, "0", r.header.Get("x-ratelimit-remaining"))
	e.do("GET", "/api/v2/pipelines", nil).failed(t, http.StatusTooManyRequests)
	e.clock.Advance(2 * time.Second)
	e.do("GET", "/api/v2/pipelines", nil).ok(t)

	// Other credentials have their own window.
	e.doToken("GET", "/api/v2/pipelines", nil, "someone-else").failed(t, http.StatusUnauthorized)

	require.Equal(t, 11, e.srv.RequestCount())
}

func TestDefaultsAndHeaders(t *testing.T) {
	s := New(Options{})
	require.Equal(t, DefaultToken, s.token)
	require.Equal(t, 80, s.burst)
	require.Equal(t, 2*time.Second, s.burstWindow)

	e := newEnv(t, Options{})
	for path, cost := range map[string]string{
		"/api/v2/deals": "10", "/api/v2/deals/1": "1", "/api/v2/deals/search?term=contoso": "20",
		"/api/v2/pipelines/1": "1", "/api/v2/stages": "5", "/api/v2/activities/1": "1",
		"/api/v2/persons": "10", "/api/v2/organizations/search?term=contoso": "20",
		"/v1/users": "20", "/v1/users/me": "2", "/v1/activityTypes": "20",
	} {
		r := e.do("GET", path, nil)
		r.ok(t)
		require.Equal(t, cost, r.header.Get("x-token-cost"), path)
		require.NotEmpty(t, r.header.Get("x-ratelimit-limit"))
		require.NotEmpty(t, r.header.Get("x-ratelimit-remaining"))
		require.NotEmpty(t, r.header.Get("x-ratelimit-reset"))
	}
	require.Equal(t, 11, e.srv.RequestCount())
}

func TestListen(t *testing.T) {
	base, srv, err := Listen("127.0.0.1:0", Options{Token: "listen-token"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"))

	req, err := http.NewRequest("GET", base+"/api/v2/pipelines", nil)
	require.NoError(t, err)
	req.Header.Set("x-api-token", "listen-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), `"name":"Partner Co-sell"`)
	require.Equal(t, 1, srv.Handler.(*Server).RequestCount())
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, Options{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				id := strconv.Itoa(1 + (g*10+i)%200)
				e.do("PATCH", "/api/v2/deals/"+id, map[string]any{"value": g*1000 + i})
				e.do("GET", "/api/v2/deals?limit=50", nil)
				e.do("POST", "/api/v2/activities", map[string]any{"subject": "parallel", "deal_id": 1})
			}
		}(g)
	}
	wg.Wait()
	require.Equal(t, 240, e.srv.RequestCount())
	parallel := 0
	for _, a := range e.all("/api/v2/activities?deal_id=1&limit=500") {
		if a["subject"] == "parallel" {
			parallel++
		}
	}
	require.Equal(t, 80, parallel)
}

func TestDealIncludeFields(t *testing.T) {
	e := newEnv(t, Options{})
	plain := e.do("GET", "/api/v2/deals/12", nil).obj(t)
	require.NotContains(t, plain, "next_activity_id", "optional fields only on request")

	const fields = "next_activity_id,last_activity_id,activities_count,done_activities_count,undone_activities_count,smart_bcc_email"
	before := e.do("GET", "/api/v2/deals/12?include_fields="+fields, nil).obj(t)
	require.Contains(t, before, "next_activity_id")
	require.Equal(t, num(before["done_activities_count"])+num(before["undone_activities_count"]), num(before["activities_count"]))
	require.Equal(t, plain["title"], before["title"])

	soonest := e.do("POST", "/api/v2/activities", map[string]any{"type": "call", "deal_id": 12, "due_date": "2000-01-01"}).obj(t)
	latestDone := e.do("POST", "/api/v2/activities", map[string]any{"type": "email", "deal_id": 12, "due_date": "2099-12-31", "done": true}).obj(t)
	after := e.do("GET", "/api/v2/deals/12?include_fields="+fields, nil).obj(t)
	require.Equal(t, num(soonest["id"]), num(after["next_activity_id"]), "the earliest undone activity is next")
	require.Equal(t, num(latestDone["id"]), num(after["last_activity_id"]), "the latest done activity is last")
	require.Equal(t, num(before["undone_activities_count"])+1, num(after["undone_activities_count"]))
	require.Equal(t, num(before["done_activities_count"])+1, num(after["done_activities_count"]))

	var with, without int
	for _, d := range e.all("/api/v2/deals?status=open&include_fields=next_activity_id") {
		require.Contains(t, d, "next_activity_id")
		if d["next_activity_id"] == nil {
			without++
		} else {
			with++
		}
	}
	require.Positive(t, with, "seeded open deals with a next activity")
	require.Positive(t, without, "seeded open deals without one")

	msg := e.do("GET", "/api/v2/deals?include_fields=next_step", nil).failed(t, http.StatusBadRequest)
	require.Contains(t, msg, "include_fields")
	e.do("GET", "/api/v2/deals/12?include_fields=bogus", nil).failed(t, http.StatusBadRequest)
}
