package pipedrive

import (
	"context"
	"net/http"
)

// ActivityPatch is the body of an activity update (PATCH
// /api/v2/activities/{id}). Nil fields are not sent, so an update changes
// only what is set; Done true marks the activity done, false undone.
type ActivityPatch struct {
	Subject  *string `json:"subject,omitempty"`
	Type     *string `json:"type,omitempty"`
	OwnerID  *int64  `json:"owner_id,omitempty"`
	DealID   *int64  `json:"deal_id,omitempty"`
	PersonID *int64  `json:"person_id,omitempty"`
	OrgID    *int64  `json:"org_id,omitempty"`
	DueDate  *string `json:"due_date,omitempty"`
	DueTime  *string `json:"due_time,omitempty"`
	Duration *string `json:"duration,omitempty"`
	Busy     *bool   `json:"busy,omitempty"`
	Done     *bool   `json:"done,omitempty"`
	Note     *string `json:"note,omitempty"`
}

// GetActivity returns one activity by id (GET /api/v2/activities/{id}). An
// activity that does not exist is a *NotFoundError.
func (c *Client) GetActivity(ctx context.Context, id int64) (*Activity, error) {
	var a Activity
	if err := c.byID(ctx, http.MethodGet, EntityActivity, "/api/v2/activities", id, nil, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// UpdateActivity changes an activity (PATCH /api/v2/activities/{id}) and
// returns it as updated. An activity that does not exist is a
// *NotFoundError.
func (c *Client) UpdateActivity(ctx context.Context, id int64, p ActivityPatch) (*Activity, error) {
	var a Activity
	if err := c.byID(ctx, http.MethodPatch, EntityActivity, "/api/v2/activities", id, nil, p, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// ActivitiesByID returns the activities with the given ids that exist, in
// one call (GET /api/v2/activities?ids=…); at most MaxIDsPerList ids.
func (c *Client) ActivitiesByID(ctx context.Context, ids []int64) ([]Activity, error) {
	var out []Activity
	err := c.listByID(ctx, "/api/v2/activities", ids, &out)
	return out, err
}
