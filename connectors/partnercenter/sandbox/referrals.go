package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// render serializes a referral as served, with links for the request's host.
func (s *Server) render(ref *referral, base string) []byte {
	c := *ref
	self := base + apiPrefix + "/referrals/" + ref.ID
	related := base + apiPrefix + "/referrals?$filter=" + queryEscape("engagementId eq '"+ref.EngagementID+"'")
	c.Links = &links{Self: &link{URI: self, Method: http.MethodGet}, RelatedReferrals: &link{URI: related, Method: http.MethodGet}}
	return marshal(&c)
}

// entity renders a single referral with its @odata.context.
func (s *Server) entity(ref *referral, base string) []byte {
	body := s.render(ref, base)
	var out bytes.Buffer
	out.WriteString(`{"@odata.context":`)
	out.Write(marshal(base + apiPrefix + "/$metadata#referrals/$entity"))
	out.WriteByte(',')
	out.Write(body[1:])
	return out.Bytes()
}

func (s *Server) entityReply(status int, ref *referral, base string) *reply {
	return &reply{
		status: status,
		header: map[string]string{"Content-Type": odataJSON, "OData-Version": "4.0", "ETag": ref.ETag},
		body:   s.entity(ref, base),
	}
}

func (s *Server) find(id string) (*entry, *apiError) {
	e, ok := s.referrals[strings.ToLower(id)]
	if !ok {
		return nil, errorf(http.StatusNotFound, "Referral with id '%s' was not found.", id)
	}
	return e, nil
}

func (s *Server) store(ref *referral) {
	s.referrals[strings.ToLower(ref.ID)] = newEntry(ref)
}

func (s *Server) getReferral(req *request) (*reply, *apiError) {
	e, err := s.find(req.id)
	if err != nil {
		return nil, err
	}
	return s.entityReply(http.StatusOK, e.ref, req.base), nil
}

// Decoding and validation

// decodeJSON decodes a request body into v, turning type errors into messages that name the
// offending property.
func decodeJSON(body []byte, v any, what string) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("The request body is required.")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return badRequest("The request body must be %s.", what)
		}
		return badRequest("The property '%s' must be %s.", strings.ReplaceAll(te.Field, ".", "/"), jsonTypeName(te.Type))
	}
	return badRequest("The request body is not valid JSON: %v", err)
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int64:
		return "a number"
	case reflect.Slice:
		return "an array"
	default:
		return "an object"
	}
}

// normTime validates an optional date-time property and rewrites it in the canonical form.
func normTime(field string, v *string) *apiError {
	if *v == "" {
		return nil
	}
	t, ok := parseTime(*v)
	if !ok {
		return badRequest("The property '%s' must be a date-time (ISO 8601), not '%s'.", field, *v)
	}
	*v = fmtTime(t)
	return nil
}

// normEnum validates an optional enumeration property and rewrites it in canonical spelling.
func normEnum(field string, v *string, values []string) *apiError {
	if *v == "" {
		return nil
	}
	c, ok := canonical(*v, values)
	if !ok {
		return badRequest("The value '%s' is not valid for '%s'. Valid values: %s.", *v, field, strings.Join(values, ", "))
	}
	*v = c
	return nil
}

func normCurrency(field string, v *string) *apiError {
	if *v == "" {
		return nil
	}
	if !currencyRE.MatchString(*v) {
		return badRequest("The property '%s' must be a three-letter ISO 4217 currency code, not '%s'.", field, *v)
	}
	*v = strings.ToUpper(*v)
	return nil
}

func checkAmount(field string, v *float64) *apiError {
	if v != nil && *v < 0 {
		return badRequest("The property '%s' must not be negative.", field)
	}
	return nil
}

func checkMembers(field string, ms []member) *apiError {
	for i, m := range ms {
		if m.Email != "" && !emailRE.MatchString(m.Email) {
			return badRequest("The property '%s/%d/email' is not a valid e-mail address: '%s'.", field, i, m.Email)
		}
	}
	return nil
}

