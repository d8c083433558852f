package sandbox

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

// partyNullable are the fields the live API sends as null where the spec
// does not say nullable, for the operations of organizations and persons
// (see specNullable).
var partyNullable = map[string][]string{
	"addOrganization":    append([]string{"address"}, addressNullable...),
	"updateOrganization": append([]string{"address"}, addressNullable...),
	"getOrganization":    append([]string{"address"}, addressNullable...),
	"addPerson":          personNullable,
	"updatePerson":       personNullable,
	"searchOrganization": {"address"},
	"searchPersons":      {"organization"},
}

// relax marks the nullable fields of ops in doc.
func relax(t *testing.T, doc *openapi3.T, ops map[string][]string) {
	t.Helper()
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			names, listed := ops[op.OperationID]
			if !listed {
				continue
			}
			resp := op.Responses.Status(http.StatusOK)
			require.NotNil(t, resp, op.OperationID)
			markNullable(resp.Value.Content.Get("application/json").Schema, append([]string{"next_cursor"}, names...), map[*openapi3.Schema]bool{})
		}
	}
}

func TestPartiesSpecConformance(t *testing.T) {
	doc, router := loadSpec(t, true)
	relax(t, doc, partyNullable)
	cases := []specCase{
		{name: "add organization", method: "POST", path: "/organizations", status: 200, body: map[string]any{
			"name": "Datum Retail GmbH", "owner_id": 2, "visible_to": 1, "label_ids": []int{4},
			"address": map[string]any{"value": "Friedrichstraße 68, 10117 Berlin, Germany", "locality": "Berlin", "country": "Germany"},
			"website": "https://www.datumretail.de", "employee_count": 900, "industry": nil}},
		{name: "add organization minimal", method: "POST", path: "/organizations", status: 200, body: map[string]any{"name": "Walk-in Customer"}},
		{name: "add organization without name", method: "POST", path: "/organizations", status: 400, body: map[string]any{"owner_id": 1}, specRejects: true},
		{name: "add organization unknown owner", method: "POST", path: "/organizations", status: 400, body: map[string]any{"name": "x", "owner_id": 99}},
		{name: "add organization bad address", method: "POST", path: "/organizations", status: 400, body: map[string]any{"name": "x", "address": "Main St"}, specRejects: true},
		{name: "add organization custom field", method: "POST", path: "/organizations", status: 400, body: map[string]any{"name": "x", "custom_fields": map[string]any{"abc": 1}}},
		{name: "update organization", method: "PATCH", path: "/organizations/3", status: 200, body: map[string]any{"name": "Northwind Traders AG", "website": nil, "employee_count": nil}},
		{name: "update organization unknown", method: "PATCH", path: "/organizations/999999", status: 404, body: map[string]any{"name": "x"}},
		{name: "update organization blank name", method: "PATCH", path: "/organizations/3", status: 400, body: map[string]any{"name": "  "}},
		{name: "get organization without address", method: "GET", path: "/organizations/62", status: 200},
		{name: "search organizations by notes", method: "GET", path: "/organizations/search?term=reseller&fields=notes", status: 200},
		{name: "search organizations paged", method: "GET", path: "/organizations/search?term=on&fields=address&limit=2", status: 200},
		{name: "search organizations bad field", method: "GET", path: "/organizations/search?term=Contoso&fields=email", status: 400, specRejects: true},
		{name: "add person", method: "POST", path: "/persons", status: 200, body: map[string]any{
			"name": "Jana van der Berg", "owner_id": 3, "org_id": 1, "visible_to": 3, "job_title": "CIO",
			"emails": []any{map[string]any{"value": "jana@contoso.com", "primary": true, "label": "work"}, map[string]any{"value": "jana@home.example"}},
			"phones": []any{map[string]any{"value": "+49 30 1234 5678", "label": "mobile"}}}},
		{name: "add person minimal", method: "POST", path: "/persons", status: 200, body: map[string]any{"name": "Cher"}},
		{name: "add person without name", method: "POST", path: "/persons", status: 400, body: map[string]any{"org_id": 1}},
		{name: "add person unknown organization", method: "POST", path: "/persons", status: 400, body: map[string]any{"name": "x", "org_id": 999999}},
		{name: "add person email without value", method: "POST", path: "/persons", status: 400, body: map[string]any{"name": "x", "emails": []any{map[string]any{"label": "work"}}}},
		{name: "add person bad phone label", method: "POST", path: "/persons", status: 400, body: map[string]any{"name": "x", "phones": []any{map[string]any{"value": "1", "label": "fax"}}}},
		{name: "add person emails not a list", method: "POST", path: "/persons", status: 400, body: map[string]any{"name": "x", "emails": "a@b.c"}, specRejects: true},
		{name: "update person", method: "PATCH", path: "/persons/5", status: 200, body: map[string]any{"org_id": 2, "phones": []any{}, "emails": []any{map[string]any{"value": "new@example.com"}}}},
		{name: "update person unknown", method: "PATCH", path: "/persons/999999", status: 404, body: map[string]any{"name": "x"}},
		{name: "search persons", method: "GET", path: "/persons/search?term=contoso.com", status: 200},
		{name: "search persons of organization", method: "GET", path: "/persons/search?term=an&organization_id=1&fields=name&limit=3", status: 200},
		{name: "search persons exact", method: "GET", path: "/persons/search?term=C&exact_match=true&include_fields=person.picture", status: 200},
		{name: "search persons short term", method: "GET", path: "/persons/search?term=C", status: 400},
		{name: "search persons bad field", method: "GET", path: "/persons/search?term=Jana&fields=title", status: 400, specRejects: true},
		{name: "search persons bad cursor", method: "GET", path: "/persons/search?term=Jana&cursor=not-a-cursor", status: 400},
	}
	specSuite{router: router, errSchema: errorSchema(t, doc), base: "/api/v2", covers: []string{
		"POST /organizations", "PATCH /organizations/{id}", "GET /organizations/search",
		"POST /persons", "PATCH /persons/{id}", "GET /persons/search", "GET /organizations/{id}",
	}}.run(t, cases)
}

