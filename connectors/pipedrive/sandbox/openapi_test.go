package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"
)

// The official Pipedrive API v2 spec omits `nullable: true` on fields that the live API sends
// as null whenever the value is absent (a deal without a person, an open deal's won_time, an
// activity without a time, the last page's next_cursor, ...). specNullable lists exactly
// those fields, per operation, and only they are relaxed before validation.
var specNullable = map[string][]string{
	"getDeals":           dealNullable,
	"getDeal":            dealNullable,
	"addDeal":            dealNullable,
	"updateDeal":         dealNullable,
	"getActivities":      activityNullable,
	"getActivity":        activityNullable,
	"addActivity":        activityNullable,
	"getPersons":         personNullable,
	"getPerson":          personNullable,
	"getOrganizations":   addressNullable,
	"getOrganization":    addressNullable,
	"searchDeals":        {"address"},
	"searchOrganization": nil,
	"getPipelines":       nil,
	"getStages":          nil,
	"getDealFields":      nil,
}

var (
	dealNullable     = []string{"person_id", "org_id", "archive_time", "stage_change_time", "won_time", "lost_time", "expected_close_date"}
	activityNullable = []string{"deal_id", "lead_id", "person_id", "org_id", "project_id", "due_date", "due_time", "duration",
		"marked_as_done_time", "location", "conference_meeting_client", "conference_meeting_url", "conference_meeting_id",
		"public_description", "priority", "note"}
	personNullable  = []string{"org_id", "picture_id", "notes", "birthday", "postal_address", "admin_area_level_2", "sublocality", "subpremise"}
	addressNullable = []string{"admin_area_level_2", "sublocality", "subpremise"}
)

// loadSpec loads testdata/openapi-v2.yaml (no external refs) and applies the nullable fixes.
func loadSpec(t *testing.T, relax bool) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromFile("testdata/openapi-v2.yaml")
	require.NoError(t, err)
	require.NoError(t, doc.Validate(loader.Context))
	if relax {
		for _, item := range doc.Paths.Map() {
			for _, op := range item.Operations() {
				names, listed := specNullable[op.OperationID]
				if !listed {
					continue
				}
				resp := op.Responses.Status(http.StatusOK)
				require.NotNil(t, resp, op.OperationID)
				schema := resp.Value.Content.Get("application/json").Schema
				markNullable(schema, append([]string{"next_cursor"}, names...), map[*openapi3.Schema]bool{})
			}
		}
	}
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	return doc, router
}

// markNullable sets nullable on the named properties anywhere inside ref.
func markNullable(ref *openapi3.SchemaRef, names []string, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	for name, prop := range s.Properties {
		for _, n := range names {
			if n == name && prop.Value != nil {
				prop.Value.Nullable = true
			}
		}
		markNullable(prop, names, seen)
	}
	for _, sub := range append(append(append([]*openapi3.SchemaRef{s.Items}, s.AllOf...), s.OneOf...), s.AnyOf...) {
		markNullable(sub, names, seen)
	}
}

// errorSchema is the spec's own error envelope (declared on GET
// /deals/{id}/convert/status/{conversion_id} as its 404). None of the operations the sandbox
// serves declares an error response, so their error bodies are checked against this schema.
func errorSchema(t *testing.T, doc *openapi3.T) *openapi3.Schema {
	t.Helper()
	op := doc.Paths.Value("/deals/{id}/convert/status/{conversion_id}").Get
	require.NotNil(t, op)
	resp := op.Responses.Status(http.StatusNotFound)
	require.NotNil(t, resp)
	return resp.Value.Content.Get("application/json").Schema.Value
}

type specCase struct {
	name   string
	method string
	path   string // relative to the spec version's prefix (see specSuite.base)
	body   any
	status int
	// specRejects marks a request that the spec itself already rejects (for example a body
	// without the required title); the test asserts that the spec validator agrees.
	specRejects bool
}

