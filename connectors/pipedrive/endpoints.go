package pipedrive

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ListDealsParams filters GET /api/v2/deals. Zero values are not sent.
type ListDealsParams struct {
	OwnerID       int64
	PersonID      int64
	OrgID         int64
	PipelineID    int64
	StageID       int64
	Status        string // open, won, lost, deleted (comma-separated allowed)
	IDs           []int64
	UpdatedSince  time.Time
	UpdatedUntil  time.Time
	SortBy        string // id, update_time, add_time
	SortDirection string // asc, desc
	Limit         int    // 1..500, default 100 upstream
	Cursor        string
	// IncludeFields asks for optional deal fields, e.g. IncludeNextActivity.
	IncludeFields []string
	// CustomFields limits Deal.CustomFields to these field codes (at most
	// MaxCustomFieldKeys); empty returns every custom field.
	CustomFields []string
	// IncludeOptionLabels reads enum and set values as {"id","label"}.
	IncludeOptionLabels bool
}

// MaxCustomFieldKeys is how many keys Pipedrive accepts in the custom_fields
// query parameter of deal reads.
const MaxCustomFieldKeys = 15

// IncludeNextActivity is the include_fields value that fills
// Deal.NextActivityID (the earliest undone activity) on deal reads.
const IncludeNextActivity = "next_activity_id"

func (p ListDealsParams) values() url.Values {
	q := query{}
	q.id("owner_id", p.OwnerID)
	q.id("person_id", p.PersonID)
	q.id("org_id", p.OrgID)
	q.id("pipeline_id", p.PipelineID)
	q.id("stage_id", p.StageID)
	q.str("status", p.Status)
	if len(p.IDs) > 0 {
		ids := make([]string, len(p.IDs))
		for i, id := range p.IDs {
			ids[i] = formatID(id)
		}
		q.str("ids", strings.Join(ids, ","))
	}
	q.time("updated_since", p.UpdatedSince)
	q.time("updated_until", p.UpdatedUntil)
	q.str("sort_by", p.SortBy)
	q.str("sort_direction", p.SortDirection)
	q.num("limit", p.Limit)
	q.str("cursor", p.Cursor)
	q.str("include_fields", strings.Join(p.IncludeFields, ","))
	q.str("custom_fields", strings.Join(p.CustomFields, ","))
	if p.IncludeOptionLabels {
		q.str("include_option_labels", "true")
	}
	return url.Values(q)
}

// ListDeals returns one page of deals and the cursor of the next.
func (c *Client) ListDeals(ctx context.Context, p ListDealsParams) ([]Deal, *Response, error) {
	var deals []Deal
	r, err := c.do(ctx, http.MethodGet, "/api/v2/deals", p.values(), nil, &deals)
	return deals, r, err
}

// Deals iterates over every deal matching p, fetching pages as needed.
func (c *Client) Deals(ctx context.Context, p ListDealsParams) iter.Seq2[Deal, error] {
	return paginate(func(cursor string) ([]Deal, *Response, error) {
		q := p
		q.Cursor = cursor
		return c.ListDeals(ctx, q)
	}, p.Cursor)
}

// GetDeal returns one deal by id, with the optional fields include names
// (e.g. IncludeNextActivity).
func (c *Client) GetDeal(ctx context.Context, id int64, include ...string) (*Deal, error) {
	return c.GetDealWith(ctx, id, GetDealParams{IncludeFields: include})
}

// GetDealParams selects the optional parts of GET /api/v2/deals/{id}. Zero
// values are not sent.
type GetDealParams struct {
	// IncludeFields asks for optional deal fields, e.g. IncludeNextActivity.
	IncludeFields []string
	// CustomFields limits Deal.CustomFields to these field codes (at most
	// MaxCustomFieldKeys); empty returns every custom field.
	CustomFields []string
	// IncludeOptionLabels reads enum and set values as {"id","label"}.
	IncludeOptionLabels bool
}