// validateEditable checks and normalises the properties a partner may set.
func validateEditable(r *referral) *apiError {
	if r.CustomerProfile == nil {
		return badRequest("The property 'customerProfile' is required.")
	}
	if strings.TrimSpace(r.CustomerProfile.Name) == "" {
		return badRequest("The property 'customerProfile/name' is required.")
	}
	if r.Consent == nil {
		return badRequest("The property 'consent' is required.")
	}
	if r.Details == nil {
		return badRequest("The property 'details' is required.")
	}
	switch r.CustomerProfile.IDs.(type) {
	case nil, []any, map[string]any:
	default:
		return badRequest("The property 'customerProfile/ids' must be an array or an object of identifiers.")
	}
	if err := checkMembers("customerProfile/team", r.CustomerProfile.Team); err != nil {
		return err
	}
	if err := checkMembers("team", r.Team); err != nil {
		return err
	}
	d := r.Details
	if err := checkAmount("details/dealValue", d.DealValue); err != nil {
		return err
	}
	if err := normCurrency("details/currency", &d.Currency); err != nil {
		return err
	}
	if err := normTime("details/closingDateTime", &d.ClosingDateTime); err != nil {
		return err
	}
	if err := normEnum("qualification", &r.Qualification, qualifications); err != nil {
		return err
	}
	if err := normEnum("salesStage", &r.SalesStage, salesStages); err != nil {
		return err
	}
	if r.InviteContext != nil {
		if err := normEnum("inviteContext/assistanceRequestCode", &r.InviteContext.AssistanceRequestCode, assistCodes); err != nil {
			return err
		}
	}
	return nil
}

// normStatus canonicalises status and substatus and checks that they belong together.
func normStatus(r *referral) *apiError {
	if r.Status == "" {
		return badRequest("The property 'status' is required.")
	}
	st, ok := canonical(r.Status, statuses)
	if !ok {
		return badRequest("The value '%s' is not valid for 'status'. Valid values: %s.", r.Status, strings.Join(statuses, ", "))
	}
	r.Status = st
	if r.Substatus == "" {
		return badRequest("The property 'substatus' is required for status '%s'. Valid values: %s.", st, strings.Join(substatusOf[st], ", "))
	}
	sub, ok := canonical(r.Substatus, allSubstatuses)
	if !ok {
		return badRequest("The value '%s' is not valid for 'substatus'. Valid values: %s.", r.Substatus, strings.Join(allSubstatuses, ", "))
	}
	r.Substatus = sub
	if !contains(substatusOf[st], sub) {
		return badRequest("The substatus '%s' is not valid for status '%s'. Valid values: %s.", sub, st, strings.Join(substatusOf[st], ", "))
	}
	return nil
}

// checkTransition applies the referral state machine to a change from prev to next.
func checkTransition(prevStatus, prevSub string, next *referral) *apiError {
	if err := normStatus(next); err != nil {
		return err
	}
	if prevStatus == "Closed" && (next.Status != prevStatus || next.Substatus != prevSub) {
		return errorf(http.StatusBadRequest, "The referral is Closed (%s); a closed referral cannot change status or substatus.", prevSub)
	}
	if !contains(nextStatuses[prevStatus], next.Status) {
		return badRequest("A referral cannot move from status '%s' to '%s'. Allowed: %s.", prevStatus, next.Status, strings.Join(nextStatuses[prevStatus], ", "))
	}
	return nil
}

// applyStatusSideEffects stamps the dates that follow a status change.
func applyStatusSideEffects(prevStatus string, r *referral, now time.Time) {
	if r.Status == "Active" && prevStatus != "Active" {
		r.AcceptedDateTime = fmtTime(now)
	}
	if r.Status == "Closed" && prevStatus != "Closed" {
		r.ClosedDateTime = fmtTime(now)
	}
}

// Create

