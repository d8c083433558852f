package sandbox

// # Objects
//
// The sandbox holds two kinds of WorkSpan objects, opportunities and accounts, each with an
// 18-digit numeric long id (the object_id of the API).
//
// GET /app/v1/object/{object_id}/external_id answers {object_id, external_ids: [{field_name,
// external_id}]} with every external id of the object, sorted by field name (an empty array
// when there is none); an unknown object is 404.
//
// PATCH /app/v1/object/{object_id}/external_id takes {external_id*, field_name} and stores the
// external id in that field, replacing the previous value. Without field_name the default field
// of the object's kind is used: sales_details.crm_opportunity_id for opportunities,
// account_info.external_account_id for accounts. A missing, empty or non-string external_id is
// 400, as is a field_name that is not a dotted path of identifiers (a.b_c). The reply is
// {external_id, object_id, field_name}.
//
// PATCH /app/v1/object/{object_id}/audit takes {field_name*, status_code*, message*,
// integration_id, external_id}. field_name must be partner_center.integration_status;
// status_code one of SCHEDULED, CREATE_FAILED, UPDATE_FAILED, LINKED; message a non-empty
// string. Each accepted request appends an entry to the object's audit trail and sets the
// object's current partner_center.integration_status; a LINKED entry with an external_id also
// stores it as the partner_center.referral_id external id. The reply is {object_id, field_name,
// status_code}.
//
// The unknown object check (404) comes before body validation (400).
//
// Both PATCH requests raise webhook events (object.update, and
// object.partner_center_referral_submit for a SCHEDULED audit): see deliver.go.

