package pipedrive_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
)

// The co-sell story of organizations and persons: a Partner Center
// referral's customer is not in Pipedrive yet; the agent looks for it,
// creates the organization and its contact, links a new deal to both and
// keeps a note.
func TestAgentAddsAReferralsCustomer(t *testing.T) {
	h := newHarness(t, tools.Policy{})

	var none pdtools.OrganizationList
	h.call("pipedrive_search_organizations", map[string]any{"term": "Datum Retail"}, &none)
	assert.Empty(t, none.Organizations)
	assert.False(t, none.HasMore)

	var org pdtools.Organization
	h.call("pipedrive_add_organization", map[string]any{"name": "Datum Retail GmbH", "address": "Kurfürstendamm 21, 10719 Berlin, Germany",
		"website": "https://www.datumretail.de", "owner_id": 2}, &org)
	assert.Positive(t, org.ID)
	assert.Equal(t, "Datum Retail GmbH", org.Name)
	assert.Equal(t, "Kurfürstendamm 21, 10719 Berlin, Germany", org.Address)
	assert.Equal(t, "https://www.datumretail.de", org.Website)
	assert.Equal(t, int64(2), org.OwnerID)
	assert.Equal(t, "Priya Natarajan", org.OwnerName, "owner names come from the cached users")

	var found pdtools.OrganizationList
	h.call("pipedrive_search_organizations", map[string]any{"term": "datum retail gmbh", "exact_match": true}, &found)
	require.Len(t, found.Organizations, 1)
	assert.Equal(t, pdtools.Organization{ID: org.ID, Name: org.Name, Address: org.Address, OwnerID: 2, OwnerName: "Priya Natarajan"}, found.Organizations[0])
	h.call("pipedrive_search_organizations", map[string]any{"term": "Kurfürstendamm", "fields": []any{"address"}}, &found)
	require.Len(t, found.Organizations, 1, "by address when asked")
	h.call("pipedrive_search_organizations", map[string]any{"term": "Kurfürstendamm"}, &found)
	assert.Empty(t, found.Organizations, "by name only by default")

	var moved pdtools.Organization
	h.call("pipedrive_update_organization", map[string]any{"org_id": org.ID, "owner_id": 3, "website": "https://datumretail.de"}, &moved)
	assert.Equal(t, "Daniel Okafor", moved.OwnerName)
	assert.Equal(t, "https://datumretail.de", moved.Website)
	assert.Equal(t, org.Address, moved.Address, "what is not given stays")
	var got pdtools.Organization
	h.call("pipedrive_get_organization", map[string]any{"org_id": org.ID}, &got)
	assert.Equal(t, moved, got)

	var person pdtools.Person
	h.call("pipedrive_add_person", map[string]any{"name": "Jana van der Berg", "org_id": org.ID,
		"emails": []any{"jana@datumretail.de", "jana.berg@example.com"}, "phones": []any{"+49 30 1234 5678"}}, &person)
	assert.Positive(t, person.ID)
	assert.Equal(t, []string{"jana@datumretail.de", "jana.berg@example.com"}, person.Emails, "the first is primary")
	assert.Equal(t, []string{"+49 30 1234 5678"}, person.Phones)
	assert.Equal(t, org.ID, person.OrgID)
	assert.Equal(t, "Datum Retail GmbH", person.OrgName)
	assert.Equal(t, "Alex Morgan", person.OwnerName, "the token's user by default")

	var people pdtools.PersonList
	h.call("pipedrive_search_persons", map[string]any{"term": "jana@datumretail.de"}, &people)
	require.Len(t, people.Persons, 1)
	assert.Equal(t, pdtools.Person{ID: person.ID, Name: person.Name, Emails: person.Emails, Phones: person.Phones,
		OrgID: org.ID, OrgName: "Datum Retail GmbH", OwnerID: 1, OwnerName: "Alex Morgan"}, people.Persons[0])
	h.call("pipedrive_search_persons", map[string]any{"term": "30 1234", "org_id": org.ID}, &people)
	require.Len(t, people.Persons, 1, "a phone by its digits, within the organization")

	var changed pdtools.Person
	h.call("pipedrive_update_person", map[string]any{"person_id": person.ID, "emails": []any{"j.vanderberg@datumretail.de"}}, &changed)
	assert.Equal(t, []string{"j.vanderberg@datumretail.de"}, changed.Emails, "the list is replaced")
	assert.Equal(t, person.Phones, changed.Phones)
	var reread pdtools.Person
	h.call("pipedrive_get_person", map[string]any{"person_id": person.ID}, &reread)
	assert.Equal(t, changed, reread)

	// The deal for the referral, with its customer: names, no look-ups.
	var deal pdtools.Deal
	h.call("pipedrive_add_deal", map[string]any{"title": "Datum Retail — Fabric analytics", "pipeline_id": 2, "org_id": org.ID, "person_id": person.ID}, &deal)
	assert.Equal(t, "Datum Retail GmbH", deal.OrgName)
	assert.Equal(t, "Jana van der Berg", deal.PersonName)

	var note pdtools.Note
	h.call("pipedrive_add_note", map[string]any{"content": "Referral from Partner Center; Jana is the sponsor.", "deal_id": deal.ID,
		"person_id": person.ID, "pin_to": []any{"deal"}}, &note)
	assert.Equal(t, deal.ID, note.DealID)
	assert.Equal(t, deal.Title, note.DealTitle)
	assert.Equal(t, "Jana van der Berg", note.PersonName)
	assert.Equal(t, []string{"deal"}, note.PinnedTo)
	var notes pdtools.NoteList
	h.call("pipedrive_list_notes", map[string]any{"person_id": person.ID}, &notes)
	require.Len(t, notes.Notes, 1)
	assert.Equal(t, note, notes.Notes[0])
}