func (s *Server) createReferral(req *request) (*reply, *apiError) {
	var in referral
	if err := decodeJSON(req.body, &in, "a Referral object"); err != nil {
		return nil, err
	}
	if in.Type == "" {
		return nil, badRequest("The property 'type' is required. Valid values: %s.", strings.Join(referralTypes, ", "))
	}
	if err := normEnum("type", &in.Type, referralTypes); err != nil {
		return nil, err
	}
	if err := validateEditable(&in); err != nil {
		return nil, err
	}
	// None is the enumerations' "not set" member (referral-resources): read it as absent.
	if strings.EqualFold(in.Status, "None") {
		in.Status = ""
	}
	if strings.EqualFold(in.Substatus, "None") {
		in.Substatus = ""
	}
	if in.Status != "" && in.Substatus == "" {
		if st, ok := canonical(in.Status, statuses); ok && st != "Closed" {
			in.Substatus = substatusOf[st][0]
		}
	}
	if in.Status == "" && in.Substatus != "" {
		return nil, badRequest("The property 'status' is required when 'substatus' is given.")
	}
	if in.Status != "" {
		if err := normStatus(&in); err != nil {
			return nil, err
		}
	}
	// The partner's own (outgoing) referral is accepted on creation: the create-a-referral
	// example sends New/Pending and is answered Active/Accepted. Only an explicit Closed
	// status (recording a deal already won or lost) is kept.
	if in.Status != "Closed" {
		in.Status, in.Substatus = "Active", "Accepted"
	}
	if in.EngagementID != "" {
		if !guidRE.MatchString(in.EngagementID) {
			return nil, badRequest("The property 'engagementId' must be a GUID, not '%s'.", in.EngagementID)
		}
		in.EngagementID = strings.ToLower(in.EngagementID)
	} else {
		in.EngagementID = newGUID(s.dataRng)
	}
	for i := range in.Target {
		if in.Target[i].ID == "" || in.Target[i].Type == "" {
			return nil, badRequest("The property 'target/%d' needs both 'id' and 'type'.", i)
		}
	}

	now := req.now
	ref := &referral{
		ID:                  newGUID(s.dataRng),
		EngagementID:        in.EngagementID,
		Name:                in.Name,
		OrganizationID:      s.partner.ID,
		OrganizationName:    s.partner.Name,
		MpnID:               s.partner.MpnID,
		ExternalReferenceID: in.ExternalReferenceID,
		CampaignID:          in.CampaignID,
		CreatedDateTime:     fmtTime(now),
		UpdatedDateTime:     fmtTime(now),
		Status:              in.Status,
		Substatus:           in.Substatus,
		StatusReason:        in.StatusReason,
		Type:                in.Type,
		Qualification:       in.Qualification,
		ReferralProgram:     in.ReferralProgram,
		SalesStage:          in.SalesStage,
		Direction:           "Outgoing",
		CallToAction:        in.CallToAction,
		Favorite:            in.Favorite,
		CustomerProfile:     in.CustomerProfile,
		Consent:             in.Consent,
		Details:             in.Details,
		Team:                in.Team,
		InviteContext:       in.InviteContext,
		Target:              in.Target,
		ETag:                s.etag(now),
	}
	applyStatusSideEffects("New", ref, now)
	s.store(ref)
	rep := s.entityReply(http.StatusCreated, ref, req.base)
	rep.header["Location"] = req.base + apiPrefix + "/referrals/" + ref.ID
	return rep, nil
}

// Concurrency (If-Match)

// etagMatches compares an If-Match header with the current eTag, ignoring quotes and W/.
func etagMatches(header, current string) bool {
	want := strings.Trim(current, `"`)
	for cand := range strings.SplitSeq(header, ",") {
		cand = strings.TrimSpace(cand)
		cand = strings.TrimPrefix(cand, "W/")
		if cand == "*" || strings.Trim(cand, `"`) == want {
			return true
		}
	}
	return false
}

