package pipedrive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

// DealIncluded holds the optional fields a deal read returns only when
// include_fields names them (FullDealFields asks for all of them); they are
// zero otherwise. Deal embeds it.
type DealIncluded struct {
	FirstWonTime          string `json:"first_won_time,omitempty"`
	ProductsCount         int    `json:"products_count,omitempty"`
	FilesCount            int    `json:"files_count,omitempty"`
	NotesCount            int    `json:"notes_count,omitempty"`
	FollowersCount        int    `json:"followers_count,omitempty"`
	EmailMessagesCount    int    `json:"email_messages_count,omitempty"`
	ActivitiesCount       int    `json:"activities_count,omitempty"`
	DoneActivitiesCount   int    `json:"done_activities_count,omitempty"`
	UndoneActivitiesCount int    `json:"undone_activities_count,omitempty"`
	ParticipantsCount     int    `json:"participants_count,omitempty"`
	LastIncomingMailTime  string `json:"last_incoming_mail_time,omitempty"`
	LastOutgoingMailTime  string `json:"last_outgoing_mail_time,omitempty"`
	SmartBCCEmail         string `json:"smart_bcc_email,omitempty"`
}

// FullDealFields are the include_fields values of a full deal read: the
// next and last activity ids and every count and time of DealIncluded.
var FullDealFields = []string{
	IncludeNextActivity, "last_activity_id", "first_won_time", "products_count", "files_count",
	"notes_count", "followers_count", "email_messages_count", "activities_count",
	"done_activities_count", "undone_activities_count", "participants_count",
	"last_incoming_mail_time", "last_outgoing_mail_time", "smart_bcc_email",
}

// Deal fields PATCH /api/v2/deals/{id} accepts as null (the spec's
// nullable members), for DealPatch.Null.
const (
	FieldProbability = "probability"
	FieldLostReason  = "lost_reason"
	FieldCloseTime   = "close_time"
)

var nullableDealFields = []string{FieldProbability, FieldLostReason, FieldCloseTime}

// DealPatch is the body of a deal update (PATCH /api/v2/deals/{id}): the
// set fields of DealInput, Probability and LabelIDs, and the fields named
// in Null sent as null, which clears them.
type DealPatch struct {
	DealInput
	// Probability is the deal's success probability in percent (0–100).
	Probability *float64 `json:"probability,omitempty"`
	// LabelIDs, when not nil, replaces the deal's labels; an empty list
	// removes them all.
	LabelIDs []int64 `json:"-"`
	// Null names fields to clear: FieldProbability, FieldLostReason or
	// FieldCloseTime. A field both set and named here is refused.
	Null []string `json:"-"`
}

// MarshalJSON writes the set fields, label_ids when not nil (also when
// empty) and null for every field in Null.
func (p DealPatch) MarshalJSON() ([]byte, error) {
	type fields DealPatch // without this method
	raw, err := json.Marshal(fields(p))
	if err != nil {
		return nil, err
	}
	if p.LabelIDs == nil && len(p.Null) == 0 {
		return raw, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if p.LabelIDs != nil {
		if m["label_ids"], err = json.Marshal(p.LabelIDs); err != nil {
			return nil, err
		}
	}
	for _, f := range p.Null {
		if !slices.Contains(nullableDealFields, f) {
			return nil, fmt.Errorf("pipedrive: %s cannot be cleared; nullable deal fields: %v", f, nullableDealFields)
		}
		if _, set := m[f]; set {
			return nil, fmt.Errorf("pipedrive: %s is both set and cleared", f)
		}
		m[f] = json.RawMessage("null")
	}
	return json.Marshal(m)
}

// PatchDeal changes a deal (PATCH /api/v2/deals/{id}) and returns it as
// updated. A deal that does not exist is a *NotFoundError.
func (c *Client) PatchDeal(ctx context.Context, id int64, p DealPatch) (*Deal, error) {
	var d Deal
	if err := c.byID(ctx, http.MethodPatch, EntityDeal, "/api/v2/deals", id, nil, p, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