// Bad arguments are refused before any upstream call.
func TestPartyValidationSpendsNoUpstreamCalls(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	h.call("pipedrive_list_pipelines", nil, &pdtools.Pipelines{}) // warms the users
	before := h.sandbox.RequestCount()

	cases := []struct {
		tool  string
		args  map[string]any
		field string
		msg   string
	}{
		{"pipedrive_search_organizations", map[string]any{"term": "C"}, "term", "at least 2 characters"},
		{"pipedrive_search_organizations", map[string]any{"term": "  "}, "term", "at least 2 characters"},
		{"pipedrive_search_organizations", map[string]any{"term": "Contoso", "fields": []any{"email"}}, "fields/0", ""},
		{"pipedrive_search_persons", map[string]any{"term": "J"}, "term", "1 with exact_match"},
		{"pipedrive_search_persons", map[string]any{"term": "Jana", "limit": 101}, "limit", ""},
		{"pipedrive_get_organization", map[string]any{"org_id": 0}, "org_id", ""},
		{"pipedrive_add_organization", map[string]any{"name": " "}, "name", "blank"},
		{"pipedrive_add_organization", map[string]any{"name": "X", "website": "www.x .com"}, "website", "without spaces"},
		{"pipedrive_add_organization", map[string]any{"name": "X", "custom_fields": map[string]any{}}, "", "custom_fields"},
		{"pipedrive_update_organization", map[string]any{"org_id": 1}, "", "nothing to change"},
		{"pipedrive_update_organization", map[string]any{"org_id": 1, "name": " "}, "name", "blank"},
		{"pipedrive_add_person", map[string]any{"name": "X", "emails": []any{"not an email"}}, "emails", "emails[0]"},
		{"pipedrive_add_person", map[string]any{"name": "X", "emails": []any{"Jana <jana@x.de>"}}, "emails", "not an email address"},
		{"pipedrive_add_person", map[string]any{"name": "X", "phones": []any{"n/a"}}, "phones", "no digits"},
		{"pipedrive_add_person", map[string]any{"emails": []any{"a@b.de"}}, "", "name"},
		{"pipedrive_update_person", map[string]any{"person_id": 1}, "", "nothing to change"},
		{"pipedrive_add_note", map[string]any{"content": "x"}, "", "deal_id, org_id or person_id"},
		{"pipedrive_add_note", map[string]any{"content": " ", "deal_id": 1}, "content", "blank"},
		{"pipedrive_add_note", map[string]any{"content": "x", "deal_id": 1, "pin_to": []any{"person"}}, "pin_to", "pin_to person needs person_id"},
		{"pipedrive_add_note", map[string]any{"content": "x", "deal_id": 1, "pin_to": []any{"lead"}}, "pin_to/0", ""},
		{"pipedrive_list_notes", map[string]any{"cursor": "%%%"}, "cursor", "not one this tool returned"},
	}
	for _, c := range cases {
		e := h.callErr(c.tool, c.args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%s %v: %s", c.tool, c.args, e.Message)
		assert.Equal(t, c.field, e.Field, "%s %v: %s", c.tool, c.args, e.Message)
		assert.Contains(t, e.Message, c.msg, "%s %v", c.tool, c.args)
	}
	assert.Equal(t, before, h.sandbox.RequestCount(), "validation failures must not reach the upstream")

	// An owner the company does not have is refused before the write,
	// after one reload of the users in case it is new.
	e := h.callErr("pipedrive_add_organization", map[string]any{"name": "Orphan", "owner_id": 99})
	assert.Equal(t, tools.CodeInvalidArgument, e.Code)
	assert.Equal(t, "owner_id", e.Field)
	assert.Contains(t, e.Message, "user 99 not found; users: 1 Alex Morgan, 2 Priya Natarajan")
	var none pdtools.OrganizationList
	h.call("pipedrive_search_organizations", map[string]any{"term": "Orphan"}, &none)
	assert.Empty(t, none.Organizations, "nothing was created")
}

// An id Pipedrive does not know is named, with the tool that finds valid
// ones: not_found for the record a call is about, invalid_argument for a
// record a write links to.
func TestUnknownIDsNameTheToolThatFindsThem(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	cases := []struct {
		tool, code, field, msg string
		args                   map[string]any
	}{
		{"pipedrive_get_organization", tools.CodeNotFound, "", "organization 9999 not found; find organizations with pipedrive_search_organizations",
			map[string]any{"org_id": 9999}},
		{"pipedrive_update_organization", tools.CodeNotFound, "", "organization 9999 not found; find organizations with pipedrive_search_organizations",
			map[string]any{"org_id": 9999, "name": "x"}},
		{"pipedrive_get_person", tools.CodeNotFound, "", "person 9999 not found; find persons with pipedrive_search_persons",
			map[string]any{"person_id": 9999}},
		{"pipedrive_update_person", tools.CodeNotFound, "", "person 9999 not found; find persons with pipedrive_search_persons",
			map[string]any{"person_id": 9999, "name": "x"}},
		{"pipedrive_add_person", tools.CodeInvalidArgument, "org_id", "organization 9999 not found; find organizations with pipedrive_search_organizations",
			map[string]any{"name": "x", "org_id": 9999}},
		{"pipedrive_update_person", tools.CodeInvalidArgument, "org_id", "organization 9999 not found",
			map[string]any{"person_id": 1, "org_id": 9999}},
		{"pipedrive_add_note", tools.CodeInvalidArgument, "deal_id", "deal 9999 not found; find deals with pipedrive_search_deals",
			map[string]any{"content": "x", "deal_id": 9999}},
		{"pipedrive_add_note", tools.CodeInvalidArgument, "person_id", "person 9999 not found; find persons with pipedrive_search_persons",
			map[string]any{"content": "x", "deal_id": 1, "person_id": 9999}},
		{"pipedrive_add_note", tools.CodeInvalidArgument, "org_id", "organization 9999 not found",
			map[string]any{"content": "x", "org_id": 9999}},
	}
	for _, c := range cases {
		e := h.callErr(c.tool, c.args)
		assert.Equal(t, c.code, e.Code, "%s %v: %s", c.tool, c.args, e.Message)
		assert.Equal(t, c.field, e.Field, "%s %v", c.tool, c.args)
		assert.Contains(t, e.Message, c.msg, "%s %v", c.tool, c.args)
	}
}

func TestSearchPersonsPages(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var all pdtools.PersonList
	h.call("pipedrive_search_persons", map[string]any{"term": "an", "fields": []any{"name"}, "limit": 100}, &all)
	require.Greater(t, len(all.Persons), 6, "enough seeded names with \"an\"")

	var walked []pdtools.Person
	args := map[string]any{"term": "an", "fields": []any{"name"}, "limit": 3}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		var page pdtools.PersonList
		h.call("pipedrive_search_persons", args, &page)
		walked = append(walked, page.Persons...)
		if !page.HasMore {
			assert.Empty(t, page.NextCursor)
			break
		}
		assert.Len(t, page.Persons, 3)
		args["cursor"] = page.NextCursor
	}
	if all.HasMore {
		walked = walked[:len(all.Persons)]
	}
	assert.Equal(t, all.Persons, walked)
	for _, p := range walked {
		assert.Contains(t, strings.ToLower(p.Name), "an")
		assert.NotEmpty(t, p.OrgName, "seeded persons belong to an organization")
		assert.NotEmpty(t, p.OwnerName)
	}
}