func checkIfMatch(r *http.Request, e *entry, required bool) *apiError {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		if required {
			return errorf(http.StatusPreconditionRequired, "The If-Match header is required for this operation; send the referral's eTag.")
		}
		return nil
	}
	if !etagMatches(strings.Join(vals, ","), e.ref.ETag) {
		return errorf(http.StatusPreconditionFailed, "The If-Match header '%s' does not match the current eTag of referral '%s'.", strings.Join(vals, ","), e.ref.ID)
	}
	return nil
}

// Patch

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
	From  string          `json:"from,omitempty"`
}

// patchPaths are the JSON Pointer paths the connector's PATCH operations declare.
var patchPaths = []string{
	// PatchReferralById
	"/campaignId",
	"/consent/consentToShareReferralWithMicrosoftSellers",
	"/customerProfile/team",
	"/customerProfile/team/-",
	"/details/closingDateTime",
	"/details/currency",
	"/details/dealValue",
	"/details/notes",
	"/details/requirements/solutions",
	"/details/requirements/solutions/-",
	"/externalReferenceId",
	"/referralProgram",
	"/salesStage",
	"/status",
	"/substatus",
	"/statusReason",
	"/team",
	"/team/-",
	// CreateDealRegistrationByReferralId
	"/registrations/-",
	// PatchDealRegistrationByReferralId
	"/registrations/0/contract/startDateTime",
	"/registrations/0/contract/endDateTime",
	"/registrations/0/contract/signDateTime",
	"/registrations/0/contract/term",
	"/registrations/0/contract/value",
	"/registrations/0/solutionDetails/0/value",
	"/registrations/0/solutionDetails/0/currency",
	"/registrations/0/solutionDetails/0/isDeployedOnAzure",
	"/registrations/0/solutionDetails/0/primaryDeploymentOn",
	"/registrations/0/solutionDetails/0/pricingModel",
	"/registrations/0/solutionDetails/0/marketplaceTransactionDetails/isMarketplaceTransacted",
	"/registrations/0/solutionDetails/0/marketplaceTransactionDetails/marketplaceTransactionDateTime",
}

func (s *Server) patchReferral(req *request) (*reply, *apiError) {
	e, err := s.find(req.id)
	if err != nil {
		return nil, err
	}
	if err := checkIfMatch(req.r, e, false); err != nil {
		return nil, err
	}
	var ops []patchOp
	if err := decodeJSON(req.body, &ops, "a JSON Patch array of operations"); err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, badRequest("The JSON Patch document must contain at least one operation.")
	}
	prev := e.ref
	next := prev.clone()
	touchesRegistration := false
	for i, op := range ops {
		if err := s.applyOp(next, op, i, req.now); err != nil {
			return nil, err
		}
		if strings.HasPrefix(op.Path, "/registrations/") {
			touchesRegistration = true
		}
	}
	if err := checkTransition(prev.Status, prev.Substatus, next); err != nil {
		return nil, err
	}
	if touchesRegistration {
		if !registrable(next) {
			return nil, badRequest("Deal registrations can only be added to or updated on an accepted (Active/Accepted) or won (Closed/Won) referral; this referral is %s/%s.", next.Status, next.Substatus)
		}
		for i := range next.Registrations {
			if err := validateRegistration(&next.Registrations[i], fmt.Sprintf("registrations/%d", i)); err != nil {
				return nil, err
			}
		}
	}
	s.commit(prev, next, req.now)
	if prefersRepresentation(req.r) {
		rep := s.entityReply(http.StatusOK, next, req.base)
		rep.header["Preference-Applied"] = "return=representation"
		return rep, nil
	}
	return &reply{status: http.StatusNoContent, header: map[string]string{"ETag": next.ETag}}, nil
}

// registrable reports whether a referral may carry a deal registration: an accepted one, or
// one closed as won (Partner Center's co-sell docs register the deals a partner wins; see
// "Documented behaviour" in the package doc).
func registrable(r *referral) bool {
	return r.Status == "Active" || (r.Status == "Closed" && r.Substatus == "Won")
}