func TestAddAndUpdateOrganization(t *testing.T) {
	e := newEnv(t, Options{})
	before := len(e.all("/api/v2/organizations"))

	o := e.do("POST", "/api/v2/organizations", map[string]any{"name": "  Datum Retail GmbH ",
		"address": map[string]any{"street_number": "68", "route": "Friedrichstraße", "postal_code": "10117", "locality": "Berlin", "country": "Germany"}}).obj(t)
	id := num(o["id"])
	require.Equal(t, before+1, id, "ids follow the seeded ones")
	require.Equal(t, "Datum Retail GmbH", o["name"])
	require.Equal(t, 1, num(o["owner_id"]), "the token's user owns it")
	require.Equal(t, 3, num(o["visible_to"]))
	require.Equal(t, "2026-09-15T12:00:00Z", o["add_time"])
	addr := o["address"].(map[string]any)
	require.Equal(t, "68 Friedrichstraße, 10117 Berlin, Germany", addr["value"], "composed from its parts")
	require.Equal(t, "Berlin", addr["locality"])
	require.Equal(t, []any{}, o["label_ids"])
	require.Equal(t, o, e.do("GET", "/api/v2/organizations/"+strconv.Itoa(id), nil).obj(t))
	require.Len(t, e.all("/api/v2/organizations"), before+1)

	e.clock.Advance(time.Hour)
	u := e.do("PATCH", "/api/v2/organizations/"+strconv.Itoa(id), map[string]any{
		"owner_id": 4, "address": map[string]any{"value": "Unter den Linden 1, Berlin"}, "employee_count": 1200, "label_ids": []int{2, 3}}).obj(t)
	require.Equal(t, "Datum Retail GmbH", u["name"], "what the body leaves out stays")
	require.Equal(t, 4, num(u["owner_id"]))
	require.Equal(t, "Unter den Linden 1, Berlin", u["address"].(map[string]any)["value"])
	require.Equal(t, 1200, num(u["employee_count"]))
	require.Equal(t, []any{2.0, 3.0}, u["label_ids"])
	require.Equal(t, "2026-09-15T12:00:00Z", u["add_time"])
	require.Equal(t, "2026-09-15T13:00:00Z", u["update_time"])
	cleared := e.do("PATCH", "/api/v2/organizations/"+strconv.Itoa(id), map[string]any{"address": nil, "employee_count": nil}).obj(t)
	require.Nil(t, cleared["address"])
	require.Nil(t, cleared["employee_count"])

	for name, c := range map[string]struct {
		body any
		msg  string
	}{
		"no name":        {map[string]any{"owner_id": 1}, "'name' is required"},
		"null name":      {map[string]any{"name": nil}, "'name' is required"},
		"blank name":     {map[string]any{"name": " "}, "'name' must not be empty"},
		"unknown owner":  {map[string]any{"name": "x", "owner_id": 7}, "User with id 7 does not exist"},
		"bad visibility": {map[string]any{"name": "x", "visible_to": 2}, "'visible_to' must be one of"},
		"custom field":   {map[string]any{"name": "x", "custom_fields": map[string]any{"k": "v"}}, "Custom field 'k' does not exist"},
		"bad website":    {map[string]any{"name": "x", "website": 5}, "'website' must be a string"},
		"not json":       {"{", "Invalid JSON"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, e.do("POST", "/api/v2/organizations", c.body).failed(t, http.StatusBadRequest), c.msg)
		})
	}
	require.Equal(t, "Entity was not found", e.do("PATCH", "/api/v2/organizations/999999", map[string]any{"name": "x"}).failed(t, http.StatusNotFound))
	require.Len(t, e.all("/api/v2/organizations"), before+1, "a refused write changes nothing")
	// A refused update leaves the record as it was.
	e.do("PATCH", "/api/v2/organizations/"+strconv.Itoa(id), map[string]any{"name": "changed", "owner_id": 99}).failed(t, http.StatusBadRequest)
	require.Equal(t, "Datum Retail GmbH", e.do("GET", "/api/v2/organizations/"+strconv.Itoa(id), nil).obj(t)["name"])
}