// Every create of this file whose request reached Pipedrive without a
// trustworthy answer is outcome_unknown and says how to look for the
// record; exactly one exists upstream. Refused before sending, nothing
// exists and the call is throttled.
func TestPartyCreatesWithUnknownOutcome(t *testing.T) {
	type createTool struct {
		name, path, check string
		args              func(title string) map[string]any
		count             func(t *testing.T, c *pd.Client, title string) int
	}
	ctx := context.Background()
	createTools := []createTool{
		{name: "pipedrive_add_organization", path: "/api/v2/organizations", check: "pipedrive_search_organizations (exact_match true)",
			args: func(title string) map[string]any { return map[string]any{"name": title} },
			count: func(t *testing.T, c *pd.Client, title string) int {
				hits, _, err := c.SearchOrganizationsWith(ctx, pd.SearchOrganizationsParams{Term: title, Fields: "name", ExactMatch: true})
				require.NoError(t, err)
				return len(hits)
			}},
		{name: "pipedrive_add_person", path: "/api/v2/persons", check: "pipedrive_search_persons",
			args: func(title string) map[string]any { return map[string]any{"name": title} },
			count: func(t *testing.T, c *pd.Client, title string) int {
				hits, _, err := c.SearchPersons(ctx, pd.SearchPersonsParams{Term: title, Fields: "name", ExactMatch: true})
				require.NoError(t, err)
				return len(hits)
			}},
		{name: "pipedrive_add_note", path: "/v1/notes", check: "pipedrive_list_notes",
			args: func(title string) map[string]any { return map[string]any{"content": title, "org_id": 5} },
			count: func(t *testing.T, c *pd.Client, title string) int {
				page, err := c.ListNotes(ctx, pd.ListNotesParams{OrgID: 5, Limit: pd.MaxNotesPage})
				require.NoError(t, err)
				n := 0
				for _, note := range page.Notes {
					if note.Content == title {
						n++
					}
				}
				return n
			}},
	}
	cases := []struct {
		fault   fault
		refused bool
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
				h := newFaultHarness(t, c.fault, http.MethodPost, tool.path)
				warm := "warm-up " + tool.name
				h.Call(tool.name, tool.args(warm), &map[string]any{})
				require.Equal(t, 1, tool.count(t, h.direct, warm))
				if c.refused {
					h.exhaust(t)
				}
				title := fmt.Sprintf("%s %s %s", marker, tool.name, c.fault)
				e := h.CallErr(tool.name, tool.args(title))
				assert.Equal(t, c.code, e.Code, e.Message)
				assert.Equal(t, c.records, tool.count(t, h.direct, title), "records upstream")
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

// With full, a get returns the rest of what Pipedrive sent; without, the
// compact record only.
func TestFullReadsOfOrganizationsAndPersons(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var p pdtools.PersonRecord
	h.call("pipedrive_get_person", map[string]any{"person_id": 4}, &p)
	assert.Nil(t, p.Details)
	assert.NotEmpty(t, p.OrgName)
	h.call("pipedrive_get_person", map[string]any{"person_id": 4, "full": true}, &p)
	require.NotNil(t, p.Details)
	assert.Equal(t, p.Name, p.Details.FirstName+" "+p.Details.LastName)
	require.Len(t, p.Details.Emails, 1)
	assert.Equal(t, pd.Contact{Value: p.Emails[0], Primary: true, Label: "work"}, p.Details.Emails[0])
	assert.Equal(t, "Entire company", p.Details.VisibleTo)
	assert.NotEmpty(t, p.Details.AddTime)

	var o pdtools.OrganizationRecord
	h.call("pipedrive_get_organization", map[string]any{"org_id": p.OrgID, "full": true}, &o)
	assert.Equal(t, p.OrgName, o.Name)
	require.NotNil(t, o.Details)
	require.NotNil(t, o.Details.AddressParts)
	assert.NotEmpty(t, o.Details.AddressParts.Locality)
	assert.NotEmpty(t, o.Details.AddressParts.Route)
	assert.Contains(t, o.Address, o.Details.AddressParts.Locality, "the one-line address is the compact one")
	assert.Contains(t, o.Address, o.Details.AddressParts.Country)
	assert.Contains(t, o.Details.Linkedin, "linkedin.com")
	assert.Positive(t, o.Details.EmployeeCount)
	assert.Equal(t, "Entire company", o.Details.VisibleTo)
}
