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

// dealView is how a request wants deals rendered: the include_fields it
// asked for (acts is activitiesByDeal, computed once per request when any),
// the custom_fields keys (nil for all) and include_option_labels.
type dealView struct {
	include      []string
	acts         map[int]*dealActivities
	customKeys   []string
	optionLabels bool
}

// parseDealView reads include_fields, custom_fields and include_option_labels
// of GET /api/v2/deals and GET /api/v2/deals/{id}.
func (s *Server) parseDealView(q query) (dealView, *apiError) {
	var v dealView
	var err *apiError
	if v.include, err = q.listParam("include_fields", dealIncludeFields...); err != nil {
		return v, err
	}
	if v.customKeys, err = s.customFieldKeys(q); err != nil {
		return v, err
	}
	if v.optionLabels, _, err = q.boolParam("include_option_labels"); err != nil {
		return v, err
	}
	if len(v.include) > 0 {
		v.acts = s.activitiesByDeal()
	}
	return v, nil
}

// dealJSON is the deal's wire shape with its custom fields rendered for v.
func (s *Server) dealJSON(d *deal, v dealView) dealJSON {
	out := d.json()
	out.CustomFields = s.customFieldsOut(d, v.customKeys, v.optionLabels)
	return out
}

// dealOutput is the deal as a read returns it, with the included fields.
func (s *Server) dealOutput(d *deal, v dealView) any {
	include, acts := v.include, v.acts
	if len(include) == 0 {
		return s.dealJSON(d, v)
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
		case "notes_count":
			extra[f] = len(d.Notes)
		case "last_incoming_mail_time", "last_outgoing_mail_time", "source_lead_id":
			extra[f] = nil // the sandbox company has no mailbox and no leads
		default: // products, files, email messages: none in the sandbox
			extra[f] = 0
		}
	}
	return dealWithFields{dealJSON: s.dealJSON(d, v), extra: extra}
}