func specCases() []specCase {
	return []specCase{
		{name: "list deals", method: "GET", path: "/deals", status: 200},
		{name: "list deals filtered", method: "GET", path: "/deals?status=won&sort_by=update_time&sort_direction=desc&limit=5&pipeline_id=1", status: 200},
		{name: "list deals by owner since", method: "GET", path: "/deals?owner_id=2&updated_since=2025-06-01T00:00:00Z&updated_until=2026-09-01T00:00:00Z", status: 200},
		{name: "list deals last page", method: "GET", path: "/deals?ids=1,2,3", status: 200},
		{name: "list deals bad limit", method: "GET", path: "/deals?limit=501", status: 400},
		{name: "list deals bad cursor", method: "GET", path: "/deals?cursor=not-a-cursor", status: 400},
		{name: "list deals bad status", method: "GET", path: "/deals?status=closed", status: 400, specRejects: true},
		{name: "list deals bad owner", method: "GET", path: "/deals?owner_id=abc", status: 400, specRejects: true},
		{name: "get deal", method: "GET", path: "/deals/1", status: 200},
		{name: "get deal unknown", method: "GET", path: "/deals/999999", status: 404},
		{name: "add deal", method: "POST", path: "/deals", status: 200, body: map[string]any{
			"title": "Contoso Ltd — Copilot expansion", "value": 125000, "currency": "USD", "pipeline_id": 2,
			"person_id": 1, "org_id": 1, "expected_close_date": "2026-12-31", "visible_to": 3}},
		{name: "add deal minimal", method: "POST", path: "/deals", status: 200, body: map[string]any{"title": "Walk-in lead"}},
		{name: "add deal won", method: "POST", path: "/deals", status: 200, body: map[string]any{"title": "Signed at kickoff", "status": "won", "stage_id": 6}},
		{name: "add deal without title", method: "POST", path: "/deals", status: 400, body: map[string]any{"value": 10}, specRejects: true},
		{name: "add deal stage outside pipeline", method: "POST", path: "/deals", status: 400, body: map[string]any{"title": "x", "pipeline_id": 2, "stage_id": 1}},
		{name: "add deal bad type", method: "POST", path: "/deals", status: 400, body: map[string]any{"title": "x", "value": "lots"}, specRejects: true},
		{name: "update deal won", method: "PATCH", path: "/deals/2", status: 200, body: map[string]any{"status": "won"}},
		{name: "update deal lost", method: "PATCH", path: "/deals/3", status: 200, body: map[string]any{"status": "lost", "lost_reason": "Budget cut"}},
		{name: "update deal stage", method: "PATCH", path: "/deals/4", status: 200, body: map[string]any{"stage_id": 9, "expected_close_date": "2027-01-15"}},
		{name: "update deal reopen", method: "PATCH", path: "/deals/3", status: 200, body: map[string]any{"status": "open"}},
		{name: "update deal lost reason on open", method: "PATCH", path: "/deals/5", status: 400, body: map[string]any{"status": "open", "lost_reason": "nope"}},
		{name: "update deal bad date", method: "PATCH", path: "/deals/5", status: 400, body: map[string]any{"expected_close_date": "31/12/2026"}, specRejects: true},
		{name: "update deal unknown", method: "PATCH", path: "/deals/999999", status: 404, body: map[string]any{"title": "x"}},
		{name: "delete deal", method: "DELETE", path: "/deals/6", status: 200},
		{name: "delete deal unknown", method: "DELETE", path: "/deals/999999", status: 404},
		{name: "list deleted deals", method: "GET", path: "/deals?status=deleted", status: 200},
		{name: "search deals", method: "GET", path: "/deals/search?term=Contoso%20Ltd", status: 200},
		{name: "search deals filtered", method: "GET", path: "/deals/search?term=migration&fields=title&status=open&limit=3", status: 200},
		{name: "search deals exact", method: "GET", path: "/deals/search?term=x&exact_match=true", status: 200},
		{name: "search deals by org", method: "GET", path: "/deals/search?term=Fabrikam&organization_id=2", status: 200},
		{name: "search deals short term", method: "GET", path: "/deals/search?term=c", status: 400},
		{name: "list deal fields", method: "GET", path: "/dealFields", status: 200},
		{name: "list deal fields page with namespaces", method: "GET", path: "/dealFields?limit=5&include_fields=ui_visibility,important_fields,required_fields", status: 200},
		{name: "list deal fields last page", method: "GET", path: "/dealFields?limit=500&include_fields=important_fields", status: 200},
		{name: "list deal fields bad limit", method: "GET", path: "/dealFields?limit=501", status: 400},
		{name: "list deal fields bad cursor", method: "GET", path: "/dealFields?cursor=xyz", status: 400},
		{name: "list deal fields bad namespace", method: "GET", path: "/dealFields?include_fields=everything", status: 400, specRejects: true},
		{name: "get deal some custom fields with labels", method: "GET", path: "/deals/1?custom_fields=" + cfCoSellMotion + "," + cfSolutionAreas + "," + cfAzureACR + "&include_option_labels=true", status: 200},
		{name: "list deals with option labels", method: "GET", path: "/deals?pipeline_id=2&limit=20&include_option_labels=true", status: 200},
		{name: "list deals unknown custom field key", method: "GET", path: "/deals?custom_fields=title", status: 400},
		{name: "list deals bad option labels flag", method: "GET", path: "/deals?include_option_labels=maybe", status: 400, specRejects: true},
		{name: "add deal with custom fields", method: "POST", path: "/deals", status: 200, body: map[string]any{
			"title": "Fabrikam Inc — Azure landing zone", "pipeline_id": 2, "custom_fields": map[string]any{
				cfReferralID: "4b0c9a57-0f7e-4d3a-9c61-5f2e8a1b7c44", cfCoSellMotion: optJoint, cfSolutionAreas: []int{31, 33},
				cfAzureACR: map[string]any{"value": 8000, "currency": "USD"}, cfSubmissionDate: "2026-09-10", cfLicensedSeats: 120}}},
		{name: "add deal unknown custom field", method: "POST", path: "/deals", status: 400, body: map[string]any{
			"title": "x", "custom_fields": map[string]any{"ffffffffffffffffffffffffffffffffffffffff": "y"}}},
		{name: "update deal custom fields", method: "PATCH", path: "/deals/7", status: 200, body: map[string]any{
			"custom_fields": map[string]any{cfMicrosoftSell: "Kwame Mensah", cfSolutionAreas: nil, cfCoSellMotion: optPartnerLed}}},
		{name: "update deal empty set", method: "PATCH", path: "/deals/7", status: 400, body: map[string]any{
			"custom_fields": map[string]any{cfSolutionAreas: []int{}}}},
		{name: "list pipelines", method: "GET", path: "/pipelines", status: 200},
		{name: "get pipeline", method: "GET", path: "/pipelines/2", status: 200},
		{name: "get pipeline unknown", method: "GET", path: "/pipelines/99", status: 404},
		{name: "list stages", method: "GET", path: "/stages?limit=4", status: 200},
		{name: "list stages of pipeline", method: "GET", path: "/stages?pipeline_id=2&sort_by=order_nr", status: 200},
		{name: "get stage", method: "GET", path: "/stages/3", status: 200},
		{name: "get stage unknown", method: "GET", path: "/stages/99", status: 404},
		{name: "list activities", method: "GET", path: "/activities", status: 200},
		{name: "list activities filtered", method: "GET", path: "/activities?owner_id=1&done=true&sort_by=due_date&sort_direction=desc&limit=10", status: 200},
		{name: "list activities of deal", method: "GET", path: "/activities?deal_id=10&include_fields=attendees", status: 200},
		{name: "get activity", method: "GET", path: "/activities/1", status: 200},
		{name: "get activity unknown", method: "GET", path: "/activities/999999", status: 404},
		{name: "add activity", method: "POST", path: "/activities", status: 200, body: map[string]any{
			"subject": "Co-sell sync with Microsoft", "type": "meeting", "deal_id": 1, "due_date": "2026-09-20",
			"due_time": "15:00", "duration": "01:00", "note": "Bring the referral id"}},
		{name: "add activity bad type", method: "POST", path: "/activities", status: 400, body: map[string]any{"subject": "x", "type": "carrier_pigeon"}},
		{name: "list persons", method: "GET", path: "/persons", status: 200},
		{name: "list persons of org", method: "GET", path: "/persons?org_id=1", status: 200},
		{name: "get person", method: "GET", path: "/persons/1", status: 200},
		{name: "get person unknown", method: "GET", path: "/persons/999999", status: 404},
		{name: "list organizations", method: "GET", path: "/organizations?sort_by=update_time", status: 200},
		{name: "get organization", method: "GET", path: "/organizations/1", status: 200},
		{name: "get organization unknown", method: "GET", path: "/organizations/999999", status: 404},
		{name: "search organizations", method: "GET", path: "/organizations/search?term=Northwind", status: 200},
		{name: "search organizations exact", method: "GET", path: "/organizations/search?term=Woodgrove%20Bank&exact_match=true&fields=name", status: 200},
	}
}

