package pipedrive

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

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
	// DoneTime is when it was marked done.
	DoneTime string `json:"done_time,omitempty"`
	// DealTitle is the linked deal's title, on list rows with full.
	DealTitle string `json:"deal_title,omitempty"`
}

func (s *service) addActivity(ctx context.Context, in AddActivityArgs) (Activity, error) {
	c, ref := s.at(ctx)
	if strings.TrimSpace(in.Subject) == "" {
		return Activity{}, tools.InvalidArgument("subject", "subject must not be blank")
	}
	if err := checkSchedule(in.DueDate, in.DueTime, in.Duration); err != nil {
		return Activity{}, err
	}
	if err := checkActivityType(ctx, ref, in.Type); err != nil {
		return Activity{}, err
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

// checkSchedule validates an activity's optional due date, due time and
// duration.
func checkSchedule(dueDate, dueTime, duration string) error {
	for _, c := range []*tools.Error{
		tools.CheckDate("due_date", dueDate),
		tools.CheckClock("due_time", dueTime),
		tools.CheckClock("duration", duration),
	} {
		if c != nil {
			return c
		}
	}
	return nil
}

// checkActivityType refuses a type key that is not among the company's
// active activity types (cached), naming them.
func checkActivityType(ctx context.Context, ref *refData, typ string) error {
	types, err := ref.activityTypes(ctx)
	if err != nil {
		return err
	}
	var keys []string
	for _, t := range types {
		if !t.ActiveFlag {
			continue
		}
		if t.KeyString == typ {
			return nil
		}
		keys = append(keys, t.KeyString)
	}
	return tools.InvalidArgument("type", "unknown activity type %q; known types: %s", typ, strings.Join(keys, ", "))
}

// shapeActivity converts an upstream activity, with its owner's name.
func shapeActivity(snap snapshot, a pd.Activity) Activity {
	return Activity{
		ID: a.ID, Type: a.Type, Subject: a.Subject, Done: a.Done, DueDate: a.DueDate, DueTime: a.DueTime,
		Duration: a.Duration, Note: a.Note, OwnerID: a.OwnerID, OwnerName: snap.users[a.OwnerID],
		DealID: a.DealID, PersonID: a.PersonID, OrgID: a.OrgID, AddTime: a.AddTime, DoneTime: a.MarkedAsDoneTime,
	}
}

// noID is the error of a create whose 2xx reply names no record: it was
// carried out, but what it made is not known (outcome_unknown).
func noID(record string) error {
	return upstream.Sent(http.MethodPost, fmt.Errorf("pipedrive: the reply to the create names no %s id", record))
}

// UpdateActivityArgs are the arguments of pipedrive_update_activity: every
// field given is changed, every other one is left as it is.
type UpdateActivityArgs struct {
	ActivityID int64  `json:"activity_id" jsonschema:"minimum=1"`
	Subject    string `json:"subject,omitempty" jsonschema:"minLength=1"`
	Type       string `json:"type,omitempty" jsonschema:"minLength=1" jsonschema_description:"Activity type key, e.g. call."`
	DueDate    string `json:"due_date,omitempty" jsonschema:"format=date"`
	DueTime    string `json:"due_time,omitempty" jsonschema:"pattern=^([01][0-9]|2[0-3]):[0-5][0-9]$" jsonschema_description:"HH:MM, UTC."`
	Duration   string `json:"duration,omitempty" jsonschema:"pattern=^([01][0-9]|2[0-3]):[0-5][0-9]$" jsonschema_description:"HH:MM."`
	Note       string `json:"note,omitempty" jsonschema_description:"Replaces the note."`
	// Done is a pointer so that false (reopen) is told from not given.
	Done   *bool `json:"done,omitempty" jsonschema_description:"true marks it done, false not done."`
	UserID int64 `json:"user_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"New assignee user id."`
}

func (s *service) updateActivity(ctx context.Context, in UpdateActivityArgs) (Activity, error) {
	c, ref := s.at(ctx)
	if in.Subject == "" && in.Type == "" && in.DueDate == "" && in.DueTime == "" && in.Duration == "" && in.Note == "" && in.Done == nil && in.UserID == 0 {
		return Activity{}, tools.InvalidArgument("", "give at least one field to change: subject, type, due_date, due_time, duration, note, done or user_id")
	}
	if in.Subject != "" && strings.TrimSpace(in.Subject) == "" {
		return Activity{}, tools.InvalidArgument("subject", "subject must not be blank")
	}
	if err := checkSchedule(in.DueDate, in.DueTime, in.Duration); err != nil {
		return Activity{}, err
	}
	if in.Type != "" {
		if err := checkActivityType(ctx, ref, in.Type); err != nil {
			return Activity{}, err
		}
	}
	if err := checkUser(ctx, ref, "user_id", in.UserID); err != nil {
		return Activity{}, err
	}
	a, err := c.UpdateActivity(ctx, in.ActivityID, pd.ActivityPatch{
		Subject: opt(in.Subject), Type: opt(in.Type), DueDate: opt(in.DueDate), DueTime: opt(in.DueTime),
		Duration: opt(in.Duration), Note: opt(in.Note), Done: in.Done, OwnerID: opt(in.UserID),
	})
	if err != nil {
		return Activity{}, err
	}
	snap, _ := ref.get(ctx, false)
	return shapeActivity(snap, *a), nil
}

// ListActivitiesArgs are the arguments of pipedrive_list_activities.
type ListActivitiesArgs struct {
	DealID       int64  `json:"deal_id,omitempty" jsonschema:"minimum=1"`
	PersonID     int64  `json:"person_id,omitempty" jsonschema:"minimum=1"`
	OrgID        int64  `json:"org_id,omitempty" jsonschema:"minimum=1"`
	OwnerID      int64  `json:"owner_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"Assignee user id."`
	Done         *bool  `json:"done,omitempty"`
	Due          string `json:"due,omitempty" jsonschema:"enum=overdue,enum=today,enum=upcoming" jsonschema_description:"Due before today (and not done), today, or after today; UTC."`
	UpdatedSince string `json:"updated_since,omitempty" jsonschema_description:"RFC 3339 or YYYY-MM-DD."`
	UpdatedUntil string `json:"updated_until,omitempty"`
	Limit        int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"Page size, default 50."`
	Cursor       string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page."`
	Full         bool   `json:"full,omitempty" jsonschema_description:"Also return notes and deal titles."`
}

// ActivityList is a page of activities.
type ActivityList struct {
	Activities []Activity `json:"activities"`
	// HasMore says whether another page exists; NextCursor fetches it.
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Due windows of pipedrive_list_activities.
const (
	dueOverdue  = "overdue"
	dueToday    = "today"
	dueUpcoming = "upcoming"
)

// scanPagesPerCall bounds the upstream pages one call with a due window
// reads while none of their activities is in the window; the caller
// continues with next_cursor.
const scanPagesPerCall = 3

// dueWindow is a range of due dates, each bound inclusive ("" unbounded),
// compared as YYYY-MM-DD strings.
type dueWindow struct{ from, to string }

func newDueWindow(due string, today time.Time) *dueWindow {
	day := func(d int) string { return today.AddDate(0, 0, d).Format(time.DateOnly) }
	switch due {
	case dueOverdue:
		return &dueWindow{to: day(-1)}
	case dueToday:
		return &dueWindow{from: day(0), to: day(0)}
	case dueUpcoming:
		return &dueWindow{from: day(1)}
	}
	return nil
}

// place tells where a due date lies: -1 before the window (or no due
// date: not in it, and no sign of its end), 0 in it, +1 after it.
func (w *dueWindow) place(due string) int {
	switch {
	case due == "" || w.from != "" && due < w.from:
		return -1
	case w.to != "" && due > w.to:
		return 1
	}
	return 0
}

func (s *service) listActivities(ctx context.Context, in ListActivitiesArgs) (ActivityList, error) {
	c, ref := s.at(ctx)
	since, verr := tools.ParseSince("updated_since", in.UpdatedSince)
	if verr != nil {
		return ActivityList{}, verr
	}
	until, verr := tools.ParseSince("updated_until", in.UpdatedUntil)
	if verr != nil {
		return ActivityList{}, verr
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		return ActivityList{}, tools.InvalidArgument("updated_until", "updated_until must be after updated_since")
	}
	done := in.Done
	if in.Due == dueOverdue {
		if done != nil && *done {
			return ActivityList{}, tools.InvalidArgument("done", "an overdue activity is one not done: leave out done, or use due today or upcoming")
		}
		done = new(bool)
	}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	window := newDueWindow(in.Due, c.Clock().Now().UTC())
	params := pd.ListActivitiesParams{
		DealID: in.DealID, PersonID: in.PersonID, OrgID: in.OrgID, OwnerID: in.OwnerID, Done: done,
		UpdatedSince: since, UpdatedUntil: until, SortBy: "due_date", SortDirection: "asc", Limit: limit, Cursor: in.Cursor,
	}
	var rows []pd.Activity
	for pages := 1; ; pages++ {
		acts, resp, err := c.ListActivities(ctx, params)
		if err != nil {
			return ActivityList{}, err
		}
		params.Cursor = resp.NextCursor
		if window == nil {
			rows = acts
			break
		}
		passed := false
		for _, a := range acts {
			p := window.place(a.DueDate)
			if p > 0 {
				passed = true // sorted by due date: the rest is later still
				break
			}
			if p == 0 {
				rows = append(rows, a)
			}
		}
		if passed {
			params.Cursor = ""
		}
		if len(rows) > 0 || params.Cursor == "" || pages >= scanPagesPerCall {
			break
		}
	}
	return ActivityList{Activities: activityRows(ctx, c, ref, rows, in.Full), NextCursor: params.Cursor, HasMore: params.Cursor != ""}, nil
}

// activityRows shapes list rows with their owners' names; with full also
// their notes and their deals' titles (one call per hundred deals, at most
// activityCallsPerDetail; titles are best effort).
func activityRows(ctx context.Context, c *pd.Client, ref *refData, acts []pd.Activity, full bool) []Activity {
	snap, _ := ref.get(ctx, false)
	titles := map[int64]string{}
	if full {
		deals := make([]int64, 0, len(acts))
		for _, a := range acts {
			deals = append(deals, a.DealID)
		}
		inBatches(distinctIDs(deals), activityCallsPerDetail, func(batch []int64) error {
			found, _, err := c.ListDeals(ctx, pd.ListDealsParams{IDs: batch, Status: "open,won,lost,deleted", Limit: len(batch)})
			for _, d := range found {
				titles[d.ID] = d.Title
			}
			return err
		})
	}
	out := make([]Activity, 0, len(acts))
	for _, a := range acts {
		row := shapeActivity(snap, a)
		if !full {
			row.Note, row.AddTime = "", ""
		}
		row.DealTitle = titles[a.DealID]
		out = append(out, row)
	}
	return out
}