func TestAddAndUpdatePerson(t *testing.T) {
	e := newEnv(t, Options{})
	p := e.do("POST", "/api/v2/persons", map[string]any{"name": " Jana  van der Berg ", "org_id": 2, "owner_id": 5,
		"emails": []any{map[string]any{"value": "jana@home.example", "label": "home"}, map[string]any{"value": "jana@fabrikam.com", "primary": true}},
		"phones": []any{map[string]any{"value": "+49 30 1234 5678", "label": "mobile"}}}).obj(t)
	id := strconv.Itoa(num(p["id"]))
	require.Equal(t, 101, num(p["id"]))
	require.Equal(t, "Jana van der Berg", p["name"])
	require.Equal(t, "Jana", p["first_name"])
	require.Equal(t, "van der Berg", p["last_name"])
	require.Equal(t, 2, num(p["org_id"]))
	require.Equal(t, 5, num(p["owner_id"]))
	require.Equal(t, []any{
		map[string]any{"value": "jana@home.example", "primary": false, "label": "home"},
		map[string]any{"value": "jana@fabrikam.com", "primary": true, "label": "work"},
	}, p["emails"], "the one marked primary is; labels default to work")
	require.Equal(t, []any{map[string]any{"value": "+49 30 1234 5678", "primary": true, "label": "mobile"}}, p["phones"], "a list without a primary: the first")
	require.Equal(t, p, e.do("GET", "/api/v2/persons/"+id, nil).obj(t))
	found := false
	for _, q := range e.all("/api/v2/persons?org_id=2") {
		found = found || num(q["id"]) == 101
	}
	require.True(t, found, "listed among the organization's persons")

	single := e.do("POST", "/api/v2/persons", map[string]any{"name": "Cher"}).obj(t)
	require.Equal(t, "Cher", single["name"])
	require.Equal(t, "", single["last_name"])
	require.Nil(t, single["org_id"])
	require.Equal(t, []any{}, single["emails"])

	e.clock.Advance(time.Minute)
	u := e.do("PATCH", "/api/v2/persons/"+id, map[string]any{"name": "Jana Berg", "org_id": nil,
		"emails": []any{map[string]any{"value": "jana.berg@example.com"}}, "phones": nil}).obj(t)
	require.Equal(t, "Jana Berg", u["name"])
	require.Nil(t, u["org_id"])
	require.Equal(t, []any{map[string]any{"value": "jana.berg@example.com", "primary": true, "label": "work"}}, u["emails"], "the list is replaced")
	require.Equal(t, []any{}, u["phones"])
	require.Equal(t, 5, num(u["owner_id"]))
	require.Equal(t, "2026-09-15T12:01:00Z", u["update_time"])

	for name, c := range map[string]struct {
		body any
		msg  string
	}{
		"no name":           {map[string]any{"org_id": 1}, "'name' is required"},
		"unknown org":       {map[string]any{"name": "x", "org_id": 4242}, "Organization with id 4242 does not exist"},
		"org not a number":  {map[string]any{"name": "x", "org_id": "1"}, "'org_id' must be an integer"},
		"email no value":    {map[string]any{"name": "x", "emails": []any{map[string]any{"value": " "}}}, "non-empty value"},
		"email bad label":   {map[string]any{"name": "x", "emails": []any{map[string]any{"value": "a@b.c", "label": "mobile"}}}, "work, home, other"},
		"phones not a list": {map[string]any{"name": "x", "phones": "123"}, "'phones' must be an array"},
		"custom field":      {map[string]any{"name": "x", "custom_fields": map[string]any{"k": 1}}, "personFields"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, e.do("POST", "/api/v2/persons", c.body).failed(t, http.StatusBadRequest), c.msg)
		})
	}
	require.Equal(t, "Entity was not found", e.do("PATCH", "/api/v2/persons/999999", map[string]any{"name": "x"}).failed(t, http.StatusNotFound))
	require.Contains(t, e.do("PATCH", "/api/v2/persons/abc", map[string]any{"name": "x"}).failed(t, http.StatusBadRequest), "positive integer")
}

