package sandbox

// # Event metadata and subscribers
//
// GET /event/v1/metadata/integration answers {integrations: [{integration_id,
// integration_type, description, name}]} with the three seeded integrations: int-crm-001
// (CRM), int-pc-001 (PARTNER_CENTER) and int-mkt-001 (MARKETPLACE).
// GET /event/v1/metadata/integration/{id} answers {schema: {...}}, the JSON schema of the
// object event payload of that integration; an unknown id is 404. The API defines only the
// envelope ({schema: object}); its content here is the sandbox's: the opportunity the
// integration carries, the fields WorkSpan sets marked readOnly (event envelope, ids, audit
// state), the others being those a bulk load sets, with the keywords its validation follows
// (required name and stage, the stage names as an enum, amount's minimum, close_date's date
// format, currency's pattern). The marketplace integration adds offer_id and
// private_offer_id. Account events (raised on the CRM integration when an account's external
// id changes) fall outside it: it describes the integration's opportunities.
//
// GET /event/v1/metadata/event answers {events: [{name, description}]}: the object events
// object.all, object.create, object.update, object.delete, object.stage_change,
// object.partner_center_referral_submit and report.submit, and the collaboration events
// task.create, task.update, comment.create and membership.change.
// GET /event/v1/metadata/event/{event} answers {schema: {...}} for one of them; unknown is 404.
//
// POST /event/v1/subscriber (and its connector aliases object_integration_event and
// submit_to_partner_center) registers a webhook. The body is {integration_id, event*, name*,
// subscriber_type*, webhook_settings* {callback_url*}, object_ids, filters}: event is an event
// name or an array of them (duplicates are dropped), all known; name a non-blank string;
// subscriber_type "webhook"; callback_url an absolute http or https URL; integration_id, when
// given, a known integration, and required when an object event (object.*) or report.submit
// is subscribed; object_ids strings naming known objects; filters a string in the filter
// syntax of filter.go (stored as given; one that does not parse is 400). Anything else is
// 400. The reply is 200 {subscriber_id} with a Location header naming
// {base}/event/v1/subscriber/{subscriber_id}.
//
// GET /event/v1/subscriber/{id} answers {subscriber_id, name, objectids, event, filters,
// integraion_id (sic, as in the API), subscriber_type}; DELETE removes the subscriber and
// answers 200 with an empty body, and drops the events still queued for it. Both are 404 for
// an unknown id.
//
// Object events are delivered to the callback URLs as described in deliver.go. Collaboration
// events and report.submit can be subscribed but are never raised.

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// Subscriber is a stored webhook subscription.
type Subscriber struct {
	ID             string
	Name           string
	Events         []string
	IntegrationID  string
	SubscriberType string
	CallbackURL    string
	ObjectIDs      []string
	Filters        string
	CreatedAt      time.Time

	filter filterExpr // parsed Filters; nil matches everything
}

// Subscribers returns copies of the stored subscriptions in creation order.
func (s *Server) Subscribers() []Subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subscriber, 0, len(s.subOrder))
	for _, id := range s.subOrder {
		sub := *s.subscribers[id]
		sub.Events = slices.Clone(sub.Events)
		sub.ObjectIDs = slices.Clone(sub.ObjectIDs)
		out = append(out, sub)
	}
	return out
}

type eventInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

var eventList = []eventInfo{
	{"object.all", "All object events"},
	{"object.create", "Object created"},
	{"object.update", "Object updated"},
	{"object.delete", "Object deleted"},
	{"object.stage_change", "Stage of an object changed"},
	{"object.partner_center_referral_submit", "Referral submitted to Microsoft Partner Center"},
	{"report.submit", "Report submitted"},
	{"task.create", "Task created in a collaboration"},
	{"task.update", "Task updated in a collaboration"},
	{"comment.create", "Comment added to a collaboration"},
	{"membership.change", "Member added to or removed from a collaboration"},
}

func isObjectEvent(name string) bool {
	return strings.HasPrefix(name, "object.") || name == "report.submit"
}

func (s *Server) findIntegration(id string) *integration {
	for i := range s.integrations {
		if s.integrations[i].ID == id {
			return &s.integrations[i]
		}
	}
	return nil
}

func (s *Server) listIntegrations(*request) (*reply, *apiError) {
	list := make([]map[string]string, 0, len(s.integrations))
	for _, in := range s.integrations {
		list = append(list, map[string]string{
			"integration_id": in.ID, "integration_type": in.Type, "description": in.Description, "name": in.Name,
		})
	}
	return ok(map[string]any{"integrations": list})
}

func (s *Server) listEvents(*request) (*reply, *apiError) {
	return ok(map[string]any{"events": eventList})
}

// prop is a JSON Schema property of type typ with further keywords.
func prop(typ string, keywords ...any) map[string]any {
	p := map[string]any{"type": typ}
	for i := 0; i+1 < len(keywords); i += 2 {
		p[keywords[i].(string)] = keywords[i+1]
	}
	return p
}

