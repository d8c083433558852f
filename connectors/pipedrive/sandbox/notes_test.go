package sandbox

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"
)

// noteNullable are the members of a note the live API sends as null when
// the note is not attached to such a record (the spec says nothing of
// null), and the author's missing avatar.
var noteNullable = []string{"deal_id", "person_id", "org_id", "lead_id", "project_id", "task_id", "last_update_user_id",
	"deal", "organization", "person", "project", "task", "icon_url"}

// loadV1Spec loads testdata/openapi-v1.yaml (the official v1 definition,
// whose own examples do not all validate) with the notes' nullable fixes.
func loadV1Spec(t *testing.T) routers.Router {
	t.Helper()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromFile("testdata/openapi-v1.yaml")
	require.NoError(t, err)
	noExamples := openapi3.DisableExamplesValidation()
	require.NoError(t, doc.Validate(loader.Context, noExamples))
	relax(t, doc, map[string][]string{"getNotes": noteNullable, "addNote": noteNullable})
	router, err := legacy.NewRouter(doc, noExamples)
	require.NoError(t, err)
	return router
}

func TestNotesSpecConformance(t *testing.T) {
	router := loadV1Spec(t)
	v2, _ := loadSpec(t, false)
	cases := []specCase{
		{name: "list notes", method: "GET", path: "/notes", status: 200},
		{name: "list notes of a deal", method: "GET", path: "/notes?deal_id=2&start=0&limit=5&sort=add_time%20DESC", status: 200},
		{name: "list notes filtered", method: "GET", path: "/notes?org_id=1&pinned_to_organization_flag=0&start_date=2025-01-01&end_date=2026-12-31&updated_since=2025-01-01T00:00:00Z", status: 200},
		{name: "list notes second page", method: "GET", path: "/notes?start=3&limit=3&sort=id%20DESC,%20user_id", status: 200},
		{name: "list notes past the end", method: "GET", path: "/notes?start=100000", status: 200},
		{name: "list notes bad sort", method: "GET", path: "/notes?sort=title%20ASC", status: 400},
		{name: "list notes bad limit", method: "GET", path: "/notes?limit=0", status: 400},
		{name: "list notes bad start", method: "GET", path: "/notes?start=-1", status: 400},
		{name: "list notes bad flag", method: "GET", path: "/notes?pinned_to_deal_flag=2", status: 400, specRejects: true},
		{name: "list notes bad date", method: "GET", path: "/notes?start_date=01/01/2026", status: 400, specRejects: true},
		{name: "add note on deal", method: "POST", path: "/notes", status: 200, body: map[string]any{
			"content": "<p>Referral accepted; kickoff next week.</p>", "deal_id": 2, "pinned_to_deal_flag": 1}},
		{name: "add note on organization and person", method: "POST", path: "/notes", status: 200, body: map[string]any{
			"content": "Met at the partner summit", "org_id": 1, "person_id": 1, "pinned_to_person_flag": 1, "user_id": 2, "add_time": "2026-09-01 09:30:00"}},
		{name: "add note without content", method: "POST", path: "/notes", status: 400, body: map[string]any{"deal_id": 2}, specRejects: true},
		{name: "add note on nothing", method: "POST", path: "/notes", status: 400, body: map[string]any{"content": "orphan"}},
		{name: "add note unknown deal", method: "POST", path: "/notes", status: 400, body: map[string]any{"content": "x", "deal_id": 999999}},
		{name: "add note pin without target", method: "POST", path: "/notes", status: 400, body: map[string]any{"content": "x", "deal_id": 2, "pinned_to_person_flag": 1}},
		{name: "add note bad pin", method: "POST", path: "/notes", status: 400, body: map[string]any{"content": "x", "deal_id": 2, "pinned_to_deal_flag": 2}, specRejects: true},
	}
	specSuite{router: router, errSchema: errorSchema(t, v2), base: "/v1", // v1 errors share the envelope
		onError: func(t *testing.T, c specCase, r reply) {
			require.Equal(t, c.status, num(r.body["errorCode"]), "v1 errors carry errorCode")
		}}.run(t, cases)
}

// notesPage is one page of GET /v1/notes: the notes and the pagination.
func (e *env) notesPage(query string) ([]map[string]any, map[string]any) {
	e.t.Helper()
	r := e.do("GET", "/v1/notes?"+query, nil)
	notes := r.list(e.t)
	ad, ok := r.body["additional_data"].(map[string]any)
	require.True(e.t, ok, "%s", r.raw)
	pg, ok := ad["pagination"].(map[string]any)
	require.True(e.t, ok, "%s", r.raw)
	return notes, pg
}

// allNotes walks every page of GET /v1/notes with the query.
func (e *env) allNotes(query string, limit int) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	start := 0
	for pages := 0; ; pages++ {
		require.Less(e.t, pages, 1000)
		notes, pg := e.notesPage(query + "&start=" + strconv.Itoa(start) + "&limit=" + strconv.Itoa(limit))
		require.Equal(e.t, start, num(pg["start"]))
		require.Equal(e.t, limit, num(pg["limit"]))
		out = append(out, notes...)
		if pg["more_items_in_collection"] != true {
			require.NotContains(e.t, pg, "next_start")
			return out
		}
		require.Len(e.t, notes, limit, "a page before the last is full")
		require.Equal(e.t, start+limit, num(pg["next_start"]))
		start = num(pg["next_start"])
	}
}