func prefersRepresentation(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for p := range strings.SplitSeq(v, ",") {
			pref, _, _ := strings.Cut(p, ";") // preference parameters do not matter here
			if strings.EqualFold(strings.ReplaceAll(strings.TrimSpace(pref), " ", ""), "return=representation") {
				return true
			}
		}
	}
	return false
}

// commit stores next in place of prev after a successful write.
func (s *Server) commit(prev, next *referral, now time.Time) {
	applyStatusSideEffects(prev.Status, next, now)
	next.UpdatedDateTime = fmtTime(now)
	next.ETag = s.etag(now)
	s.store(next)
}

func (s *Server) applyOp(r *referral, op patchOp, i int, now time.Time) *apiError {
	at := func(format string, args ...any) *apiError {
		return badRequest("Operation %d (%s %s): %s", i, op.Op, op.Path, fmt.Sprintf(format, args...))
	}
	switch op.Op {
	case "replace", "add":
	case "":
		return badRequest("Operation %d: the property 'op' is required. Supported operations: replace, add.", i)
	default:
		return badRequest("Operation %d: the operation '%s' is not supported. Supported operations: replace, add.", i, op.Op)
	}
	if op.Path == "" {
		return badRequest("Operation %d: the property 'path' is required.", i)
	}
	if !contains(patchPaths, op.Path) {
		return badRequest("Operation %d: the path '%s' cannot be patched. Allowed paths: %s.", i, op.Path, strings.Join(patchPaths, ", "))
	}
	appendOp := strings.HasSuffix(op.Path, "/-")
	if appendOp && op.Op != "add" {
		return at("the '-' (end of array) path can only be used with 'add'")
	}
	if len(op.Value) == 0 {
		return at("the property 'value' is required")
	}
	null := string(bytes.TrimSpace(op.Value)) == "null"

	str := func(dst *string) *apiError {
		if null {
			*dst = ""
			return nil
		}
		if json.Unmarshal(op.Value, dst) != nil {
			return at("the value must be a string")
		}
		return nil
	}
	requiredStr := func(dst *string) *apiError {
		if null {
			return at("the value must not be null")
		}
		return str(dst)
	}
	num := func(dst **float64) *apiError {
		if null {
			*dst = nil
			return nil
		}
		var f float64
		if json.Unmarshal(op.Value, &f) != nil {
			return at("the value must be a number")
		}
		if f < 0 {
			return at("the value must not be negative")
		}
		*dst = &f
		return nil
	}
	boolean := func(dst **bool) *apiError {
		if null {
			*dst = nil
			return nil
		}
		var b bool
		if json.Unmarshal(op.Value, &b) != nil {
			return at("the value must be a boolean")
		}
		*dst = &b
		return nil
	}
	dateTime := func(dst *string) *apiError {
		if err := str(dst); err != nil {
			return err
		}
		if *dst == "" {
			return nil
		}
		t, ok := parseTime(*dst)
		if !ok {
			return at("the value must be a date-time (ISO 8601)")
		}
		*dst = fmtTime(t)
		return nil
	}
	enum := func(dst *string, values []string) *apiError {
		if err := str(dst); err != nil {
			return err
		}
		if *dst == "" {
			return nil
		}
		c, ok := canonical(*dst, values)
		if !ok {
			return at("the value '%s' is not one of %s", *dst, strings.Join(values, ", "))
		}
		*dst = c
		return nil
	}
	currency := func(dst *string) *apiError {
		if err := str(dst); err != nil {
			return err
		}
		if *dst != "" && !currencyRE.MatchString(*dst) {
			return at("the value must be a three-letter ISO 4217 currency code")
		}
		*dst = strings.ToUpper(*dst)
		return nil
	}
	members := func(dst *[]member, one bool) *apiError {
		if null {
			if one {
				return at("the value must be a team member object")
			}
			*dst = nil
			return nil
		}
		var ms []member
		if one {
			var m member
			if json.Unmarshal(op.Value, &m) != nil || bytes.TrimSpace(op.Value)[0] != '{' {
				return at("the value must be a team member object")
			}
			ms = []member{m}
		} else if json.Unmarshal(op.Value, &ms) != nil {
			return at("the value must be an array of team member objects")
		}
		if err := checkMembers(strings.TrimSuffix(op.Path[1:], "/-"), ms); err != nil {
			return err
		}
		if one {
			*dst = append(*dst, ms...)
		} else {
			*dst = ms
		}
		return nil
	}
	cp := func() *customerProfile {
		if r.CustomerProfile == nil {
			r.CustomerProfile = &customerProfile{}
		}
		return r.CustomerProfile
	}
	det := func() *details {
		if r.Details == nil {
			r.Details = &details{}
		}
		return r.Details
	}
	reqs := func() *requirements {
		d := det()
		if d.Requirements == nil {
			d.Requirements = &requirements{}
		}
		return d.Requirements
	}

	switch op.Path {
	case "/campaignId":
		return str(&r.CampaignID)
	case "/externalReferenceId":
		return str(&r.ExternalReferenceID)
	case "/referralProgram":
		return str(&r.ReferralProgram)
	case "/statusReason":
		return str(&r.StatusReason)
	case "/salesStage":
		return enum(&r.SalesStage, salesStages)
	case "/status":
		if err := requiredStr(&r.Status); err != nil {
			return err
		}
		if c, ok := canonical(r.Status, statuses); ok {
			r.Status = c
			return nil
		}
		return at("the value '%s' is not one of %s", r.Status, strings.Join(statuses, ", "))
	case "/substatus":
		if err := requiredStr(&r.Substatus); err != nil {
			return err
		}
		if c, ok := canonical(r.Substatus, allSubstatuses); ok {
			r.Substatus = c
			return nil
		}
		return at("the value '%s' is not one of %s", r.Substatus, strings.Join(allSubstatuses, ", "))
	case "/consent/consentToShareReferralWithMicrosoftSellers":
		if r.Consent == nil {
			r.Consent = &consent{}
		}
		return boolean(&r.Consent.ConsentToShareReferralWithMicrosoftSeller)
	case "/customerProfile/team":
		return members(&cp().Team, false)
	case "/customerProfile/team/-":
		return members(&cp().Team, true)
	case "/team":
		return members(&r.Team, false)
	case "/team/-":
		return members(&r.Team, true)
	case "/details/closingDateTime":
		return dateTime(&det().ClosingDateTime)
	case "/details/currency":
		return currency(&det().Currency)
	case "/details/dealValue":
		return num(&det().DealValue)
	case "/details/notes":
		return str(&det().Notes)
	case "/details/requirements/solutions":
		if null {
			reqs().Solutions = nil
			return nil
		}
		var sols []any
		if json.Unmarshal(op.Value, &sols) != nil {
			return at("the value must be an array")
		}
		reqs().Solutions = sols
		return nil
	case "/details/requirements/solutions/-":
		var sol any
		if null || json.Unmarshal(op.Value, &sol) != nil {
			return at("the value must not be null")
		}
		rq := reqs()
		rq.Solutions = append(rq.Solutions, sol)
		return nil
	case "/registrations/-":
		return s.addRegistration(r, op, at, now)
	}

	// /registrations/0/...
	if len(r.Registrations) == 0 {
		return at("the referral has no deal registration at index 0; add one with /registrations/- first")
	}
	reg := &r.Registrations[0]
	if strings.HasPrefix(op.Path, "/registrations/0/contract/") {
		if reg.Contract == nil {
			reg.Contract = &contract{}
		}
		c := reg.Contract
		switch strings.TrimPrefix(op.Path, "/registrations/0/contract/") {
		case "startDateTime":
			return dateTime(&c.StartDateTime)
		case "endDateTime":
			return dateTime(&c.EndDateTime)
		case "signDateTime":
			return dateTime(&c.SignDateTime)
		case "term":
			return enum(&c.Term, contractTerms)
		default: // value
			return num(&c.Value)
		}
	}
	if len(reg.SolutionDetails) == 0 {
		return at("the deal registration has no solution details at index 0")
	}
	sd := &reg.SolutionDetails[0]
	switch strings.TrimPrefix(op.Path, "/registrations/0/solutionDetails/0/") {
	case "value":
		return num(&sd.Value)
	case "currency":
		return currency(&sd.Currency)
	case "isDeployedOnAzure":
		return boolean(&sd.IsDeployedOnAzure)
	case "primaryDeploymentOn":
		return enum(&sd.PrimaryDeploymentOn, deploymentSites)
	case "pricingModel":
		return enum(&sd.PricingModel, pricingModels)
	}
	if sd.MarketplaceTransactionDetails == nil {
		sd.MarketplaceTransactionDetails = &marketplaceTxnDetails{}
	}
	m := sd.MarketplaceTransactionDetails
	if strings.HasSuffix(op.Path, "/isMarketplaceTransacted") {
		return boolean(&m.IsMarketplaceTransacted)
	}
	return dateTime(&m.MarketplaceTransactionDateTime)
}

