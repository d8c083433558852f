package pipedrive

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// AddActivityArgs are the arguments of pipedrive_add_activity (connector AddActivity).
type AddActivityArgs struct {
	Type     string `json:"type" jsonschema:"minLength=1" jsonschema_description:"Activity type key: call, meeting, task, deadline, email, lunch, or a custom type's key."`
	Subject  string `json:"subject" jsonschema:"minLength=1"`
	DueDate  string `json:"due_date,omitempty" jsonschema:"format=date"`
	DueTime  string `json:"due_time,omitempty" jsonschema:"pattern=^([01][0-9]|2[0-3]):[0-5][0-9]$" jsonschema_description:"HH:MM, UTC."`
	Duration string `json:"duration,omitempty" jsonschema:"pattern=^([01][0-9]|2[0-3]):[0-5][0-9]$" jsonschema_description:"HH:MM."`
	Note     string `json:"note,omitempty" jsonschema_description:"HTML or plain text note."`
	UserID   int64  `json:"user_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"Assignee user id; default the token's user."`
	DealID   int64  `json:"deal_id,omitempty" jsonschema:"minimum=1"`
	PersonID int64  `json:"person_id,omitempty" jsonschema:"minimum=1"`
	OrgID    int64  `json:"org_id,omitempty" jsonschema:"minimum=1"`
}

// Activity is an activity as tools return it.
type Activity struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Subject   string `json:"subject"`
	Done      bool   `json:"done"`
	DueDate   string `json:"due_date,omitempty"`
	DueTime   string `json:"due_time,omitempty"`
	Duration  string `json:"duration,omitempty"`
	Note      string `json:"note,omitempty"`
	OwnerID   int64  `json:"owner_id,omitempty"`
	OwnerName string `json:"owner_name,omitempty"`
	DealID    int64  `json:"deal_id,omitempty"`
	PersonID  int64  `json:"person_id,omitempty"`
	OrgID     int64  `json:"org_id,omitempty"`
	AddTime   string `json:"add_time,omitempty"`
}

func (s *service) addActivity(ctx context.Context, in AddActivityArgs) (Activity, error) {
	c, ref := s.at(ctx)
	if strings.TrimSpace(in.Subject) == "" {
		return Activity{}, tools.InvalidArgument("subject", "subject must not be blank")
	}
	for _, c := range []*tools.Error{
		tools.CheckDate("due_date", in.DueDate),
		tools.CheckClock("due_time", in.DueTime),
		tools.CheckClock("duration", in.Duration),
	} {
		if c != nil {
			return Activity{}, c
		}
	}
	types, err := ref.activityTypes(ctx)
	if err != nil {
		return Activity{}, err
	}
	var keys []string
	known := false
	for _, t := range types {
		if !t.ActiveFlag {
			continue
		}
		keys = append(keys, t.KeyString)
		if t.KeyString == in.Type {
			known = true
		}
	}
	if !known {
		return Activity{}, tools.InvalidArgument("type", "unknown activity type %q; known types: %s", in.Type, strings.Join(keys, ", "))
	}
	a, err := c.AddActivity(ctx, pd.ActivityInput{
		Subject: in.Subject, Type: in.Type, OwnerID: in.UserID, DealID: in.DealID, PersonID: in.PersonID, OrgID: in.OrgID,
		DueDate: in.DueDate, DueTime: in.DueTime, Duration: in.Duration, Note: in.Note,
	})
	if err != nil {
		return Activity{}, err
	}
	if a.ID == 0 {
		return Activity{}, noID("activity")
	}
	snap, _ := ref.get(ctx, false)
	return shapeActivity(snap, *a), nil
}

// shapeActivity converts an upstream activity, with its owner's name.
func shapeActivity(snap snapshot, a pd.Activity) Activity {
	return Activity{
		ID: a.ID, Type: a.Type, Subject: a.Subject, Done: a.Done, DueDate: a.DueDate, DueTime: a.DueTime,
		Duration: a.Duration, Note: a.Note, OwnerID: a.OwnerID, OwnerName: snap.users[a.OwnerID],
		DealID: a.DealID, PersonID: a.PersonID, OrgID: a.OrgID, AddTime: a.AddTime,
	}
}

// noID is the error of a create whose 2xx reply names no record: it was
// carried out, but what it made is not known (outcome_unknown).
func noID(record string) error {
	return upstream.Sent(http.MethodPost, fmt.Errorf("pipedrive: the reply to the create names no %s id", record))
}
