package pipedrive

import (
	"context"
	"encoding/json"
	"math"

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
	// Probability (percent) and LabelIDs are set on single-deal results
	// and on list rows with full, when the deal has them.
	Probability *float64 `json:"probability,omitempty"`
	LabelIDs    []int64  `json:"label_ids,omitempty"`
	// CustomFields are the deal's set custom fields by name, options by
	// label: on get and add, and on list with full.
	CustomFields map[string]any `json:"custom_fields,omitempty"`
}

// DetailedDeal is a deal as the deal reads return it: with full, its
// details too.
type DetailedDeal struct {
	Deal
	Details *DealDetails `json:"details,omitempty"`
}

// DealDetails is what a full deal read adds, as the connector's deal
// response carries it: creator, owner e-mail, weighted value, counts and
// the next and last activities.
type DealDetails struct {
	CreatorID   int64  `json:"creator_id,omitempty"`
	CreatorName string `json:"creator_name,omitempty"`
	OwnerEmail  string `json:"owner_email,omitempty"`
	// WeightedValue is value × probability, the deal's own or else its
	// stage's.
	WeightedValue float64 `json:"weighted_value"`
	FirstWonTime  string  `json:"first_won_time,omitempty"`
	// NextActivity is the earliest undone activity, LastActivity the
	// latest done one; when their details cannot be had, only the id.
	NextActivity *ActivityBrief `json:"next_activity,omitempty"`
	LastActivity *ActivityBrief `json:"last_activity,omitempty"`
	Counts       DealCounts     `json:"counts"`
	// Times of the last e-mail received and sent about the deal.
	LastEmailReceived string `json:"last_email_received,omitempty"`
	LastEmailSent     string `json:"last_email_sent,omitempty"`
	// SmartBCCEmail is the address that files a copied e-mail on the deal.
	SmartBCCEmail string `json:"smart_bcc_email,omitempty"`
}

// ActivityBrief is an activity as a deal's details name it;
// pipedrive_list_activities has the rest.
type ActivityBrief struct {
	ID      int64  `json:"id"`
	Type    string `json:"type,omitempty"`
	Subject string `json:"subject,omitempty"`
	DueDate string `json:"due_date,omitempty"`
	DueTime string `json:"due_time,omitempty"`
}

// DealCounts are the numbers of things on a deal.
type DealCounts struct {
	Activities       int `json:"activities"`
	DoneActivities   int `json:"done_activities"`
	UndoneActivities int `json:"undone_activities"`
	Notes            int `json:"notes"`
	Files            int `json:"files"`
	Products         int `json:"products"`
	Participants     int `json:"participants"`
	Followers        int `json:"followers"`
	EmailMessages    int `json:"email_messages"`
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
		out.Probability, out.LabelIDs = d.Probability, d.LabelIDs
		out.OrgName = ref.orgName(ctx, d.OrgID)
		out.PersonName = ref.personName(ctx, d.PersonID)
	} else {
		out.OrgName = ref.cachedOrg(d.OrgID)
		out.PersonName = ref.cachedPerson(d.PersonID)
	}
	return out
}

// activityCallsPerDetail bounds the activity look-ups of one
// dealDetails: each brings up to a hundred activities.
const activityCallsPerDetail = 2

// dealDetails returns the details of upstream deals read with
// pd.FullDealFields, in order. Creator names come from the cached reference
// data, owner e-mails from the cached user directory, and the next and last
// activities from one activities call per hundred (at most
// activityCallsPerDetail; beyond, and when a call fails, only their ids).
// Details are best effort: this never fails.
func (s *service) dealDetails(ctx context.Context, c *pd.Client, snap snapshot, deals []pd.Deal) []*DealDetails {
	ids := make([]int64, 0, 2*len(deals))
	for _, d := range deals {
		ids = append(ids, d.NextActivityID, d.LastActivityID)
	}
	acts := map[int64]pd.Activity{}
	inBatches(distinctIDs(ids), activityCallsPerDetail, func(batch []int64) error {
		found, err := c.ActivitiesByID(ctx, batch)
		for _, a := range found {
			acts[a.ID] = a
		}
		return err
	})
	users := s.directory(c).get(ctx)
	out := make([]*DealDetails, len(deals))
	for i, d := range deals {
		prob := 0.0
		if st, ok := snap.stage(d.StageID); ok {
			prob = float64(st.DealProbability)
		}
		if d.Probability != nil {
			prob = *d.Probability
		}
		out[i] = &DealDetails{
			CreatorID: d.CreatorUserID, CreatorName: snap.users[d.CreatorUserID], OwnerEmail: users[d.OwnerID].Email,
			WeightedValue: math.Round(d.Value*prob) / 100, FirstWonTime: d.FirstWonTime,
			NextActivity: activityBrief(d.NextActivityID, acts), LastActivity: activityBrief(d.LastActivityID, acts),
			Counts: DealCounts{
				Activities: d.ActivitiesCount, DoneActivities: d.DoneActivitiesCount, UndoneActivities: d.UndoneActivitiesCount,
				Notes: d.NotesCount, Files: d.FilesCount, Products: d.ProductsCount, Participants: d.ParticipantsCount,
				Followers: d.FollowersCount, EmailMessages: d.EmailMessagesCount,
			},
			LastEmailReceived: d.LastIncomingMailTime, LastEmailSent: d.LastOutgoingMailTime, SmartBCCEmail: d.SmartBCCEmail,
		}
	}
	return out
}

// distinctIDs returns the non-zero ids, each once, in order.
func distinctIDs(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id != 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// inBatches calls fetch with the ids a list call takes at a time
// (pd.MaxIDsPerList), at most calls times, until one fails.
func inBatches(ids []int64, calls int, fetch func(batch []int64) error) {
	for ; len(ids) > 0 && calls > 0; calls-- {
		batch := ids[:min(len(ids), pd.MaxIDsPerList)]
		ids = ids[len(batch):]
		if fetch(batch) != nil {
			return
		}
	}
}

// activityBrief is the brief of activity id, from acts when there; nil
// for no activity.
func activityBrief(id int64, acts map[int64]pd.Activity) *ActivityBrief {
	if id == 0 {
		return nil
	}
	a, ok := acts[id]
	if !ok {
		return &ActivityBrief{ID: id}
	}
	return &ActivityBrief{ID: id, Type: a.Type, Subject: a.Subject, DueDate: a.DueDate, DueTime: a.DueTime}
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