// GetDealWith returns one deal by id, shaped by p.
func (c *Client) GetDealWith(ctx context.Context, id int64, p GetDealParams) (*Deal, error) {
	var d Deal
	q := query{}
	q.str("include_fields", strings.Join(p.IncludeFields, ","))
	q.str("custom_fields", strings.Join(p.CustomFields, ","))
	if p.IncludeOptionLabels {
		q.str("include_option_labels", "true")
	}
	if err := c.byID(ctx, http.MethodGet, EntityDeal, "/api/v2/deals", id, url.Values(q), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ListDealFields returns every deal field, standard and custom, walking all
// pages of GET /api/v2/dealFields.
func (c *Client) ListDealFields(ctx context.Context) ([]DealField, error) {
	var out []DealField
	for f, err := range paginate(func(cursor string) ([]DealField, *Response, error) {
		q := query{}
		q.num("limit", 500)
		q.str("cursor", cursor)
		var page []DealField
		r, err := c.do(ctx, http.MethodGet, "/api/v2/dealFields", url.Values(q), nil, &page)
		return page, r, err
	}, "") {
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// AddDeal creates a deal (POST /api/v2/deals).
func (c *Client) AddDeal(ctx context.Context, in DealInput) (*Deal, error) {
	var d Deal
	if _, err := c.do(ctx, http.MethodPost, "/api/v2/deals", nil, in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// UpdateDeal changes the set fields of a deal (PATCH /api/v2/deals/{id});
// PatchDeal also sets probability and labels and clears fields.
func (c *Client) UpdateDeal(ctx context.Context, id int64, in DealInput) (*Deal, error) {
	return c.PatchDeal(ctx, id, DealPatch{DealInput: in})
}

// SearchDealsParams filters GET /api/v2/deals/search.
type SearchDealsParams struct {
	Term           string
	Fields         string // title, notes, custom_fields (comma-separated)
	ExactMatch     bool
	PersonID       int64
	OrganizationID int64
	Status         string // open, won, lost
	Limit          int
	Cursor         string
}

// SearchDeals runs a deal search and returns one page of hits.
func (c *Client) SearchDeals(ctx context.Context, p SearchDealsParams) ([]DealSearchResult, *Response, error) {
	q := searchQuery(p.Term, p.Fields, p.ExactMatch, p.Limit, p.Cursor)
	q.id("person_id", p.PersonID)
	q.id("organization_id", p.OrganizationID)
	q.str("status", p.Status)
	return search[DealSearchResult](ctx, c, "/api/v2/deals/search", q)
}

// SearchOrganizations searches organizations by name and returns one page of hits.
func (c *Client) SearchOrganizations(ctx context.Context, term string, limit int) ([]OrganizationSearchResult, *Response, error) {
	return c.SearchOrganizationsWith(ctx, SearchOrganizationsParams{Term: term, Fields: "name", Limit: limit})
}

// GetStage returns one stage by id.
func (c *Client) GetStage(ctx context.Context, id int64) (*Stage, error) {
	var s Stage
	if err := c.byID(ctx, http.MethodGet, EntityStage, "/api/v2/stages", id, nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Stages iterates over all stages, of one pipeline when pipelineID is set.
func (c *Client) Stages(ctx context.Context, pipelineID int64) iter.Seq2[Stage, error] {
	return paginate(func(cursor string) ([]Stage, *Response, error) {
		q := query{}
		q.id("pipeline_id", pipelineID)
		q.num("limit", 500)
		q.str("cursor", cursor)
		var out []Stage
		r, err := c.do(ctx, http.MethodGet, "/api/v2/stages", url.Values(q), nil, &out)
		return out, r, err
	}, "")
}

// Pipelines iterates over all pipelines.
func (c *Client) Pipelines(ctx context.Context) iter.Seq2[Pipeline, error] {
	return paginate(func(cursor string) ([]Pipeline, *Response, error) {
		q := query{}
		q.num("limit", 500)
		q.str("cursor", cursor)
		var out []Pipeline
		r, err := c.do(ctx, http.MethodGet, "/api/v2/pipelines", url.Values(q), nil, &out)
		return out, r, err
	}, "")
}

// AddActivity creates an activity (POST /api/v2/activities).
func (c *Client) AddActivity(ctx context.Context, in ActivityInput) (*Activity, error) {
	var a Activity
	if _, err := c.do(ctx, http.MethodPost, "/api/v2/activities", nil, in, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// ListActivitiesParams filters GET /api/v2/activities.
type ListActivitiesParams struct {
	DealID        int64
	OwnerID       int64
	PersonID      int64
	OrgID         int64
	Done          *bool
	UpdatedSince  time.Time
	UpdatedUntil  time.Time
	SortBy        string // id, update_time, add_time, due_date
	SortDirection string
	Limit         int
	Cursor        string
}

// ListActivities returns one page of activities.
func (c *Client) ListActivities(ctx context.Context, p ListActivitiesParams) ([]Activity, *Response, error) {
	q := query{}
	q.id("deal_id", p.DealID)
	q.id("owner_id", p.OwnerID)
	q.id("person_id", p.PersonID)
	q.id("org_id", p.OrgID)
	q.boolean("done", p.Done)
	q.time("updated_since", p.UpdatedSince)
	q.time("updated_until", p.UpdatedUntil)
	q.str("sort_by", p.SortBy)
	q.str("sort_direction", p.SortDirection)
	q.num("limit", p.Limit)
	q.str("cursor", p.Cursor)
	var out []Activity
	r, err := c.do(ctx, http.MethodGet, "/api/v2/activities", url.Values(q), nil, &out)
	return out, r, err
}

// GetPerson returns one person by id.
func (c *Client) GetPerson(ctx context.Context, id int64) (*Person, error) {
	var p Person
	if err := c.byID(ctx, http.MethodGet, EntityPerson, "/api/v2/persons", id, nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetOrganization returns one organization by id.
func (c *Client) GetOrganization(ctx context.Context, id int64) (*Organization, error) {
	var o Organization
	if err := c.byID(ctx, http.MethodGet, EntityOrganization, "/api/v2/organizations", id, nil, nil, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// MaxIDsPerList is how many ids one v2 list call takes in its ids parameter.
const MaxIDsPerList = 100

// PersonsByID returns the persons with the given ids that exist, in one
// call (GET /api/v2/persons?ids=…); at most MaxIDsPerList ids.
func (c *Client) PersonsByID(ctx context.Context, ids []int64) ([]Person, error) {
	var out []Person
	err := c.listByID(ctx, "/api/v2/persons", ids, &out)
	return out, err
}

// OrganizationsByID returns the organizations with the given ids that
// exist, in one call (GET /api/v2/organizations?ids=…); at most
// MaxIDsPerList ids.
func (c *Client) OrganizationsByID(ctx context.Context, ids []int64) ([]Organization, error) {
	var out []Organization
	err := c.listByID(ctx, "/api/v2/organizations", ids, &out)
	return out, err
}

func (c *Client) listByID(ctx context.Context, path string, ids []int64, out any) error {
	if len(ids) == 0 {
		return nil
	}
	if len(ids) > MaxIDsPerList {
		return fmt.Errorf("pipedrive: %d ids in one list call; at most %d", len(ids), MaxIDsPerList)
	}
	list := make([]string, len(ids))
	for i, id := range ids {
		list[i] = strconv.FormatInt(id, 10)
	}
	q := query{}
	q.str("ids", strings.Join(list, ","))
	q.num("limit", MaxIDsPerList)
	_, err := c.do(ctx, http.MethodGet, path, url.Values(q), nil, out)
	return err
}

// Users lists the company's users (v1: API v2 has no users endpoint).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out []User
	_, err := c.do(ctx, http.MethodGet, "/v1/users", nil, nil, &out)
	return out, err
}

// Me returns the user the API token belongs to (v1).
func (c *Client) Me(ctx context.Context) (*User, error) {
	var u User
	if _, err := c.do(ctx, http.MethodGet, "/v1/users/me", nil, nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// ActivityTypes lists the activity types (v1: API v2 has no equivalent).
func (c *Client) ActivityTypes(ctx context.Context) ([]ActivityType, error) {
	var out []ActivityType
	_, err := c.do(ctx, http.MethodGet, "/v1/activityTypes", nil, nil, &out)
	return out, err
}

// paginate walks cursor pages, yielding items until the cursor runs out,
// the consumer stops, or a page fails.
func paginate[T any](page func(cursor string) ([]T, *Response, error), start string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := start
		for {
			items, r, err := page(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if r == nil || r.NextCursor == "" || r.NextCursor == cursor {
				return
			}
			cursor = r.NextCursor
		}
	}
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

// DeleteDeal marks a deal as deleted (DELETE /api/v2/deals/{id}); Pipedrive
// removes it for good after 30 days.
func (c *Client) DeleteDeal(ctx context.Context, id int64) error {
	return c.byID(ctx, http.MethodDelete, EntityDeal, "/api/v2/deals", id, nil, nil, nil)
}