func authFunc(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName == "api_key" && in.RequestValidationInput.Request.Header.Get("x-api-token") != "" {
		return nil
	}
	return errors.New("no credentials for " + in.SecuritySchemeName)
}

// specRequest rebuilds a request against the spec's server URL so the router can match it;
// base is the path prefix of the spec's version (/api/v2 or /v1).
func specRequest(t *testing.T, base string, c specCase, body []byte) *http.Request {
	t.Helper()
	u, err := url.Parse("https://api.pipedrive.com" + base + c.path)
	require.NoError(t, err)
	req, err := http.NewRequest(c.method, u.String(), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-api-token", DefaultToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func TestSpecConformance(t *testing.T) {
	doc, router := loadSpec(t, true)
	specSuite{router: router, errSchema: errorSchema(t, doc), base: "/api/v2", covers: []string{
		// Every v2 endpoint of the sandbox.
		"GET /deals", "POST /deals", "GET /deals/{id}", "PATCH /deals/{id}", "DELETE /deals/{id}", "GET /deals/search", "GET /dealFields",
		"GET /pipelines", "GET /pipelines/{id}", "GET /stages", "GET /stages/{id}",
		"GET /activities", "GET /activities/{id}", "POST /activities",
		"GET /persons", "GET /persons/{id}", "GET /organizations", "GET /organizations/{id}", "GET /organizations/search",
	}}.run(t, specCases())
}

// specSuite is how a table of spec cases is checked.
type specSuite struct {
	router    routers.Router
	errSchema *openapi3.Schema // the error envelope
	base      string           // the path prefix of the spec's version: /api/v2 or /v1
	covers    []string         // routes ("PATCH /deals/{id}") some case must reach
	// onError checks more of an error reply; it may be nil.
	onError func(t *testing.T, c specCase, r reply)
}

// run sends each case to one sandbox, in a subtest of its own, and checks
// the status, the request against the spec (which must refuse it when
// specRejects says so) and the reply against the operation's response, or,
// for an error, against the error envelope with Pipedrive's 404 message.
func (s specSuite) run(t *testing.T, cases []specCase) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var reqBody []byte
			var sent any
			if c.body != nil {
				var err error
				reqBody, err = json.Marshal(c.body)
				require.NoError(t, err)
				sent = string(reqBody)
			}
			r := e.do(c.method, s.base+c.path, sent)
			require.Equal(t, c.status, r.status, "body: %s", r.raw)

			vreq := specRequest(t, s.base, c, reqBody)
			route, params, err := s.router.FindRoute(vreq)
			require.NoError(t, err)
			covered[route.Method+" "+route.Path] = true
			in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: authFunc, MultiError: true}}
			if reqErr := openapi3filter.ValidateRequest(ctx, in); c.specRejects {
				require.Error(t, reqErr, "the spec accepts a request the sandbox rejects")
			} else {
				require.NoError(t, reqErr)
			}
			if r.status < 400 {
				require.NoError(t, validateResponse(ctx, in, r))
				return
			}
			var v any
			require.NoError(t, json.Unmarshal(r.raw, &v))
			require.NoError(t, s.errSchema.VisitJSON(v))
			if msg := r.failed(t, c.status); c.status == http.StatusNotFound {
				require.Equal(t, "Entity was not found", msg)
			}
			if s.onError != nil {
				s.onError(t, c, r)
			}
		})
	}
	for _, want := range s.covers {
		require.True(t, covered[want], "not covered: %s", want)
	}
}

func validateResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, r reply) error {
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.raw)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// The validation above can fail: a response that breaks the spec is caught, and so is the
// unrelaxed spec against the nulls the live API sends.
func TestSpecConformanceCanFail(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	c := specCase{method: "GET", path: "/deals/1"}
	r := e.do("GET", "/api/v2/deals/1", nil)
	require.Equal(t, 200, r.status)

	_, router := loadSpec(t, true)
	vreq := specRequest(t, "/api/v2", c, nil)
	route, params, err := router.FindRoute(vreq)
	require.NoError(t, err)
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authFunc}}
	require.NoError(t, validateResponse(ctx, in, r))

	for name, mutate := range map[string]func(map[string]any){
		"value as string":    func(d map[string]any) { d["value"] = "100" },
		"id as string":       func(d map[string]any) { d["id"] = "1" },
		"label_ids not list": func(d map[string]any) { d["label_ids"] = 5 },
		"title null":         func(d map[string]any) { d["title"] = nil },
	} {
		t.Run(name, func(t *testing.T) {
			var body map[string]any
			require.NoError(t, json.Unmarshal(r.raw, &body))
			mutate(body["data"].(map[string]any))
			bad := r
			bad.raw, _ = json.Marshal(body)
			require.Error(t, validateResponse(ctx, in, bad))
		})
	}

	t.Run("deal fields", func(t *testing.T) {
		c := specCase{method: "GET", path: "/dealFields?limit=50"}
		r := e.do("GET", "/api/v2"+c.path, nil)
		require.Equal(t, 200, r.status)
		vreq := specRequest(t, "/api/v2", c, nil)
		route, params, err := router.FindRoute(vreq)
		require.NoError(t, err)
		in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: authFunc}}
		require.NoError(t, validateResponse(ctx, in, r))
		for name, mutate := range map[string]func(map[string]any){
			"unknown field_type":       func(f map[string]any) { f["field_type"] = "checkbox" },
			"missing is_custom_field":  func(f map[string]any) { delete(f, "is_custom_field") },
			"option id not int/string": func(f map[string]any) { f["options"] = []any{map[string]any{"id": true, "label": "x"}} },
			"options not a list":       func(f map[string]any) { f["options"] = "a,b" },
		} {
			t.Run(name, func(t *testing.T) {
				var body map[string]any
				require.NoError(t, json.Unmarshal(r.raw, &body))
				mutate(body["data"].([]any)[0].(map[string]any))
				bad := r
				bad.raw, _ = json.Marshal(body)
				require.Error(t, validateResponse(ctx, in, bad))
			})
		}
	})

	t.Run("undeclared status", func(t *testing.T) {
		bad := r
		bad.status = http.StatusCreated
		require.Error(t, validateResponse(ctx, in, bad))
	})

	t.Run("spec without nullable fixes", func(t *testing.T) {
		// Deal 1's won_time is null unless it was won, so at least one of the listed fields is.
		_, strict := loadSpec(t, false)
		r := e.do("GET", "/api/v2/deals?limit=50", nil)
		c := specCase{method: "GET", path: "/deals?limit=50"}
		vreq := specRequest(t, "/api/v2", c, nil)
		route, params, err := strict.FindRoute(vreq)
		require.NoError(t, err)
		in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: authFunc}}
		err = validateResponse(ctx, in, r)
		require.Error(t, err)
		require.True(t, strings.Contains(fmt.Sprint(err), "null"), "%v", err)
	})
}