// Deal registrations

type registrationInput struct {
	Type            string           `json:"type"`
	SolutionDetails []solutionDetail `json:"solutionDetails"`
	Contract        *contract        `json:"contract"`
}

func (s *Server) addRegistration(r *referral, op patchOp, at func(string, ...any) *apiError, now time.Time) *apiError {
	var in registrationInput
	if b := bytes.TrimSpace(op.Value); len(b) == 0 || b[0] != '{' {
		return at("the value must be a deal registration object")
	}
	if err := decodeJSON(op.Value, &in, "a deal registration object"); err != nil {
		return at("%s", strings.TrimSuffix(err.msg, "."))
	}
	if in.Type == "" {
		return at("the property 'type' is required (AzureIPCoSell)")
	}
	if in.Type != registrationType {
		return at("the registration type '%s' is not supported; the only type is %s", in.Type, registrationType)
	}
	if len(r.Registrations) > 0 {
		return errorf(http.StatusConflict, "Operation (add /registrations/-): the referral already has a deal registration (%s); update it with the /registrations/0/... paths.", r.Registrations[0].ID)
	}
	reg := registration{
		ID:                   newGUID(s.dataRng),
		RegistrationDateTime: fmtTime(now),
		Status:               "ReviewPending",
		Contract:             in.Contract,
		SolutionDetails:      in.SolutionDetails,
		StatusHistory:        &statusHistory{ReviewPendingDateTime: fmtTime(now)},
	}
	if err := validateRegistration(&reg, "registrations/-"); err != nil {
		return at("%s", strings.TrimSuffix(err.msg, "."))
	}
	// Name the solutions the referral already lists.
	if r.Details != nil && r.Details.Requirements != nil {
		for i := range reg.SolutionDetails {
			for _, sol := range r.Details.Requirements.Solutions {
				m, _ := sol.(map[string]any)
				if id, _ := m["id"].(string); id != "" && strings.EqualFold(id, reg.SolutionDetails[i].ID) {
					if name, _ := m["name"].(string); name != "" && reg.SolutionDetails[i].Name == "" {
						reg.SolutionDetails[i].Name = name
					}
				}
			}
		}
	}
	r.Registrations = append(r.Registrations, reg)
	r.RegistrationStatus = reg.Status
	return nil
}

