package pipedrive

import (
	"context"
	"net/http"
	"net/url"
)

// The customer side of a deal: organizations and persons (contacts), read,
// searched, created and changed through API v2. GetOrganization and
// GetPerson are in endpoints.go.

// OrganizationInput is the body of an organization create (POST) or update
// (PATCH). Nil fields, and nil or empty lists and maps, are not sent, so an
// update changes only what is set.
type OrganizationInput struct {
	Name          *string  `json:"name,omitempty"`
	OwnerID       *int64   `json:"owner_id,omitempty"`
	Address       *Address `json:"address,omitempty"`
	Website       *string  `json:"website,omitempty"`
	Linkedin      *string  `json:"linkedin,omitempty"`
	Industry      *int64   `json:"industry,omitempty"`
	AnnualRevenue *int64   `json:"annual_revenue,omitempty"`
	EmployeeCount *int64   `json:"employee_count,omitempty"`
	// VisibleTo is 1 (owner and followers), 3 (entire company), 5 or 7
	// (visibility groups).
	VisibleTo *int    `json:"visible_to,omitempty"`
	LabelIDs  []int64 `json:"label_ids,omitempty"`
	// CustomFields sets custom field values by field code (see
	// DealInput.CustomFields).
	CustomFields map[string]any `json:"custom_fields,omitempty"`
}

// PersonInput is the body of a person create (POST) or update (PATCH).
// Nil fields, and nil or empty lists and maps, are not sent. On update,
// Emails and Phones replace the person's lists.
type PersonInput struct {
	Name      *string   `json:"name,omitempty"`
	OwnerID   *int64    `json:"owner_id,omitempty"`
	OrgID     *int64    `json:"org_id,omitempty"`
	Emails    []Contact `json:"emails,omitempty"`
	Phones    []Contact `json:"phones,omitempty"`
	VisibleTo *int      `json:"visible_to,omitempty"`
	LabelIDs  []int64   `json:"label_ids,omitempty"`
	// CustomFields sets custom field values by field code (see
	// DealInput.CustomFields).
	CustomFields map[string]any `json:"custom_fields,omitempty"`
}

// SearchOrganizationsParams are the parameters of GET
// /api/v2/organizations/search. Zero values are not sent.
type SearchOrganizationsParams struct {
	// Term is at least 2 characters, or 1 with ExactMatch.
	Term string
	// Fields is a comma-separated subset of name, address, notes and
	// custom_fields; empty searches them all.
	Fields     string
	ExactMatch bool
	Limit      int // 1..500, default 100 upstream
	Cursor     string
}

// SearchOrganizationsWith searches organizations and returns one page of
// hits, best first, and the cursor of the next.
func (c *Client) SearchOrganizationsWith(ctx context.Context, p SearchOrganizationsParams) ([]OrganizationSearchResult, *Response, error) {
	q := searchQuery(p.Term, p.Fields, p.ExactMatch, p.Limit, p.Cursor)
	return search[OrganizationSearchResult](ctx, c, "/api/v2/organizations/search", q)
}

// SearchPersonsParams are the parameters of GET /api/v2/persons/search.
// Zero values are not sent.
type SearchPersonsParams struct {
	// Term is at least 2 characters, or 1 with ExactMatch.
	Term string
	// Fields is a comma-separated subset of name, email, phone, notes and
	// custom_fields; empty searches them all.
	Fields     string
	ExactMatch bool
	// OrganizationID limits the hits to the persons of one organization.
	OrganizationID int64
	Limit          int // 1..500, default 100 upstream
	Cursor         string
}

// SearchPersons searches persons and returns one page of hits, best
// first, and the cursor of the next.
func (c *Client) SearchPersons(ctx context.Context, p SearchPersonsParams) ([]PersonSearchResult, *Response, error) {
	q := searchQuery(p.Term, p.Fields, p.ExactMatch, p.Limit, p.Cursor)
	q.id("organization_id", p.OrganizationID)
	return search[PersonSearchResult](ctx, c, "/api/v2/persons/search", q)
}

// searchQuery holds the parameters every v2 search takes.
func searchQuery(term, fields string, exact bool, limit int, cursor string) query {
	q := query{}
	q.str("term", term)
	q.str("fields", fields)
	if exact {
		q.str("exact_match", "true")
	}
	q.num("limit", limit)
	q.str("cursor", cursor)
	return q
}

// search gets one page of a v2 search's hits.
func search[T any](ctx context.Context, c *Client, path string, q query) ([]T, *Response, error) {
	var data struct {
		Items []T `json:"items"`
	}
	r, err := c.do(ctx, http.MethodGet, path, url.Values(q), nil, &data)
	return data.Items, r, err
}

// AddOrganization creates an organization (POST /api/v2/organizations).
func (c *Client) AddOrganization(ctx context.Context, in OrganizationInput) (*Organization, error) {
	return create[Organization](ctx, c, "/api/v2/organizations", in)
}

// UpdateOrganization changes the set fields of an organization (PATCH
// /api/v2/organizations/{id}).
func (c *Client) UpdateOrganization(ctx context.Context, id int64, in OrganizationInput) (*Organization, error) {
	var o Organization
	if err := c.byID(ctx, http.MethodPatch, EntityOrganization, "/api/v2/organizations", id, nil, in, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// AddPerson creates a person (POST /api/v2/persons).
func (c *Client) AddPerson(ctx context.Context, in PersonInput) (*Person, error) {
	return create[Person](ctx, c, "/api/v2/persons", in)
}

// UpdatePerson changes the set fields of a person (PATCH
// /api/v2/persons/{id}).
func (c *Client) UpdatePerson(ctx context.Context, id int64, in PersonInput) (*Person, error) {
	var p Person
	if err := c.byID(ctx, http.MethodPatch, EntityPerson, "/api/v2/persons", id, nil, in, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// create posts a new record's body and decodes the record the reply
// carries.
func create[T any](ctx context.Context, c *Client, path string, body any) (*T, error) {
	var out T
	if _, err := c.do(ctx, http.MethodPost, path, nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