// search walks every page of a v2 search and returns the items, best first.
func (e *env) search(path string, limit int) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(e.t, pages, 100)
		p := path + "&limit=" + strconv.Itoa(limit)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.do("GET", p, nil)
		for _, it := range r.obj(e.t)["items"].([]any) {
			out = append(out, it.(map[string]any))
		}
		if cursor = r.nextCursor(e.t); cursor == "" {
			return out
		}
	}
}

func itemIDs(items []map[string]any) []int {
	var ids []int
	for _, it := range items {
		ids = append(ids, num(it["item"].(map[string]any)["id"]))
	}
	return ids
}

func TestSearchPersons(t *testing.T) {
	e := newEnv(t, Options{})
	p := e.do("POST", "/api/v2/persons", map[string]any{"name": "Jana van der Berg", "org_id": 2,
		"emails": []any{map[string]any{"value": "jana.vdberg@fabrikam.com"}},
		"phones": []any{map[string]any{"value": "+49 (30) 1234-5678"}}}).obj(t)
	id := num(p["id"])

	byName := e.search("/api/v2/persons/search?term=van%20der%20Berg", 10)
	require.Equal(t, []int{id}, itemIDs(byName))
	item := byName[0]["item"].(map[string]any)
	require.Equal(t, "person", item["type"])
	require.Equal(t, []any{"jana.vdberg@fabrikam.com"}, item["emails"])
	require.Equal(t, []any{"+49 (30) 1234-5678"}, item["phones"])
	require.Equal(t, 1.0, item["owner"].(map[string]any)["id"])
	org := item["organization"].(map[string]any)
	require.Equal(t, 2, num(org["id"]))
	require.Equal(t, e.do("GET", "/api/v2/organizations/2", nil).obj(t)["name"], org["name"])

	require.Contains(t, itemIDs(e.search("/api/v2/persons/search?term=vdberg@fabr", 10)), id, "by email")
	require.Equal(t, []int{id}, itemIDs(e.search("/api/v2/persons/search?term=30%201234%205678&fields=phone", 10)), "a phone by its digits")
	require.Empty(t, e.search("/api/v2/persons/search?term=van%20der%20Berg&fields=email,phone", 10), "only the fields asked for")
	require.Empty(t, e.search("/api/v2/persons/search?term=jana.vdberg&exact_match=true", 10), "exact: the whole value")
	require.Equal(t, []int{id}, itemIDs(e.search("/api/v2/persons/search?term=JANA.VDBERG@FABRIKAM.COM&exact_match=true", 10)), "not case sensitive")

	// Every seeded person at Contoso is found through the email domain, on one page or many.
	all := e.search("/api/v2/persons/search?term=contosoltd.com&fields=email", 500)
	paged := e.search("/api/v2/persons/search?term=contosoltd.com&fields=email", 1)
	require.NotEmpty(t, all)
	require.Equal(t, itemIDs(all), itemIDs(paged))
	for _, it := range all {
		require.Equal(t, "Contoso Ltd", it["item"].(map[string]any)["organization"].(map[string]any)["name"])
	}
	contoso := num(all[0]["item"].(map[string]any)["organization"].(map[string]any)["id"])
	require.Equal(t, itemIDs(all), itemIDs(e.search("/api/v2/persons/search?term=contosoltd.com&organization_id="+strconv.Itoa(contoso), 10)))
	require.Empty(t, e.search("/api/v2/persons/search?term=contosoltd.com&fields=email&organization_id="+strconv.Itoa(contoso+1), 10), "filtered by organization")

	e.do("POST", "/v1/notes", map[string]any{"content": "<p>Prefers <b>Signal</b> messages</p>", "person_id": id}).obj(t)
	byNote := e.search("/api/v2/persons/search?term=signal&fields=notes", 10)
	require.Equal(t, []int{id}, itemIDs(byNote))
	require.Equal(t, []any{"Prefers Signal messages"}, byNote[0]["item"].(map[string]any)["notes"])

	require.Contains(t, e.do("GET", "/api/v2/persons/search?term=J", nil).failed(t, http.StatusBadRequest), "at least 2 characters")
	require.Contains(t, e.do("GET", "/api/v2/persons/search", nil).failed(t, http.StatusBadRequest), "'term' is required")
	require.Contains(t, e.do("GET", "/api/v2/persons/search?term=Jana&organization_id=x", nil).failed(t, http.StatusBadRequest), "'organization_id' must be an integer")
	require.Contains(t, e.do("GET", "/api/v2/persons/search?term=Jana&include_fields=person.avatar", nil).failed(t, http.StatusBadRequest), "include_fields")
}

