package pipedrive

import (
	"context"
	"encoding/json"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
)

// Deal is a deal as tools return it: ids with the names an agent needs.
type Deal struct {
	ID                int64   `json:"id"`
	Title             string  `json:"title"`
	Status            string  `json:"status" jsonschema:"enum=open,enum=won,enum=lost,enum=deleted"`
	Value             float64 `json:"value"`
	Currency          string  `json:"currency,omitempty"`
	PipelineID        int64   `json:"pipeline_id,omitempty"`
	PipelineName      string  `json:"pipeline_name,omitempty"`
	StageID           int64   `json:"stage_id,omitempty"`
	StageName         string  `json:"stage_name,omitempty"`
	OwnerID           int64   `json:"owner_id,omitempty"`
	OwnerName         string  `json:"owner_name,omitempty"`
	OrgID             int64   `json:"org_id,omitempty"`
	OrgName           string  `json:"org_name,omitempty"`
	PersonID          int64   `json:"person_id,omitempty"`
	PersonName        string  `json:"person_name,omitempty"`
	ExpectedCloseDate string  `json:"expected_close_date,omitempty"`
	LostReason        string  `json:"lost_reason,omitempty"`
	VisibleTo         string  `json:"visible_to,omitempty"`
	AddTime           string  `json:"add_time,omitempty"`
	UpdateTime        string  `json:"update_time,omitempty"`
	StageChangeTime   string  `json:"stage_change_time,omitempty"`
	CloseTime         string  `json:"close_time,omitempty"`
	WonTime           string  `json:"won_time,omitempty"`
	LostTime          string  `json:"lost_time,omitempty"`
	// NextActivityID is the deal's earliest undone activity. Deal reads
	// (get, list) fill it, so its absence there means no next step.
	NextActivityID int64 `json:"next_activity_id,omitempty"`
	// CustomFields are the deal's set custom fields by name, options by
	// label: on get and add, and on list with full.
	CustomFields map[string]any `json:"custom_fields,omitempty"`
}

// nameCustomFields fills d.CustomFields from the upstream values. Field
// names are a nicety: when they cannot be loaded, the codes stay.
func nameCustomFields(ctx context.Context, ref *refData, d *Deal, raw map[string]json.RawMessage) {
	set := false
	for _, v := range raw {
		set = set || string(v) != "null"
	}
	if !set {
		return // nothing set: no need for the names
	}
	fields, _ := ref.customFields(ctx)
	d.CustomFields = namedCustomFields(fields, raw)
}

// visibility maps the connector's visible_to labels to API v2 codes.
var visibility = map[string]int{"Owner and followers": 1, "Entire company": 3}

func visibilityLabel(code int) string {
	for k, v := range visibility {
		if v == code {
			return k
		}
	}
	switch code {
	case 5:
		return "Owner's visibility group"
	case 7:
		return "Owner's visibility group and sub-groups"
	}
	return ""
}

// shapeDeal converts an upstream deal, filling names from reference data.
// With lookup set, unknown organization and person names are fetched.
func shapeDeal(ctx context.Context, ref *refData, snap snapshot, d pd.Deal, lookup bool) Deal {
	out := Deal{
		ID: d.ID, Title: d.Title, Status: d.Status, Value: d.Value, Currency: d.Currency,
		PipelineID: d.PipelineID, PipelineName: snap.pipelineName(d.PipelineID),
		StageID: d.StageID, StageName: snap.stageName(d.StageID),
		OwnerID: d.OwnerID, OwnerName: snap.users[d.OwnerID],
		OrgID: d.OrgID, PersonID: d.PersonID,
		ExpectedCloseDate: d.ExpectedCloseDate, LostReason: d.LostReason,
		VisibleTo: visibilityLabel(d.VisibleTo),
		AddTime:   d.AddTime, UpdateTime: d.UpdateTime, StageChangeTime: d.StageChangeTime,
		CloseTime: d.CloseTime, WonTime: d.WonTime, LostTime: d.LostTime,
		NextActivityID: d.NextActivityID,
	}
	if d.IsDeleted {
		out.Status = "deleted"
	}
	if lookup {
		out.OrgName = ref.orgName(ctx, d.OrgID)
		out.PersonName = ref.personName(ctx, d.PersonID)
	} else {
		out.OrgName = ref.cachedOrg(d.OrgID)
		out.PersonName = ref.cachedPerson(d.PersonID)
	}
	return out
}

// nameCallsPerShape bounds the organization and person look-ups of one
// ShapeDeals: each resolves up to a hundred names.
const nameCallsPerShape = 4

// ShapeDeals returns upstream deals as pipedrive_get_deal returns them:
// pipeline, stage and owner names from the cached reference data,
// organization and person names (unknown ones fetched a hundred a call, at
// most nameCallsPerShape calls), custom fields by name. A name that cannot
// be had is left out; shaping never fails.
func (sv *Service) ShapeDeals(ctx context.Context, deals []pd.Deal) []Deal {
	_, ref := sv.s.at(ctx)
	snap, _ := ref.get(ctx, false)
	orgs, persons := make([]int64, 0, len(deals)), make([]int64, 0, len(deals))
	for _, d := range deals {
		orgs, persons = append(orgs, d.OrgID), append(persons, d.PersonID)
	}
	ref.resolveNames(ctx, orgs, persons, nameCallsPerShape)
	out := make([]Deal, len(deals))
	for i, d := range deals {
		out[i] = shapeDeal(ctx, ref, snap, d, false)
		nameCustomFields(ctx, ref, &out[i], d.CustomFields)
	}
	return out
}

// ShapeActivities returns upstream activities as pipedrive_add_activity
// returns them (owner names from the cached reference data).
func (sv *Service) ShapeActivities(ctx context.Context, acts []pd.Activity) []Activity {
	_, ref := sv.s.at(ctx)
	snap, _ := ref.get(ctx, false)
	out := make([]Activity, len(acts))
	for i, a := range acts {
		out[i] = shapeActivity(snap, a)
	}
	return out
}