// validateRegistration checks a deal registration and normalises its values.
func validateRegistration(reg *registration, field string) *apiError {
	if len(reg.SolutionDetails) == 0 {
		return badRequest("The property '%s/solutionDetails' needs at least one solution.", field)
	}
	for i := range reg.SolutionDetails {
		sd := &reg.SolutionDetails[i]
		f := fmt.Sprintf("%s/solutionDetails/%d", field, i)
		if err := checkAmount(f+"/value", sd.Value); err != nil {
			return err
		}
		if err := normCurrency(f+"/currency", &sd.Currency); err != nil {
			return err
		}
		if err := normEnum(f+"/primaryDeploymentOn", &sd.PrimaryDeploymentOn, deploymentSites); err != nil {
			return err
		}
		if err := normEnum(f+"/pricingModel", &sd.PricingModel, pricingModels); err != nil {
			return err
		}
		if m := sd.MarketplaceTransactionDetails; m != nil {
			if err := normTime(f+"/marketplaceTransactionDetails/marketplaceTransactionDateTime", &m.MarketplaceTransactionDateTime); err != nil {
				return err
			}
		}
	}
	c := reg.Contract
	if c == nil {
		return badRequest("The property '%s/contract' is required.", field)
	}
	f := field + "/contract"
	if c.Value == nil {
		return badRequest("The property '%s/value' is required.", f)
	}
	if err := checkAmount(f+"/value", c.Value); err != nil {
		return err
	}
	if c.Currency == "" {
		return badRequest("The property '%s/currency' is required.", f)
	}
	if err := normCurrency(f+"/currency", &c.Currency); err != nil {
		return err
	}
	if c.Term == "" {
		return badRequest("The property '%s/term' is required (%s).", f, strings.Join(contractTerms, " or "))
	}
	if err := normEnum(f+"/term", &c.Term, contractTerms); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		v    *string
	}{{"startDateTime", &c.StartDateTime}, {"endDateTime", &c.EndDateTime}, {"signDateTime", &c.SignDateTime}} {
		if err := normTime(f+"/"+p.name, p.v); err != nil {
			return err
		}
	}
	if c.StartDateTime == "" {
		return badRequest("The property '%s/startDateTime' is required.", f)
	}
	if c.Term == "Finite" && c.EndDateTime == "" {
		return badRequest("The property '%s/endDateTime' is required for a Finite term.", f)
	}
	if c.EndDateTime != "" {
		start, _ := parseTime(c.StartDateTime)
		end, _ := parseTime(c.EndDateTime)
		if end.Before(start) {
			return badRequest("The property '%s/endDateTime' (%s) must not be before startDateTime (%s).", f, c.EndDateTime, c.StartDateTime)
		}
	}
	return nil
}