// readOnly marks a property WorkSpan sets (the event envelope, ids, audit state).
func readOnly(p map[string]any) map[string]any {
	p["readOnly"] = true
	return p
}

func stageNames() []string {
	out := make([]string, len(stages))
	for i, st := range stages {
		out[i] = st.name
	}
	return out
}

// objectSchema is the JSON schema of the opportunity object events carry: the envelope and
// the fields WorkSpan sets are readOnly; the others are the opportunity's fields, as a bulk
// load sets them (see bulk.go), with the keywords its validation follows.
func objectSchema(title string, extra map[string]any) map[string]any {
	props := map[string]any{
		"event":          readOnly(prop("string", "description", "Name of the event")),
		"event_id":       readOnly(prop("string")),
		"subscriber_id":  readOnly(prop("string")),
		"occurred_at":    readOnly(prop("string", "format", "date-time")),
		"integration_id": readOnly(prop("string")),
		"object_id":      readOnly(prop("string", "description", "WorkSpan object id (long id)")),
		"object_type":    readOnly(prop("string", "enum", []string{kindOpportunity})),
		"name":           prop("string", "description", "Opportunity name"),
		"stage":          prop("string", "enum", stageNames(), "description", "Sales stage (any case)"),
		"previous_stage": readOnly(prop("string")),
		"amount":         prop("number", "minimum", 0, "description", "Deal amount, 0 or more"),
		"currency":       prop("string", "pattern", "^[A-Za-z]{3}$", "description", "ISO 4217 code, e.g. USD"),
		"close_date":     prop("string", "format", "date", "description", "Expected close, YYYY-MM-DD"),
		"partner":        prop("string", "description", "Partner, e.g. Microsoft"),
		"country":        prop("string", "description", "Country code, e.g. US"),
		"account_id":     readOnly(prop("string")),
		"account_name":   prop("string", "description", "Customer; linked to the account of that name if any"),
		"crm_opportunity_id": prop("string", "description",
			"CRM id (sales_details.crm_opportunity_id); a row whose CRM id matches an opportunity updates it"),
		"partner_center_integration_status": readOnly(prop("string", "enum", auditStatusCodes)),
		"partner_center_referral_id":        readOnly(prop("string")),
		"created_at":                        readOnly(prop("string", "format", "date-time")),
		"modified_at":                       readOnly(prop("string", "format", "date-time")),
	}
	for k, v := range extra {
		props[k] = v
	}
	return map[string]any{"type": "object", "title": title, "properties": props,
		"required": []string{"event", "occurred_at", "integration_id", "object_id", "object_type", "name", "stage"}}
}

func (s *Server) integrationSchema(req *request) (*reply, *apiError) {
	in := s.findIntegration(req.segs[4])
	if in == nil {
		return nil, notFound("Integration %s is not defined", req.segs[4])
	}
	extra := map[string]any{}
	if in.Type == "MARKETPLACE" {
		extra["offer_id"] = prop("string", "description", "Marketplace offer id")
		extra["private_offer_id"] = prop("string", "description", "Private offer id")
	}
	return ok(map[string]any{"schema": objectSchema(in.Name+" opportunity", extra)})
}