func TestSeededNotesMatchTheDeals(t *testing.T) {
	e := newEnv(t, Options{})
	notes := e.allNotes("sort=id", 500)
	require.Greater(t, len(notes), 60)
	byDeal := map[int][]string{}
	onPersons, onOrgs := 0, 0
	for i, n := range notes {
		require.Equal(t, i+1, num(n["id"]), "ids in add_time order from 1")
		require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`, n["add_time"], "v1 times")
		require.Equal(t, true, n["active_flag"])
		require.NotEmpty(t, n["user"].(map[string]any)["name"])
		if n["deal_id"] != nil {
			byDeal[num(n["deal_id"])] = append(byDeal[num(n["deal_id"])], n["content"].(string))
			require.Equal(t, e.do("GET", "/api/v2/deals/"+strconv.Itoa(num(n["deal_id"])), nil).obj(t)["title"], n["deal"].(map[string]any)["title"])
		} else if n["person_id"] != nil {
			onPersons++
			require.Nil(t, n["org_id"])
		} else {
			onOrgs++
			require.NotEmpty(t, n["organization"].(map[string]any)["name"])
		}
	}
	require.Positive(t, onPersons)
	require.Positive(t, onOrgs)

	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	withNotes := 0
	for id, d := range e.srv.deals {
		require.Equal(t, d.Notes, byDeal[id], "deal %d: its notes are the ones the deal search reads", id)
		if len(d.Notes) > 0 {
			withNotes++
			n := e.srv.notes[1]
			for _, cand := range e.srv.notes {
				if cand.DealID != nil && *cand.DealID == id {
					n = cand
				}
			}
			require.Equal(t, d.OrgID, n.OrgID, "a deal's note is on its organization")
			require.Equal(t, d.PersonID, n.PersonID, "and on its person")
		}
	}
	require.Equal(t, len(byDeal), withNotes)
}

func TestNotesAreDeterministic(t *testing.T) {
	a, b, c := newEnv(t, Options{}), newEnv(t, Options{Seed: 1}), newEnv(t, Options{Seed: 2})
	require.Equal(t, string(a.do("GET", "/v1/notes?limit=500", nil).raw), string(b.do("GET", "/v1/notes?limit=500", nil).raw))
	require.NotEqual(t, string(a.do("GET", "/v1/notes?limit=500", nil).raw), string(c.do("GET", "/v1/notes?limit=500", nil).raw))
}

func TestAddNote(t *testing.T) {
	e := newEnv(t, Options{})
	deal := e.do("GET", "/api/v2/deals/7", nil).obj(t)
	n := e.do("POST", "/v1/notes", map[string]any{"content": `<p onclick="steal()">Joint <b>pitch</b> booked<script>alert(1)</script></p>`,
		"deal_id": 7, "pinned_to_deal_flag": 1}).obj(t)
	id := num(n["id"])
	require.Equal(t, `<p>Joint <b>pitch</b> booked</p>`, n["content"], "sanitized")
	require.Equal(t, 7, num(n["deal_id"]))
	require.Equal(t, deal["title"], n["deal"].(map[string]any)["title"])
	require.Equal(t, num(deal["org_id"]), num(n["org_id"]), "on the deal's organization")
	require.Equal(t, deal["person_id"], n["person_id"], "and person")
	require.Equal(t, true, n["pinned_to_deal_flag"])
	require.Equal(t, false, n["pinned_to_organization_flag"])
	require.Equal(t, 1, num(n["user_id"]))
	require.Equal(t, true, n["user"].(map[string]any)["is_you"])
	require.Equal(t, "2026-09-15 12:00:00", n["add_time"])

	var ids []int
	for _, q := range []string{"deal_id=7", "org_id=" + strconv.Itoa(num(deal["org_id"])), "pinned_to_deal_flag=1", "user_id=1"} {
		ids = ids[:0]
		for _, got := range e.allNotes(q, 100) {
			ids = append(ids, num(got["id"]))
		}
		require.Contains(t, ids, id, q)
	}
	for _, got := range e.allNotes("pinned_to_deal_flag=0", 500) {
		require.NotEqual(t, id, num(got["id"]))
	}
	// The deal search reads its notes, markup aside.
	hits := e.do("GET", "/api/v2/deals/search?term=joint%20pitch%20booked&fields=notes", nil).obj(t)["items"].([]any)
	require.Len(t, hits, 1)
	require.Equal(t, 7, num(hits[0].(map[string]any)["item"].(map[string]any)["id"]))

	// Explicit targets win over the deal's; a note can be backdated and authored by another user.
	other := e.do("POST", "/v1/notes", map[string]any{"content": "Call notes", "deal_id": 7, "org_id": 5, "person_id": 6,
		"user_id": 3, "add_time": "2026-09-01 08:15:00", "pinned_to_person_flag": 1, "pinned_to_deal_flag": 0}).obj(t)
	require.Equal(t, 5, num(other["org_id"]))
	require.Equal(t, 6, num(other["person_id"]))
	require.Equal(t, 3, num(other["user_id"]))
	require.Equal(t, false, other["user"].(map[string]any)["is_you"])
	require.Equal(t, "2026-09-01 08:15:00", other["add_time"])
	require.Equal(t, true, other["pinned_to_person_flag"])
	require.Equal(t, false, other["pinned_to_deal_flag"])

	count := len(e.allNotes("sort=id", 500))
	for name, c := range map[string]struct {
		body any
		msg  string
	}{
		"no content":            {map[string]any{"deal_id": 7}, "'content' is required"},
		"only a script":         {map[string]any{"content": "<script>x()</script>", "deal_id": 7}, "'content' must not be empty"},
		"no target":             {map[string]any{"content": "x"}, "One of the fields 'deal_id'"},
		"unknown deal":          {map[string]any{"content": "x", "deal_id": 4242}, "Deal with id 4242 does not exist"},
		"unknown org":           {map[string]any{"content": "x", "org_id": 4242}, "Organization with id 4242 does not exist"},
		"unknown person":        {map[string]any{"content": "x", "person_id": 4242}, "Person with id 4242 does not exist"},
		"unknown user":          {map[string]any{"content": "x", "deal_id": 7, "user_id": 9}, "User with id 9 does not exist"},
		"a lead":                {map[string]any{"content": "x", "lead_id": "adf21080-0e10-11eb-879b-05d71fb426ec"}, "Lead with id"},
		"pin without its id":    {map[string]any{"content": "x", "person_id": 6, "pinned_to_deal_flag": 1}, "'pinned_to_deal_flag' needs 'deal_id'"},
		"pin the deal's person": {map[string]any{"content": "x", "deal_id": 7, "pinned_to_person_flag": 1}, "'pinned_to_person_flag' needs 'person_id'"},
		"pin not a flag":        {map[string]any{"content": "x", "deal_id": 7, "pinned_to_deal_flag": 3}, "must be 0 or 1"},
		"pin as boolean":        {map[string]any{"content": "x", "deal_id": 7, "pinned_to_deal_flag": true}, "must be an integer"},
		"content not text":      {map[string]any{"content": 5, "deal_id": 7}, "'content' must be a string"},
		"add_time not a time":   {map[string]any{"content": "x", "deal_id": 7, "add_time": "yesterday"}, "'add_time' must be a date and time"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, e.do("POST", "/v1/notes", c.body).failed(t, http.StatusBadRequest), c.msg)
		})
	}
	require.Len(t, e.allNotes("sort=id", 500), count, "a refused note is not added")
}

func TestListNotesPagesAndSorts(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 7; i++ {
		e.clock.Advance(time.Minute)
		e.do("POST", "/v1/notes", map[string]any{"content": "Update " + strconv.Itoa(i), "org_id": 9}).obj(t)
	}
	all := e.allNotes("org_id=9&sort=add_time%20DESC", 500)
	paged := e.allNotes("org_id=9&sort=add_time%20DESC", 3)
	require.Equal(t, all, paged, "pages of 3 add up to the whole")
	require.GreaterOrEqual(t, len(all), 7)
	require.Equal(t, "Update 6", all[0]["content"], "newest first")
	for i := 1; i < len(all); i++ {
		require.GreaterOrEqual(t, all[i-1]["add_time"], all[i]["add_time"])
		require.Equal(t, 9, num(all[i]["org_id"]))
	}
	asc := e.allNotes("org_id=9&sort=add_time", 500)
	require.Equal(t, all[0], asc[len(asc)-1])

	notes, pg := e.notesPage("org_id=9&start=1000")
	require.Empty(t, notes)
	require.Equal(t, false, pg["more_items_in_collection"])
	notes, pg = e.notesPage("org_id=9")
	require.Equal(t, 100, num(pg["limit"]), "the default page")
	require.Equal(t, 0, num(pg["start"]))
	require.Len(t, notes, len(all))

	require.Empty(t, e.allNotes("lead_id=adf21080-0e10-11eb-879b-05d71fb426ec", 10), "no leads in the sandbox")
	require.Empty(t, e.allNotes("end_date=2000-01-01", 10))
	require.Len(t, e.allNotes("org_id=9&start_date=2026-09-15&updated_since=2026-09-15T12:03:00Z", 10), 5, "dates and update times filter")
	for q, msg := range map[string]string{
		"sort=title":            "can sort by",
		"sort=id%20UP":          "optional ASC or DESC",
		"limit=501":             "between 1 and 500",
		"start=x":               "'start' must be an integer",
		"deal_id=x":             "'deal_id' must be an integer",
		"updated_since=monday":  "RFC3339",
		"pinned_to_deal_flag=y": "must be 0 or 1",
	} {
		require.True(t, strings.Contains(e.do("GET", "/v1/notes?"+q, nil).failed(t, http.StatusBadRequest), msg), q)
	}
}
