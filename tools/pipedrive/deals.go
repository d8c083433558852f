package pipedrive

import (
	"context"
	"strings"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// DealIDArgs are the arguments of pipedrive_get_deal.
type DealIDArgs struct {
	DealID int64 `json:"deal_id" jsonschema:"minimum=1" jsonschema_description:"Deal id."`
	Full   bool  `json:"full,omitempty" jsonschema_description:"Also return details."`
}

// detailFields are the include_fields of a deal read: the next activity,
// or with full everything DealDetails shows.
func detailFields(full bool) []string {
	if full {
		return pd.FullDealFields
	}
	return []string{pd.IncludeNextActivity}
}

func (s *service) getDeal(ctx context.Context, in DealIDArgs) (DetailedDeal, error) {
	c, ref := s.at(ctx)
	d, err := c.GetDealWith(ctx, in.DealID, pd.GetDealParams{IncludeFields: detailFields(in.Full)})
	if err != nil {
		return DetailedDeal{}, err
	}
	snap, _ := ref.get(ctx, false)
	out := DetailedDeal{Deal: shapeDeal(ctx, ref, snap, *d, true)}
	nameCustomFields(ctx, ref, &out.Deal, d.CustomFields)
	if in.Full {
		out.Details = s.dealDetails(ctx, c, snap, []pd.Deal{*d})[0]
	}
	return out, nil
}

// ListDealsArgs are the arguments of pipedrive_list_deals.
type ListDealsArgs struct {
	Status        string `json:"status,omitempty" jsonschema:"enum=open,enum=won,enum=lost,enum=deleted" jsonschema_description:"Only deals with this status; default all but deleted."`
	PipelineID    int64  `json:"pipeline_id,omitempty" jsonschema:"minimum=1"`
	StageID       int64  `json:"stage_id,omitempty" jsonschema:"minimum=1"`
	OwnerID       int64  `json:"owner_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"User id of the deal owner."`
	OrgID         int64  `json:"org_id,omitempty" jsonschema:"minimum=1"`
	PersonID      int64  `json:"person_id,omitempty" jsonschema:"minimum=1"`
	UpdatedSince  string `json:"updated_since,omitempty" jsonschema_description:"RFC 3339 time or YYYY-MM-DD; deals updated at or after it."`
	SortBy        string `json:"sort_by,omitempty" jsonschema:"enum=id,enum=update_time,enum=add_time" jsonschema_description:"Default id."`
	SortDirection string `json:"sort_direction,omitempty" jsonschema:"enum=asc,enum=desc" jsonschema_description:"Default asc."`
	Limit         int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"Page size, default 50."`
	Cursor        string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page."`
	Full          bool   `json:"full,omitempty" jsonschema_description:"Also return custom fields and details."`
}

// DealList is a page of deals.
type DealList struct {
	Deals []DetailedDeal `json:"deals"`
	// HasMore says whether another page exists; NextCursor fetches it.
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *service) listDeals(ctx context.Context, in ListDealsArgs) (DealList, error) {
	c, ref := s.at(ctx)
	since, verr := tools.ParseSince("updated_since", in.UpdatedSince)
	if verr != nil {
		return DealList{}, verr
	}
	snap, err := checkStage(ctx, ref, in.PipelineID, in.StageID)
	if err != nil {
		return DealList{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	deals, resp, err := c.ListDeals(ctx, pd.ListDealsParams{
		Status: in.Status, PipelineID: in.PipelineID, StageID: in.StageID, OwnerID: in.OwnerID,
		OrgID: in.OrgID, PersonID: in.PersonID, UpdatedSince: since,
		SortBy: in.SortBy, SortDirection: in.SortDirection, Limit: limit, Cursor: in.Cursor,
		IncludeFields: detailFields(in.Full),
	})
	if err != nil {
		return DealList{}, err
	}
	out := DealList{Deals: make([]DetailedDeal, 0, len(deals)), NextCursor: resp.NextCursor, HasMore: resp.NextCursor != ""}
	var details []*DealDetails
	if in.Full {
		details = s.dealDetails(ctx, c, snap, deals)
	}
	for i, d := range deals {
		row := DetailedDeal{Deal: shapeDeal(ctx, ref, snap, d, false)}
		if in.Full {
			row.Probability, row.LabelIDs, row.Details = d.Probability, d.LabelIDs, details[i]
			nameCustomFields(ctx, ref, &row.Deal, d.CustomFields)
		}
		out.Deals = append(out.Deals, row)
	}
	return out, nil
}

// SearchDealsArgs are the arguments of pipedrive_search_deals.
type SearchDealsArgs struct {
	Term       string `json:"term" jsonschema:"minLength=2" jsonschema_description:"Words to find, e.g. Contoso."`
	Status     string `json:"status,omitempty" jsonschema:"enum=open,enum=won,enum=lost"`
	ExactMatch bool   `json:"exact_match,omitempty" jsonschema_description:"Match the whole term exactly."`
	Limit      int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100" jsonschema_description:"Maximum deals, default 20."`
}

// SearchHit is a deal found by a search and why it matched.
type SearchHit struct {
	Deal
	// MatchedOn is "title", "custom_field" or "organization".
	MatchedOn string `json:"matched_on" jsonschema:"enum=title,enum=custom_field,enum=organization"`
}

// SearchResult is the result of pipedrive_search_deals.
type SearchResult struct {
	Deals []SearchHit `json:"deals"`
	// Truncated is true when more deals matched than limit allowed.
	Truncated bool `json:"truncated"`
}

// orgMatchLimit bounds how many matching organizations have their deals listed.
const orgMatchLimit = 3

func (s *service) searchDeals(ctx context.Context, in SearchDealsArgs) (SearchResult, error) {
	c, ref := s.at(ctx)
	term := strings.TrimSpace(in.Term)
	if len([]rune(term)) < 2 {
		return SearchResult{}, tools.InvalidArgument("term", "term needs at least 2 characters")
	}
	limit := in.Limit
	if limit == 0 {
		limit = 20
	}
	snap, _ := ref.get(ctx, false)
	out := SearchResult{Deals: []SearchHit{}}
	seen := map[int64]bool{}
	add := func(d Deal, on string) bool {
		if seen[d.ID] {
			return true
		}
		if len(out.Deals) >= limit {
			out.Truncated = true
			return false
		}
		seen[d.ID] = true
		out.Deals = append(out.Deals, SearchHit{Deal: d, MatchedOn: on})
		return true
	}

	hits, resp, err := c.SearchDeals(ctx, pd.SearchDealsParams{Term: term, Fields: "title,custom_fields", ExactMatch: in.ExactMatch, Status: in.Status, Limit: limit})
	if err != nil {
		return SearchResult{}, err
	}
	for _, h := range hits {
		it := h.Item
		d := Deal{ID: it.ID, Title: it.Title, Status: it.Status, Value: it.Value, Currency: it.Currency,
			StageID: it.Stage.ID, StageName: it.Stage.Name, OwnerID: it.Owner.ID, OwnerName: snap.users[it.Owner.ID]}
		if st, ok := snap.stage(it.Stage.ID); ok {
			d.PipelineID, d.PipelineName = st.PipelineID, snap.pipelineName(st.PipelineID)
		}
		if it.Organization != nil {
			d.OrgID, d.OrgName = it.Organization.ID, it.Organization.Name
			ref.rememberOrg(d.OrgID, d.OrgName)
		}
		if it.Person != nil {
			d.PersonID, d.PersonName = it.Person.ID, it.Person.Name
			ref.rememberPerson(d.PersonID, d.PersonName)
		}
		on := "title"
		if !titleMatches(it.Title, term) {
			on = "custom_field"
		}
		if !add(d, on) {
			break
		}
	}
	if resp != nil && resp.NextCursor != "" {
		out.Truncated = true
	}
	if out.Truncated {
		return out, nil
	}

	orgs, _, err := c.SearchOrganizations(ctx, term, orgMatchLimit)
	if err != nil {
		return SearchResult{}, err
	}
	for _, o := range orgs {
		ref.rememberOrg(o.Item.ID, o.Item.Name)
		deals, resp, err := c.ListDeals(ctx, pd.ListDealsParams{OrgID: o.Item.ID, Status: in.Status, Limit: limit, SortBy: "update_time", SortDirection: "desc"})
		if err != nil {
			return SearchResult{}, err
		}
		for _, d := range deals {
			if !add(shapeDeal(ctx, ref, snap, d, false), "organization") {
				return out, nil
			}
		}
		if resp.NextCursor != "" {
			out.Truncated = true
		}
	}
	return out, nil
}

// titleMatches says whether every word of term is in title, as the
// search matched it; otherwise the hit came from a custom field.
func titleMatches(title, term string) bool {
	title = strings.ToLower(title)
	for _, w := range strings.Fields(strings.ToLower(term)) {
		if !strings.Contains(title, w) {
			return false
		}
	}
	return true
}

// AddDealArgs are the arguments of pipedrive_add_deal (connector AddDealV2).
type AddDealArgs struct {
	Title             string         `json:"title" jsonschema:"minLength=1"`
	PipelineID        int64          `json:"pipeline_id,omitempty" jsonschema:"minimum=1"`
	StageID           int64          `json:"stage_id,omitempty" jsonschema:"minimum=1"`
	Status            string         `json:"status,omitempty" jsonschema:"enum=open,enum=won,enum=lost" jsonschema_description:"Default open."`
	Value             float64        `json:"value,omitempty" jsonschema:"minimum=0"`
	Currency          string         `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$" jsonschema_description:"ISO 4217 code, e.g. USD; default the company currency."`
	PersonID          int64          `json:"person_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"Contact person id."`
	OrgID             int64          `json:"org_id,omitempty" jsonschema:"minimum=1"`
	OwnerID           int64          `json:"owner_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"Owner user id; default the token's user."`
	ExpectedCloseDate string         `json:"expected_close_date,omitempty" jsonschema:"format=date"`
	VisibleTo         string         `json:"visible_to,omitempty" jsonschema:"enum=Owner and followers,enum=Entire company"`
	CustomFields      map[string]any `json:"custom_fields,omitempty" jsonschema_description:"By name, e.g. {\"Partner Center referral ID\":\"…\"}; options by label."`
}

// AddDealDeprecatedArgs are the arguments of the deprecated AddDeal: no pipeline.
type AddDealDeprecatedArgs struct {
	Title             string  `json:"title" jsonschema:"minLength=1"`
	StageID           int64   `json:"stage_id,omitempty" jsonschema:"minimum=1"`
	Status            string  `json:"status,omitempty" jsonschema:"enum=open,enum=won,enum=lost"`
	Value             float64 `json:"value,omitempty" jsonschema:"minimum=0"`
	Currency          string  `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	PersonID          int64   `json:"person_id,omitempty" jsonschema:"minimum=1"`
	OrgID             int64   `json:"org_id,omitempty" jsonschema:"minimum=1"`
	ExpectedCloseDate string  `json:"expected_close_date,omitempty" jsonschema:"format=date"`
	VisibleTo         string  `json:"visible_to,omitempty" jsonschema:"enum=Owner and followers,enum=Entire company"`
}

func (s *service) addDealV2(ctx context.Context, in AddDealArgs) (Deal, error) {
	c, ref := s.at(ctx)
	if strings.TrimSpace(in.Title) == "" {
		return Deal{}, tools.InvalidArgument("title", "title must not be blank")
	}
	if err := tools.CheckDate("expected_close_date", in.ExpectedCloseDate); err != nil {
		return Deal{}, err
	}
	snap, err := checkStage(ctx, ref, in.PipelineID, in.StageID)
	if err != nil {
		return Deal{}, err
	}
	body := pd.DealInput{
		Title: &in.Title, PipelineID: opt(in.PipelineID), StageID: opt(in.StageID), Status: opt(in.Status),
		PersonID: opt(in.PersonID), OrgID: opt(in.OrgID), OwnerID: opt(in.OwnerID),
		Currency: opt(in.Currency), ExpectedCloseDate: opt(in.ExpectedCloseDate),
	}
	if in.Value != 0 {
		body.Value = &in.Value
	}
	if in.PipelineID == 0 && in.StageID != 0 {
		st, _ := snap.stage(in.StageID)
		body.PipelineID = &st.PipelineID
	}
	if in.PipelineID != 0 && in.StageID == 0 {
		// Pipedrive places the deal in the pipeline's first stage; say so explicitly.
		if stages := snap.stagesOf(in.PipelineID); len(stages) > 0 {
			first := stages[0]
			for _, st := range stages[1:] {
				if st.OrderNr < first.OrderNr {
					first = st
				}
			}
			body.StageID = &first.ID
		}
	}
	if in.VisibleTo != "" {
		v := visibility[in.VisibleTo]
		body.VisibleTo = &v
	}
	if len(in.CustomFields) > 0 {
		set, err := ref.customFields(ctx)
		if err != nil {
			return Deal{}, err
		}
		cf, verr := encodeCustomFields(set, in.CustomFields)
		if verr != nil {
			return Deal{}, verr
		}
		body.CustomFields = cf
	}
	d, err := c.AddDeal(ctx, body)
	if err != nil {
		return Deal{}, err
	}
	if d.ID == 0 {
		return Deal{}, noID("deal")
	}
	out := shapeDeal(ctx, ref, snap, *d, true)
	nameCustomFields(ctx, ref, &out, d.CustomFields)
	return out, nil
}

func (s *service) addDeal(ctx context.Context, in AddDealDeprecatedArgs) (Deal, error) {
	return s.addDealV2(ctx, AddDealArgs{
		Title: in.Title, StageID: in.StageID, Status: in.Status, Value: in.Value, Currency: in.Currency,
		PersonID: in.PersonID, OrgID: in.OrgID, ExpectedCloseDate: in.ExpectedCloseDate, VisibleTo: in.VisibleTo,
	})
}

// UpdateDealStageArgs are the arguments of pipedrive_update_deal_stage (UpdateDealStageV2).
type UpdateDealStageArgs struct {
	DealID            int64  `json:"deal_id" jsonschema:"minimum=1"`
	PipelineID        int64  `json:"pipeline_id" jsonschema:"minimum=1" jsonschema_description:"Pipeline of the target stage."`
	StageID           int64  `json:"stage_id" jsonschema:"minimum=1" jsonschema_description:"Target stage; must belong to pipeline_id."`
	ExpectedCloseDate string `json:"expected_close_date,omitempty" jsonschema:"format=date"`
}

// UpdateDealStageDeprecatedArgs are the arguments of the deprecated UpdateDealStage.
type UpdateDealStageDeprecatedArgs struct {
	DealID            int64  `json:"deal_id" jsonschema:"minimum=1"`
	StageID           int64  `json:"stage_id" jsonschema:"minimum=1"`
	ExpectedCloseDate string `json:"expected_close_date,omitempty" jsonschema:"format=date"`
}

func (s *service) updateDealStageV2(ctx context.Context, in UpdateDealStageArgs) (Deal, error) {
	c, ref := s.at(ctx)
	if err := tools.CheckDate("expected_close_date", in.ExpectedCloseDate); err != nil {
		return Deal{}, err
	}
	snap, err := checkStage(ctx, ref, in.PipelineID, in.StageID)
	if err != nil {
		return Deal{}, err
	}
	d, err := c.UpdateDeal(ctx, in.DealID, pd.DealInput{
		PipelineID: &in.PipelineID, StageID: &in.StageID, ExpectedCloseDate: opt(in.ExpectedCloseDate),
	})
	if err != nil {
		return Deal{}, err
	}
	return shapeDeal(ctx, ref, snap, *d, true), nil
}

func (s *service) updateDealStage(ctx context.Context, in UpdateDealStageDeprecatedArgs) (Deal, error) {
	_, ref := s.at(ctx)
	if err := tools.CheckDate("expected_close_date", in.ExpectedCloseDate); err != nil {
		return Deal{}, err
	}
	snap, err := checkStage(ctx, ref, 0, in.StageID)
	if err != nil {
		return Deal{}, err
	}
	st, _ := snap.stage(in.StageID)
	return s.updateDealStageV2(ctx, UpdateDealStageArgs{DealID: in.DealID, PipelineID: st.PipelineID, StageID: in.StageID, ExpectedCloseDate: in.ExpectedCloseDate})
}

// UpdateDealStatusArgs are the arguments of pipedrive_update_deal_status.
type UpdateDealStatusArgs struct {
	DealID     int64  `json:"deal_id" jsonschema:"minimum=1"`
	Status     string `json:"status" jsonschema:"enum=open,enum=won,enum=lost,enum=deleted"`
	LostReason string `json:"lost_reason,omitempty" jsonschema_description:"Why the deal was lost; only with status lost."`
}

func (s *service) updateDealStatus(ctx context.Context, in UpdateDealStatusArgs) (Deal, error) {
	c, ref := s.at(ctx)
	if in.LostReason != "" && in.Status != "lost" {
		return Deal{}, tools.InvalidArgument("lost_reason", "lost_reason can only be given with status lost, not %q", in.Status)
	}
	if in.Status == "deleted" {
		if err := c.DeleteDeal(ctx, in.DealID); err != nil {
			return Deal{}, err
		}
		return Deal{ID: in.DealID, Status: "deleted"}, nil
	}
	d, err := c.UpdateDeal(ctx, in.DealID, pd.DealInput{Status: &in.Status, LostReason: opt(in.LostReason)})
	if err != nil {
		return Deal{}, err
	}
	snap, _ := ref.get(ctx, false)
	out := shapeDeal(ctx, ref, snap, *d, true)
	nameCustomFields(ctx, ref, &out, d.CustomFields)
	return out, nil
}

// opt returns a pointer to v, or nil for the zero value (not sent).
func opt[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}