func TestSearchOrganizationsByField(t *testing.T) {
	e := newEnv(t, Options{})
	o := e.do("POST", "/api/v2/organizations", map[string]any{"name": "Datum Retail GmbH", "address": map[string]any{"value": "Kurfürstendamm 21, Berlin"}}).obj(t)
	id := num(o["id"])

	require.Equal(t, []int{id}, itemIDs(e.search("/api/v2/organizations/search?term=Datum%20Retail", 10)))
	require.Equal(t, []int{id}, itemIDs(e.search("/api/v2/organizations/search?term=Kurf%C3%BCrstendamm", 10)), "by address")
	require.Empty(t, e.search("/api/v2/organizations/search?term=Kurf%C3%BCrstendamm&fields=name", 10))
	require.Equal(t, []int{id}, itemIDs(e.search("/api/v2/organizations/search?term=datum%20retail%20gmbh&exact_match=true&fields=name", 10)))
	require.Empty(t, e.search("/api/v2/organizations/search?term=Datum&exact_match=true", 10))

	e.do("POST", "/v1/notes", map[string]any{"content": "Wants a Fabric proof of concept", "org_id": id}).obj(t)
	hits := e.search("/api/v2/organizations/search?term=fabric%20proof&fields=notes", 10)
	require.Equal(t, []int{id}, itemIDs(hits))
	item := hits[0]["item"].(map[string]any)
	require.Equal(t, []any{"Wants a Fabric proof of concept"}, item["notes"])
	require.Equal(t, "Kurfürstendamm 21, Berlin", item["address"])
	require.Equal(t, 3.0, item["visible_to"])

	// Scores rank a whole-name match above a partial one.
	e.do("POST", "/api/v2/organizations", map[string]any{"name": "Datum"}).obj(t)
	ranked := e.search("/api/v2/organizations/search?term=datum&fields=name", 10)
	require.GreaterOrEqual(t, len(ranked), 2)
	require.Equal(t, "Datum", ranked[0]["item"].(map[string]any)["name"])
	require.Greater(t, ranked[0]["result_score"].(float64), ranked[1]["result_score"].(float64))
}

