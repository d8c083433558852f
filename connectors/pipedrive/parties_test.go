package pipedrive_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// --- organizations and persons ----------------------------------------------

// sentJSON asserts that the last request sent exactly want as its JSON body.
func sentJSON(t *testing.T, r recorded, want string) {
	t.Helper()
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.JSONEq(t, want, string(r.Body))
}

func TestSearchOrganizationsWith(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	hits, resp, err := e.c.SearchOrganizationsWith(ctx, pipedrive.SearchOrganizationsParams{Term: "Contoso Ltd", Fields: "name", ExactMatch: true, Limit: 5})
	require.NoError(t, err)
	r := e.last()
	assert.Equal(t, "/api/v2/organizations/search", r.Path)
	assert.Equal(t, url.Values{"term": {"Contoso Ltd"}, "fields": {"name"}, "exact_match": {"true"}, "limit": {"5"}}, r.Query)
	require.Len(t, hits, 1)
	assert.Empty(t, resp.NextCursor)
	raw := e.raw("/api/v2/organizations/search", r.Query)["data"].(map[string]any)["items"].([]any)[0].(map[string]any)
	assert.Equal(t, raw["result_score"], hits[0].ResultScore)
	assertDecoded(t, raw["item"].(map[string]any), hits[0].Item)
	assert.NotEmpty(t, hits[0].Item.Address)
	assert.Positive(t, hits[0].Item.Owner.ID)

	// Pages follow the cursor to the end, best hits first, none twice.
	var all []pipedrive.OrganizationSearchResult
	p := pipedrive.SearchOrganizationsParams{Term: "in", Fields: "name", Limit: 4}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 50)
		page, resp, err := e.c.SearchOrganizationsWith(ctx, p)
		require.NoError(t, err)
		assert.Equal(t, p.Cursor, e.last().Query.Get("cursor"), "the cursor is sent back as is")
		all = append(all, page...)
		if resp.NextCursor == "" {
			break
		}
		assert.Len(t, page, 4)
		p.Cursor = resp.NextCursor
	}
	one, _, err := e.c.SearchOrganizationsWith(ctx, pipedrive.SearchOrganizationsParams{Term: "in", Fields: "name", Limit: 500})
	require.NoError(t, err)
	assert.Equal(t, one, all)

	_, _, err = e.c.SearchOrganizationsWith(ctx, pipedrive.SearchOrganizationsParams{Term: "C"})
	assert.Equal(t, "The parameter 'term' must be at least 2 characters long", upstreamErr(t, err, http.StatusBadRequest).Message)
	hits, _, err = e.c.SearchOrganizationsWith(ctx, pipedrive.SearchOrganizationsParams{Term: "C", ExactMatch: true})
	require.NoError(t, err, "one character is enough for an exact match")
	assert.Empty(t, hits)
}

func TestSearchPersons(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	p, err := e.c.GetPerson(ctx, 10)
	require.NoError(t, err)
	require.NotEmpty(t, p.Emails)

	hits, resp, err := e.c.SearchPersons(ctx, pipedrive.SearchPersonsParams{Term: p.Emails[0].Value, Fields: "email", OrganizationID: p.OrgID, Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, resp.NextCursor)
	r := e.last()
	assert.Equal(t, "/api/v2/persons/search", r.Path)
	assert.Equal(t, url.Values{"term": {p.Emails[0].Value}, "fields": {"email"}, "organization_id": {fmt.Sprint(p.OrgID)}, "limit": {"10"}}, r.Query)
	require.Len(t, hits, 1)
	got := hits[0].Item
	assert.Equal(t, p.ID, got.ID)
	assert.Equal(t, p.Name, got.Name)
	assert.Equal(t, []string{p.Emails[0].Value}, got.Emails)
	assert.Equal(t, []string{p.Phones[0].Value}, got.Phones)
	assert.Equal(t, p.OwnerID, got.Owner.ID)
	require.NotNil(t, got.Organization)
	org, err := e.c.GetOrganization(ctx, p.OrgID)
	require.NoError(t, err)
	assert.Equal(t, pipedrive.NamedRef{ID: org.ID, Name: org.Name}, *got.Organization)
	raw := e.raw("/api/v2/persons/search", r.Query)["data"].(map[string]any)["items"].([]any)[0].(map[string]any)
	assertDecoded(t, raw["item"].(map[string]any), got)

	_, _, err = e.c.SearchPersons(ctx, pipedrive.SearchPersonsParams{Term: "Jana", Fields: "title"})
	upstreamErr(t, err, http.StatusBadRequest)
}

func TestAddAndUpdateOrganization(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	o, err := e.c.AddOrganization(ctx, pipedrive.OrganizationInput{
		Name: ptr("Datum Retail GmbH"), OwnerID: ptr(int64(2)), Address: &pipedrive.Address{Value: "Friedrichstraße 68, 10117 Berlin"},
		Website: ptr("https://www.datumretail.de"), EmployeeCount: ptr(int64(900)), VisibleTo: ptr(1),
	})
	require.NoError(t, err)
	r := e.last()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/api/v2/organizations", r.Path)
	assert.Empty(t, r.Query)
	sentJSON(t, r, `{"name":"Datum Retail GmbH","owner_id":2,"address":{"value":"Friedrichstraße 68, 10117 Berlin"},
		"website":"https://www.datumretail.de","employee_count":900,"visible_to":1}`)
	assert.Equal(t, int64(61), o.ID)
	assert.Equal(t, "Datum Retail GmbH", o.Name)
	assert.Equal(t, int64(2), o.OwnerID)
	assert.Equal(t, "Friedrichstraße 68, 10117 Berlin", o.Address.Value)
	assert.Equal(t, testNowWire, o.AddTime)
	assertDecoded(t, e.rawObject("/api/v2/organizations/61"), o)

	u, err := e.c.UpdateOrganization(ctx, o.ID, pipedrive.OrganizationInput{Name: ptr("Datum Retail AG")})
	require.NoError(t, err)
	r = e.last()
	assert.Equal(t, http.MethodPatch, r.Method)
	assert.Equal(t, "/api/v2/organizations/61", r.Path)
	sentJSON(t, r, `{"name":"Datum Retail AG"}`)
	assert.Equal(t, "Datum Retail AG", u.Name)
	assert.Equal(t, o.Website, u.Website, "what is not sent stays")

	_, err = e.c.UpdateOrganization(ctx, 4242, pipedrive.OrganizationInput{Name: ptr("x")})
	var nf *pipedrive.NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, pipedrive.EntityOrganization, nf.Entity)
	assert.Equal(t, int64(4242), nf.ID)
	upstreamErr(t, err, http.StatusNotFound)
	assert.True(t, upstream.RequestSent(err), "a write that got an answer was sent")
	assert.False(t, upstream.OutcomeUnknown(err), "and refused")

	_, err = e.c.AddOrganization(ctx, pipedrive.OrganizationInput{OwnerID: ptr(int64(1))})
	assert.Equal(t, "The field 'name' is required", upstreamErr(t, err, http.StatusBadRequest).Message)
	assert.False(t, errors.As(err, &nf), "a refused create names no missing record")
}