func (s *Server) eventSchema(req *request) (*reply, *apiError) {
	name := req.segs[4]
	if !slices.ContainsFunc(eventList, func(e eventInfo) bool { return e.Name == name }) {
		return nil, notFound("Event %s is not defined", name)
	}
	var schema map[string]any
	common := map[string]any{
		"event":           prop("string"),
		"occurred_at":     prop("string", "format", "date-time"),
		"object_id":       prop("string"),
		"collaboration":   prop("string"),
		"actor_name":      prop("string"),
		"actor_email":     prop("string", "format", "email"),
		"partner_name":    prop("string"),
		"collaborator_id": prop("string"),
	}
	add := func(kv ...string) map[string]any {
		props := map[string]any{}
		for k, v := range common {
			props[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			props[kv[i]] = prop(kv[i+1])
		}
		return map[string]any{"type": "object", "title": name, "properties": props}
	}
	switch {
	case isObjectEvent(name):
		schema = objectSchema(name, nil)
	case strings.HasPrefix(name, "task."):
		schema = add("task_id", "string", "title", "string", "status", "string", "assignee", "string", "due_date", "string")
	case strings.HasPrefix(name, "comment."):
		schema = add("comment_id", "string", "text", "string")
	default:
		schema = add("member_id", "string", "member_name", "string", "role", "string", "action", "string")
	}
	return ok(map[string]any{"schema": schema})
}

func (s *Server) subscribe(req *request) (*reply, *apiError) {
	body, err := decodeObject(req.body)
	if err != nil {
		return nil, err
	}
	name, err := reqString(body, "name")
	if err != nil {
		return nil, err
	}

	var events []string
	switch ev := body["event"].(type) {
	case nil:
		return nil, badRequest("Missing required field 'event'")
	case string:
		events = []string{ev}
	case []any:
		for _, e := range ev {
			str, isString := e.(string)
			if !isString {
				return nil, badRequest("Invalid value for 'event': expected an event name or an array of event names")
			}
			if !slices.Contains(events, str) {
				events = append(events, str)
			}
		}
		if len(events) == 0 {
			return nil, badRequest("Missing required field 'event'")
		}
	default:
		return nil, badRequest("Invalid value for 'event': expected an event name or an array of event names")
	}
	objectEvents := false
	for _, e := range events {
		if !slices.ContainsFunc(eventList, func(x eventInfo) bool { return x.Name == e }) {
			return nil, badRequest("Unknown event %q", e)
		}
		objectEvents = objectEvents || isObjectEvent(e)
	}

	subType, err := reqString(body, "subscriber_type")
	if err != nil {
		return nil, err
	}
	if subType != "webhook" {
		return nil, badRequest("Invalid subscriber_type %q: must be webhook", subType)
	}
	settings, isObject := body["webhook_settings"].(map[string]any)
	if body["webhook_settings"] == nil {
		return nil, badRequest("Missing required field 'webhook_settings'")
	}
	if !isObject {
		return nil, badRequest("Invalid value for 'webhook_settings': expected an object")
	}
	callback, err := reqString(settings, "callback_url")
	if err != nil {
		err.msg = "Missing required field 'webhook_settings.callback_url'"
		return nil, err
	}
	u, perr := url.Parse(callback)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, badRequest("Invalid webhook_settings.callback_url %q: must be an absolute http or https URL", callback)
	}

	integrationID, err := optString(body, "integration_id")
	if err != nil {
		return nil, err
	}
	integrationID = strings.TrimSpace(integrationID)
	switch {
	case integrationID != "" && s.findIntegration(integrationID) == nil:
		return nil, badRequest("Unknown integration_id %q", integrationID)
	case integrationID == "" && objectEvents:
		return nil, badRequest("Missing required field 'integration_id': object events need an integration")
	}

	var objectIDs []string
	switch ids := body["object_ids"].(type) {
	case nil:
	case []any:
		for _, v := range ids {
			id, isString := v.(string)
			if !isString {
				return nil, badRequest("Invalid value for 'object_ids': expected an array of strings")
			}
			if _, known := s.objects[id]; !known {
				return nil, badRequest("Unknown object id %q in object_ids", id)
			}
			objectIDs = append(objectIDs, id)
		}
	default:
		return nil, badRequest("Invalid value for 'object_ids': expected an array of strings")
	}
	filters, err := optString(body, "filters")
	if err != nil {
		return nil, err
	}
	filter, ferr := parseFilter(filters)
	if ferr != nil {
		return nil, badRequest("Invalid filters %q: %v", filters, ferr)
	}

	id := newHex(s.rng, 24)
	for s.subscribers[id] != nil {
		id = newHex(s.rng, 24)
	}
	s.subscribers[id] = &Subscriber{
		ID: id, Name: name, Events: events, IntegrationID: integrationID, SubscriberType: subType,
		CallbackURL: callback, ObjectIDs: objectIDs, Filters: filters, CreatedAt: req.now,
		filter: filter,
	}
	s.subOrder = append(s.subOrder, id)
	return &reply{
		status: 200,
		header: map[string]string{"Location": req.base + subscriberPrefix + id},
		body:   map[string]string{"subscriber_id": id},
	}, nil
}

func (s *Server) lookupSubscriber(id string) (*Subscriber, *apiError) {
	sub := s.subscribers[id]
	if sub == nil {
		return nil, notFound("Subscriber %s not found", id)
	}
	return sub, nil
}

func (s *Server) readSubscriber(req *request) (*reply, *apiError) {
	sub, err := s.lookupSubscriber(req.segs[3])
	if err != nil {
		return nil, err
	}
	objectIDs := sub.ObjectIDs
	if objectIDs == nil {
		objectIDs = []string{}
	}
	return ok(map[string]any{
		"subscriber_id":   sub.ID,
		"name":            sub.Name,
		"objectids":       objectIDs,
		"event":           sub.Events,
		"filters":         sub.Filters,
		"integraion_id":   sub.IntegrationID,
		"subscriber_type": sub.SubscriberType,
	})
}

func (s *Server) deleteSubscriber(req *request) (*reply, *apiError) {
	sub, err := s.lookupSubscriber(req.segs[3])
	if err != nil {
		return nil, err
	}
	delete(s.subscribers, sub.ID)
	s.subOrder = slices.DeleteFunc(s.subOrder, func(id string) bool { return id == sub.ID })
	s.deliveries.dropSubscriber(sub.ID)
	return &reply{status: 200}, nil
}