// Every route of organizations, persons and notes arrives at the gateway
// and is counted as the other routes are: recorded per credential, refused
// past EnforceBudget, limited by the burst window, with its token cost.
func TestPartyRoutesSpendTheBudget(t *testing.T) {
	routes := []struct {
		method, path string
		body         any
		cost         string
	}{
		{"POST", "/api/v2/organizations", map[string]any{"name": "Budgeted"}, "5"},
		{"PATCH", "/api/v2/organizations/1", map[string]any{"name": "Contoso Ltd"}, "5"},
		{"GET", "/api/v2/organizations/search?term=contoso", nil, "20"},
		{"POST", "/api/v2/persons", map[string]any{"name": "Budgeted Person"}, "5"},
		{"PATCH", "/api/v2/persons/1", map[string]any{"job_title": "CIO"}, "5"},
		{"GET", "/api/v2/persons/search?term=contoso", nil, "20"},
		{"GET", "/v1/notes?deal_id=1", nil, "20"},
		{"POST", "/v1/notes", map[string]any{"content": "budgeted", "deal_id": 1}, "10"},
	}
	limit := BudgetLimit{Limit: len(routes), Window: time.Minute}
	e := newEnv(t, Options{EnforceBudget: limit, Burst: 100})
	for _, r := range routes {
		rep := e.do(r.method, r.path, r.body)
		rep.ok(t)
		require.Equal(t, r.cost, rep.header.Get("x-token-cost"), r.path)
		require.NotEmpty(t, rep.header.Get("x-ratelimit-remaining"), r.path)
	}
	require.Len(t, e.srv.Arrivals(DefaultToken), len(routes))
	for _, r := range routes {
		rep := e.do(r.method, r.path, r.body)
		require.Equal(t, http.StatusTooManyRequests, rep.status, "%s %s: %s", r.method, r.path, rep.raw)
		require.NotEmpty(t, rep.header.Get("Retry-After"))
	}
	require.Equal(t, len(routes), e.srv.GatewayRefusals(DefaultToken))
	require.Len(t, e.srv.Arrivals(DefaultToken), 2*len(routes))

	// Pipedrive's own burst limit applies to them too.
	burst := newEnv(t, Options{Burst: 2, BurstWindow: 2 * time.Second})
	burst.do("GET", "/v1/notes", nil).ok(t)
	burst.do("POST", "/api/v2/persons", map[string]any{"name": "x"}).ok(t)
	require.Equal(t, "Request over limit", burst.do("GET", "/api/v2/persons/search?term=xy", nil).failed(t, http.StatusTooManyRequests))
	require.Equal(t, "Request over limit", burst.do("POST", "/v1/notes", map[string]any{"content": "x", "deal_id": 1}).failed(t, http.StatusTooManyRequests))
	// A refused v1 request answers in v1's envelope.
	require.Equal(t, 429, num(burst.do("GET", "/v1/notes", nil).body["errorCode"]))
	require.True(t, strings.HasPrefix(burst.do("GET", "/v1/notes", nil).header.Get("Content-Type"), "application/json"))
}