func TestAddAndUpdatePerson(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	p, err := e.c.AddPerson(ctx, pipedrive.PersonInput{
		Name: ptr("Jana van der Berg"), OrgID: ptr(int64(3)),
		Emails: []pipedrive.Contact{{Value: "jana@example.com", Primary: true, Label: "work"}},
		Phones: []pipedrive.Contact{{Value: "+49 30 1234 5678", Label: "mobile"}},
	})
	require.NoError(t, err)
	r := e.last()
	assert.Equal(t, "/api/v2/persons", r.Path)
	sentJSON(t, r, `{"name":"Jana van der Berg","org_id":3,"emails":[{"value":"jana@example.com","primary":true,"label":"work"}],
		"phones":[{"value":"+49 30 1234 5678","primary":false,"label":"mobile"}]}`)
	assert.Equal(t, int64(101), p.ID)
	assert.Equal(t, "Jana", p.FirstName)
	assert.Equal(t, "van der Berg", p.LastName)
	assert.Equal(t, int64(3), p.OrgID)
	assert.Equal(t, []pipedrive.Contact{{Value: "+49 30 1234 5678", Primary: true, Label: "mobile"}}, p.Phones)
	assertDecoded(t, e.rawObject("/api/v2/persons/101"), p)

	u, err := e.c.UpdatePerson(ctx, p.ID, pipedrive.PersonInput{Emails: []pipedrive.Contact{{Value: "jana.berg@example.com", Primary: true}}, OwnerID: ptr(int64(4))})
	require.NoError(t, err)
	r = e.last()
	assert.Equal(t, http.MethodPatch, r.Method)
	assert.Equal(t, "/api/v2/persons/101", r.Path)
	sentJSON(t, r, `{"owner_id":4,"emails":[{"value":"jana.berg@example.com","primary":true}]}`)
	assert.Equal(t, []pipedrive.Contact{{Value: "jana.berg@example.com", Primary: true, Label: "work"}}, u.Emails)
	assert.Equal(t, p.Phones, u.Phones)
	assert.Equal(t, int64(4), u.OwnerID)

	_, err = e.c.UpdatePerson(ctx, 999, pipedrive.PersonInput{Name: ptr("x")})
	var nf *pipedrive.NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, pipedrive.EntityPerson, nf.Entity)
	assert.Equal(t, "pipedrive: person 999 not found", nf.Error())

	_, err = e.c.AddPerson(ctx, pipedrive.PersonInput{Name: ptr("x"), OrgID: ptr(int64(4242))})
	assert.Equal(t, "Organization with id 4242 does not exist", upstreamErr(t, err, http.StatusBadRequest).Message)
}

// The inputs send only what is set.
func TestPartyInputsOmitWhatIsNotSet(t *testing.T) {
	for _, in := range []any{pipedrive.OrganizationInput{}, pipedrive.PersonInput{Emails: []pipedrive.Contact{}}} {
		b, err := json.Marshal(in)
		require.NoError(t, err)
		assert.Equal(t, "{}", string(b))
	}
}