import (
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

const (
	kindOpportunity = "opportunity"
	kindAccount     = "account"

	fieldCRMOpportunityID  = "sales_details.crm_opportunity_id"
	fieldExternalAccountID = "account_info.external_account_id"
	fieldIntegrationStatus = "partner_center.integration_status"
	fieldReferralID        = "partner_center.referral_id"
)

// stages are the opportunity stages, with their win probability in percent.
var stages = []struct {
	name        string
	probability int
}{
	{"Prospect", 10}, {"Qualify", 20}, {"Develop", 40}, {"Propose", 60}, {"Closed Won", 100}, {"Closed Lost", 0},
}

// canonicalStage returns the stage name matching s case-insensitively.
func canonicalStage(s string) (string, bool) {
	for _, st := range stages {
		if strings.EqualFold(strings.TrimSpace(s), st.name) {
			return st.name, true
		}
	}
	return "", false
}

func stageProbability(stage string) int {
	for _, st := range stages {
		if st.name == stage {
			return st.probability
		}
	}
	return 0
}

func isClosed(stage string) bool { return strings.HasPrefix(stage, "Closed") }

var auditStatusCodes = []string{"SCHEDULED", "CREATE_FAILED", "UPDATE_FAILED", "LINKED"}

type auditEntry struct {
	FieldName     string
	StatusCode    string
	Message       string
	IntegrationID string
	ExternalID    string
	At            time.Time
}

// object is a stored WorkSpan object.
type object struct {
	id   string
	kind string
	name string

	// opportunities
	stage     string
	amount    *float64
	currency  string
	closeDate string // YYYY-MM-DD or ""
	partner   string
	country   string
	accountID string
	custom    map[string]string // other bulk load columns

	// accounts
	industry string
	website  string

	externalIDs       map[string]string // field name → external id
	integrationStatus string
	audit             []auditEntry
	createdAt         time.Time
	modifiedAt        time.Time
}

// Object returns the current state of a stored object (an opportunity or an account) as a
// generic document, or false when the id is unknown. The document is a copy.
func (s *Server) Object(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress(s.now())
	o, found := s.objects[id]
	if !found {
		return nil, false
	}
	return s.objectDoc(o), true
}

func (s *Server) objectDoc(o *object) map[string]any {
	doc := map[string]any{
		"object_id":    o.id,
		"object_type":  o.kind,
		"name":         o.name,
		"country":      o.country,
		"created_at":   formatTime(o.createdAt),
		"modified_at":  formatTime(o.modifiedAt),
		"external_ids": stringMap(o.externalIDs),
	}
	audit := make([]any, 0, len(o.audit))
	for _, a := range o.audit {
		audit = append(audit, map[string]any{
			"field_name":     a.FieldName,
			"status_code":    a.StatusCode,
			"message":        a.Message,
			"integration_id": a.IntegrationID,
			"external_id":    a.ExternalID,
			"created_at":     formatTime(a.At),
		})
	}
	doc["audit"] = audit
	if o.integrationStatus != "" {
		doc["partner_center"] = map[string]any{"integration_status": o.integrationStatus}
	}
	switch o.kind {
	case kindOpportunity:
		doc["stage"] = o.stage
		if o.amount != nil {
			doc["amount"] = *o.amount
		} else {
			doc["amount"] = nil
		}
		doc["currency"] = o.currency
		doc["close_date"] = o.closeDate
		doc["partner"] = o.partner
		doc["account_id"] = o.accountID
		if a := s.objects[o.accountID]; a != nil {
			doc["account_name"] = a.name
		}
		doc["custom_fields"] = stringMap(o.custom)
	case kindAccount:
		doc["industry"] = o.industry
		doc["website"] = o.website
	}
	return doc
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// newObjectID returns an unused 18-digit long id.
func (s *Server) newObjectID() string {
	for {
		id := newDigits(s.rng, objectIDDigits)
		if _, taken := s.objects[id]; !taken {
			return id
		}
	}
}

func defaultExternalField(kind string) string {
	if kind == kindAccount {
		return fieldExternalAccountID
	}
	return fieldCRMOpportunityID
}

var fieldNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

func (s *Server) lookupObject(id string) (*object, *apiError) {
	o, found := s.objects[id]
	if !found {
		return nil, notFound("WorkSpan object not found: %s", id)
	}
	return o, nil
}

// setExternalID stores an external id of an object, keeping the CRM id index: a CRM id
// finds the first opportunity (by creation time, then id) that carries it.
func (s *Server) setExternalID(o *object, field, value string) {
	old := o.externalIDs[field]
	o.externalIDs[field] = value
	if field != fieldCRMOpportunityID || o.kind != kindOpportunity || old == value {
		return
	}
	if old != "" && s.crmIndex[old] == o {
		delete(s.crmIndex, old)
		for _, other := range s.sortedOpportunities() { // rare: a CRM id moved away
			if other.externalIDs[fieldCRMOpportunityID] == old {
				s.crmIndex[old] = other
				break
			}
		}
	}
	if cur := s.crmIndex[value]; cur == nil || createdBefore(o, cur) {
		s.crmIndex[value] = o
	}
}

// createdBefore orders objects by creation time, then id.
func createdBefore(a, b *object) bool {
	if !a.createdAt.Equal(b.createdAt) {
		return a.createdAt.Before(b.createdAt)
	}
	return a.id < b.id
}

// touch records a change to an object.
func (s *Server) touch(o *object, now time.Time) {
	o.modifiedAt = now
	if o.kind == kindOpportunity {
		s.version++
	}
}

func (s *Server) getExternalID(req *request) (*reply, *apiError) {
	o, err := s.lookupObject(req.segs[3])
	if err != nil {
		return nil, err
	}
	fields := slices.Sorted(maps.Keys(o.externalIDs))
	ids := make([]map[string]string, 0, len(fields))
	for _, f := range fields {
		ids = append(ids, map[string]string{"field_name": f, "external_id": o.externalIDs[f]})
	}
	return ok(map[string]any{"object_id": o.id, "external_ids": ids})
}

// optString reads an optional string property of a JSON object.
func optString(body map[string]any, key string) (string, *apiError) {
	v, present := body[key]
	if !present || v == nil {
		return "", nil
	}
	str, isString := v.(string)
	if !isString {
		return "", badRequest("Invalid value for '%s': expected a string", key)
	}
	return str, nil
}

// reqString reads a required, non-blank string property of a JSON object.
func reqString(body map[string]any, key string) (string, *apiError) {
	str, err := optString(body, key)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(str) == "" {
		return "", badRequest("Missing required field '%s'", key)
	}
	return str, nil
}

func decodeObject(body []byte) (map[string]any, *apiError) {
	var m map[string]any
	if err := decodeJSON(body, &m, false); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, badRequest("The request body must be a JSON object")
	}
	return m, nil
}

func (s *Server) connectExternalID(req *request) (*reply, *apiError) {
	o, err := s.lookupObject(req.segs[3])
	if err != nil {
		return nil, err
	}
	body, err := decodeObject(req.body)
	if err != nil {
		return nil, err
	}
	ext, err := reqString(body, "external_id")
	if err != nil {
		return nil, err
	}
	field, err := optString(body, "field_name")
	if err != nil {
		return nil, err
	}
	field = strings.TrimSpace(field)
	if field == "" {
		field = defaultExternalField(o.kind)
	}
	if !fieldNameRE.MatchString(field) {
		return nil, badRequest("Invalid field_name %q: expected a WorkSpan field path such as %s", field, defaultExternalField(o.kind))
	}
	changed := o.externalIDs[field] != ext
	s.setExternalID(o, field, ext)
	s.touch(o, req.now)
	if changed {
		s.emit([]string{"object.update"}, o, s.externalIDIntegration(field), "", req.now)
	}
	return ok(map[string]string{"external_id": ext, "object_id": o.id, "field_name": field})
}

func (s *Server) addAudit(req *request) (*reply, *apiError) {
	o, err := s.lookupObject(req.segs[3])
	if err != nil {
		return nil, err
	}
	body, err := decodeObject(req.body)
	if err != nil {
		return nil, err
	}
	field, err := reqString(body, "field_name")
	if err != nil {
		return nil, err
	}
	if field != fieldIntegrationStatus {
		return nil, badRequest("Invalid field_name %q: must be %s", field, fieldIntegrationStatus)
	}
	code, err := reqString(body, "status_code")
	if err != nil {
		return nil, err
	}
	if !slices.Contains(auditStatusCodes, code) {
		return nil, badRequest("Invalid status_code %q: must be one of %s", code, strings.Join(auditStatusCodes, ", "))
	}
	msg, err := reqString(body, "message")
	if err != nil {
		return nil, err
	}
	integrationID, err := optString(body, "integration_id")
	if err != nil {
		return nil, err
	}
	ext, err := optString(body, "external_id")
	if err != nil {
		return nil, err
	}
	o.audit = append(o.audit, auditEntry{
		FieldName: field, StatusCode: code, Message: msg, IntegrationID: integrationID, ExternalID: ext, At: req.now,
	})
	o.integrationStatus = code
	if code == "LINKED" && strings.TrimSpace(ext) != "" {
		s.setExternalID(o, fieldReferralID, ext)
	}
	s.touch(o, req.now)
	events := []string{"object.update"}
	if code == "SCHEDULED" {
		events = append(events, "object.partner_center_referral_submit")
	}
	eventIntegration := strings.TrimSpace(integrationID)
	if eventIntegration == "" {
		eventIntegration = s.integrationOfType("PARTNER_CENTER")
	}
	s.emit(events, o, eventIntegration, "", req.now)
	return ok(map[string]string{"object_id": o.id, "field_name": field, "status_code": code})
}

// sortedOpportunities returns the opportunities ordered by creation time, then id.
func (s *Server) sortedOpportunities() []*object {
	out := make([]*object, 0, len(s.objects))
	for _, o := range s.objects {
		if o.kind == kindOpportunity {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return createdBefore(out[i], out[j]) })
	return out
}
