package sandbox

import (
	"encoding/json"
	"fmt"
)

// dealIncludeFields are the optional fields GET /api/v2/deals and
// GET /api/v2/deals/{id} add when include_fields asks for them.
var dealIncludeFields = []string{
	"next_activity_id", "last_activity_id", "first_won_time", "products_count", "files_count",
	"notes_count", "followers_count", "email_messages_count", "activities_count",
	"done_activities_count", "undone_activities_count", "participants_count",
	"last_incoming_mail_time", "last_outgoing_mail_time", "smart_bcc_email", "source_lead_id",
}

// dealActivities summarises one deal's activities, as Pipedrive keeps them
// on the deal: the next undone activity (earliest due), the last done one
// (latest due) and the counts.
type dealActivities struct {
	next, last   *activity
	done, undone int
}

// dueKey orders activities by due date and time; an activity without a
// due date sorts after every dated one.
func dueKey(a *activity) string {
	if a.DueDate == nil {
		return "~"
	}
	k := *a.DueDate
	if a.DueTime != nil {
		k += " " + *a.DueTime
	}
	return k
}

func earlier(a, b *activity) bool {
	ka, kb := dueKey(a), dueKey(b)
	if ka != kb {
		return ka < kb
	}
	return a.ID < b.ID
}

// activitiesByDeal indexes the live activities of every deal.
func (s *Server) activitiesByDeal() map[int]*dealActivities {
	out := map[int]*dealActivities{}
	for _, a := range s.activities {
		if a.Deleted || a.DealID == nil {
			continue
		}
		st := out[*a.DealID]
		if st == nil {
			st = &dealActivities{}
			out[*a.DealID] = st
		}
		if a.Done {
			st.done++
			if st.last == nil || earlier(st.last, a) {
				st.last = a
			}
		} else {
			st.undone++
			if st.next == nil || earlier(a, st.next) {
				st.next = a
			}
		}
	}
	return out
}

// dealWithFields is a deal plus the fields include_fields asked for.
type dealWithFields struct {
	dealJSON
	extra map[string]any
}

// MarshalJSON writes the deal's fields followed by the included ones.
func (d dealWithFields) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(d.dealJSON)
	if err != nil || len(d.extra) == 0 {
		return base, err
	}
	extra, err := json.Marshal(d.extra)
	if err != nil {
		return nil, err
	}
	return append(append(base[:len(base)-1], ','), extra[1:]...), nil
}

// dealOutput is the deal as a read returns it, with the included fields;
// acts is activitiesByDeal, computed once per request.
func (s *Server) dealOutput(d *deal, include []string, acts map[int]*dealActivities) any {
	if len(include) == 0 {
		return d.json()
	}
	st := acts[d.ID]
	if st == nil {
		st = &dealActivities{}
	}
	idOf := func(a *activity) any {
		if a == nil {
			return nil
		}
		return a.ID
	}
	participants := 0
	if d.PersonID != nil {
		participants = 1
	}
	extra := map[string]any{}
	for _, f := range include {
		switch f {
		case "next_activity_id":
			extra[f] = idOf(st.next)
		case "last_activity_id":
			extra[f] = idOf(st.last)
		case "activities_count":
			extra[f] = st.done + st.undone
		case "done_activities_count":
			extra[f] = st.done
		case "undone_activities_count":
			extra[f] = st.undone
		case "first_won_time":
			extra[f] = tsp(d.WonTime)
		case "participants_count":
			extra[f] = participants
		case "followers_count":
			extra[f] = 1 // the owner follows their deal
		case "smart_bcc_email":
			extra[f] = fmt.Sprintf("treyresearch+deal%d@pipedrivemail.com", d.ID)
		case "last_incoming_mail_time", "last_outgoing_mail_time", "source_lead_id":
			extra[f] = nil // the sandbox company has no mailbox and no leads
		default: // products, files, notes, email messages: none in the sandbox
			extra[f] = 0
		}
	}
	return dealWithFields{dealJSON: d.json(), extra: extra}
}