// Put (deprecated upstream)

func (s *Server) putReferral(req *request) (*reply, *apiError) {
	e, err := s.find(req.id)
	if err != nil {
		return nil, err
	}
	if err := checkIfMatch(req.r, e, true); err != nil {
		return nil, err
	}
	var in referral
	if err := decodeJSON(req.body, &in, "a Referral object"); err != nil {
		return nil, err
	}
	if in.ID != "" && !strings.EqualFold(in.ID, e.ref.ID) {
		return nil, badRequest("The id in the body ('%s') does not match the id in the URL ('%s').", in.ID, e.ref.ID)
	}
	if err := validateEditable(&in); err != nil {
		return nil, err
	}
	prev := e.ref
	next := prev.clone()
	next.Name = in.Name
	next.ExternalReferenceID = in.ExternalReferenceID
	next.CampaignID = in.CampaignID
	next.Status = in.Status
	next.Substatus = in.Substatus
	next.StatusReason = in.StatusReason
	next.Qualification = in.Qualification
	next.ReferralProgram = in.ReferralProgram
	next.SalesStage = in.SalesStage
	next.CallToAction = in.CallToAction
	next.Favorite = in.Favorite
	next.CustomerProfile = in.CustomerProfile
	next.Consent = in.Consent
	next.Details = in.Details
	next.Team = in.Team
	if err := checkTransition(prev.Status, prev.Substatus, next); err != nil {
		return nil, err
	}
	s.commit(prev, next, req.now)
	return s.entityReply(http.StatusOK, next, req.base), nil
}
