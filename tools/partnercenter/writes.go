package partnercenter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Contact is a person on the customer's or the partner's side.
type Contact struct {
	FirstName string `json:"first_name" jsonschema:"minLength=1"`
	LastName  string `json:"last_name" jsonschema:"minLength=1"`
	Email     string `json:"email" jsonschema:"format=email"`
	Phone     string `json:"phone,omitempty"`
	// Locale and DisableNotifications are the member's contactPreference.
	Locale               string `json:"locale,omitempty"`
	DisableNotifications *bool  `json:"disable_notifications,omitempty"`
}

func (c Contact) member() pc.Member {
	m := pc.Member{FirstName: c.FirstName, LastName: c.LastName, Email: c.Email, PhoneNumber: c.Phone}
	if c.Locale != "" || c.DisableNotifications != nil {
		m.ContactPreference = &pc.ContactPreference{Locale: c.Locale, DisableNotifications: c.DisableNotifications}
	}
	return m
}

// members converts contacts; an empty list is an empty (not a null) array.
func members(cs []Contact) []pc.Member {
	out := make([]pc.Member, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.member())
	}
	return out
}

// TargetArgs is whom a referral is addressed to.
type TargetArgs struct {
	ID   string `json:"id" jsonschema:"minLength=1"`
	Type string `json:"type" jsonschema:"minLength=1"`
}

// OrganizationArgs names a Partner Center organization.
type OrganizationArgs struct {
	OrganizationID   string `json:"organization_id,omitempty"`
	OrganizationName string `json:"organization_name,omitempty"`
}

// InviteContextArgs is what the inviting organization says about a referral.
type InviteContextArgs struct {
	Notes                 string            `json:"notes,omitempty"`
	InvitedBy             *OrganizationArgs `json:"invited_by,omitempty"`
	AssistanceRequestCode string            `json:"assistance_request_code,omitempty" jsonschema:"enum=Unknown,enum=GeneralOrOther,enum=CustomerTechnicalArchitecture,enum=ProofOfConceptOrDemo,enum=QuotesOrLicensing,enum=PostSalesCustomerSuccess,enum=WorkloadSpecificValueProposition"`
}

func (ic *InviteContextArgs) invite() *pc.InviteContext {
	if ic == nil {
		return nil
	}
	out := &pc.InviteContext{Notes: ic.Notes, AssistanceRequestCode: ic.AssistanceRequestCode}
	if ic.InvitedBy != nil {
		out.InvitedBy = &pc.Organization{OrganizationID: ic.InvitedBy.OrganizationID, OrganizationName: ic.InvitedBy.OrganizationName}
	}
	return out
}

// AttributeArgs is one typed attribute of the customer's additional requirements.
type AttributeArgs struct {
	ID   string `json:"id" jsonschema:"minLength=1"`
	Type string `json:"type,omitempty"`
}

// RequirementsArgs are what the customer needs (details.requirements).
// Industries, products and services are ids; solutions and offers, which
// the definition leaves untyped, are objects such as {"id": "SOL-…"}.
type RequirementsArgs struct {
	Industries []string         `json:"industries,omitempty"`
	Products   []string         `json:"products,omitempty"`
	Services   []string         `json:"services,omitempty"`
	Solutions  []map[string]any `json:"solutions,omitempty"`
	Offers     []map[string]any `json:"offers,omitempty"`
	// Attributes are additionalRequirements.attributes.
	Attributes []AttributeArgs `json:"attributes,omitempty"`
}

func idRefs(ids []string) []pc.IDRef {
	var out []pc.IDRef
	for _, id := range ids {
		out = append(out, pc.IDRef{ID: id})
	}
	return out
}

// rawItems encodes free-form items; an empty list is an empty array.
func rawItems(field string, items []map[string]any) ([]json.RawMessage, *tools.Error) {
	out := make([]json.RawMessage, 0, len(items))
	for i, it := range items {
		if len(it) == 0 {
			return nil, tools.InvalidArgument(field, "%s[%d] is empty; give at least its id", field, i)
		}
		raw, err := json.Marshal(it)
		if err != nil {
			return nil, tools.InvalidArgument(field, "%s[%d]: %v", field, i, err)
		}
		out = append(out, raw)
	}
	return out, nil
}

func (rq *RequirementsArgs) requirements() (*pc.Requirements, *tools.Error) {
	if rq == nil {
		return nil, nil
	}
	out := &pc.Requirements{Industries: idRefs(rq.Industries), Products: idRefs(rq.Products), Services: idRefs(rq.Services)}
	var err *tools.Error
	if len(rq.Solutions) > 0 {
		if out.Solutions, err = rawItems("details.requirements.solutions", rq.Solutions); err != nil {
			return nil, err
		}
	}
	if len(rq.Offers) > 0 {
		if out.Offers, err = rawItems("details.requirements.offers", rq.Offers); err != nil {
			return nil, err
		}
	}
	if len(rq.Attributes) > 0 {
		ar := &pc.AdditionalRequirements{}
		for _, a := range rq.Attributes {
			ar.Attributes = append(ar.Attributes, pc.Attribute{ID: a.ID, Type: a.Type})
		}
		out.AdditionalRequirements = ar
	}
	return out, nil
}

// CreateReferralArgs are the arguments of partnercenter_create_referral:
// every writable member of the connector's Referral, nested as the
// Referral nests them (customer, details, consent), so that tools/list
// carries each group as one compact shape.
type CreateReferralArgs struct {
	Name          string             `json:"name" jsonschema:"minLength=1"`
	Type          string             `json:"type" jsonschema:"enum=Shared,enum=Independent" jsonschema_description:"Shared = Microsoft co-sell."`
	Customer      CustomerArgs       `json:"customer"`
	Details       *DetailsArgs       `json:"details,omitempty"`
	Consent       *ConsentArgs       `json:"consent,omitempty"`
	Team          []Contact          `json:"team,omitempty" jsonschema_description:"Your sellers."`
	Target        []TargetArgs       `json:"target,omitempty" jsonschema_description:"e.g. BusinessProfileLocation/msft, SolutionProfile/SOL-…"`
	InviteContext *InviteContextArgs `json:"invite_context,omitempty"`
	EngagementID  string             `json:"engagement_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$" jsonschema_description:"Co-sell: the engagement to join."`
	Qualification string             `json:"qualification,omitempty" jsonschema:"enum=None,enum=Direct,enum=MarketingQualified,enum=SalesQualified"`
	// Status and Substatus default to New/Pending; Partner Center answers
	// an outgoing referral Active/Accepted unless Closed is asked.
	Status              string `json:"status,omitempty" jsonschema:"enum=New,enum=Active,enum=Closed"`
	Substatus           string `json:"substatus,omitempty" jsonschema:"enum=Pending,enum=Received,enum=Accepted,enum=Won,enum=Lost,enum=Declined,enum=Expired"`
	StatusReason        string `json:"status_reason,omitempty"`
	SalesStage          string `json:"sales_stage,omitempty" jsonschema:"enum=Qualify,enum=Develop,enum=Propose,enum=Close"`
	ReferralProgram     string `json:"referral_program,omitempty"`
	ExternalReferenceID string `json:"external_reference_id,omitempty" jsonschema_description:"Your CRM id."`
	CampaignID          string `json:"campaign_id,omitempty"`
	// Extra carries Referral members newer than the connector definition
	// (the REST docs' partnerRole, solutionArea and solutionPlay of a
	// services co-sell referral), sent as given beside the others.
	Extra         map[string]any `json:"extra,omitempty" jsonschema_description:"Newer Referral members, sent as given, e.g. partnerRole, solutionArea, solutionPlay."`
	RequestID     string         `json:"request_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$" jsonschema_description:"Idempotency GUID; reuse it to retry."`
	CorrelationID string         `json:"correlation_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$"`
}

// CustomerArgs are the referral's customerProfile.
type CustomerArgs struct {
	Name string `json:"name" jsonschema:"minLength=1"`
	// Country is ISO 3166-1 alpha-2 (address.country).
	Country  string         `json:"country" jsonschema:"pattern=^[A-Za-z]{2}$"`
	Size     string         `json:"size,omitempty" jsonschema_description:"e.g. 10to50employees."`
	Address  *AddressArgs   `json:"address,omitempty"`
	IDs      map[string]any `json:"ids,omitempty" jsonschema_description:"e.g. {\"CRMId\":\"…\"}"`
	Contacts []Contact      `json:"contacts,omitempty"`
}

// AddressArgs are the customer's address but its country.
type AddressArgs struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Region     string `json:"region,omitempty"`
}

// DetailsArgs are the referral's details: the deal and what the customer
// needs.
type DetailsArgs struct {
	Value                    *float64          `json:"value,omitempty" jsonschema:"minimum=0"`
	Currency                 string            `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	ClosingDate              string            `json:"closing_date,omitempty" jsonschema:"format=date"`
	Notes                    string            `json:"notes,omitempty"`
	CustomerAction           string            `json:"customer_action,omitempty"`
	CustomerRequestedContact *bool             `json:"customer_requested_contact,omitempty"`
	Requirements             *RequirementsArgs `json:"requirements,omitempty"`
}

// ConsentArgs are the referral's consents; contact and
// share_with_microsoft_sellers are sent as false when not given.
type ConsentArgs struct {
	Contact                   bool  `json:"contact,omitempty"`
	ShareWithMicrosoftSellers bool  `json:"share_with_microsoft_sellers,omitempty"`
	ShareInfoWithOthers       *bool `json:"share_info_with_others,omitempty"`
}

// CreateResult is the created referral and the ids of the request that made it.
type CreateResult struct {
	Referral      FullReferral `json:"referral"`
	RequestID     string       `json:"request_id"`
	CorrelationID string       `json:"correlation_id"`
}

// WriteResult is a referral after a change and the MS-CorrelationId of the call.
type WriteResult struct {
	Referral      FullReferral `json:"referral"`
	CorrelationID string       `json:"correlation_id"`
}

// isoDate turns YYYY-MM-DD into the API's date-time.
func isoDate(d string) string {
	if d == "" {
		return ""
	}
	return d + "T00:00:00Z"
}

func checkDates(pairs ...string) *tools.Error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := tools.CheckDate(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// requestID is the MS-RequestId of a create: the caller's (a retry of a
// create whose outcome was unknown), else a new one.
func requestID(given string) string {
	if given != "" {
		return given
	}
	return pc.NewGUID()
}

// correlate returns ctx carrying the call's MS-CorrelationId (the caller's,
// else a new one) and that id. Every upstream request of the tool call,
// reads included, sends it (pc.WithCorrelationID); the result and any
// error carry it back as correlation_id (tools.WithCorrelationID).
func correlate(ctx context.Context, given string) (context.Context, string) {
	id := given
	if id == "" {
		id = pc.NewGUID()
	}
	return pc.WithCorrelationID(ctx, id), id
}

// createStatus is the status and substatus of a new referral: New/Pending
// unless the caller says otherwise, in a documented combination.
func createStatus(status, substatus string) (string, string, *tools.Error) {
	if status == "" {
		if substatus != "" {
			status = pc.StatusNew
		} else {
			return pc.StatusNew, pc.SubstatusPending, nil
		}
	}
	if substatus == "" {
		if status != pc.StatusNew {
			return "", "", tools.InvalidArgument("substatus", "status %s needs a substatus", status)
		}
		substatus = pc.SubstatusPending
	}
	if err := pc.CheckTransition(status, status, substatus); err != nil {
		return "", "", tools.InvalidArgument("substatus", "%s", strings.TrimPrefix(err.Error(), "partnercenter: "))
	}
	return status, substatus, nil
}

func (s *service) createReferral(ctx context.Context, in CreateReferralArgs) (CreateResult, error) {
	reqID := requestID(in.RequestID)
	ctx, corr := correlate(ctx, in.CorrelationID)
	res, err := s.createReferralAs(ctx, in, reqID)
	res.CorrelationID = corr
	return res, tools.WithCorrelationID(tools.WithRequestID(err, reqID), corr)
}

// referralOf builds the Referral a create sends; a bad argument is refused
// here, before any call.
func referralOf(in CreateReferralArgs) (pc.Referral, *tools.Error) {
	d := in.Details
	if d == nil {
		d = &DetailsArgs{}
	}
	if err := checkDates("details.closing_date", d.ClosingDate); err != nil {
		return pc.Referral{}, err
	}
	if strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.Customer.Name) == "" {
		return pc.Referral{}, tools.InvalidArgument("name", "name and customer.name must not be blank")
	}
	status, substatus, verr := createStatus(in.Status, in.Substatus)
	if verr != nil {
		return pc.Referral{}, verr
	}
	reqs, verr := d.Requirements.requirements()
	if verr != nil {
		return pc.Referral{}, verr
	}
	consent := in.Consent
	if consent == nil {
		consent = &ConsentArgs{}
	}
	c := in.Customer
	addr := c.Address
	if addr == nil {
		addr = &AddressArgs{}
	}
	r := pc.Referral{
		Name: in.Name, Type: in.Type, Qualification: in.Qualification, Status: status, Substatus: substatus,
		StatusReason: in.StatusReason, SalesStage: in.SalesStage, ReferralProgram: in.ReferralProgram,
		EngagementID: strings.ToLower(in.EngagementID), InviteContext: in.InviteContext.invite(),
		ExternalReferenceID: in.ExternalReferenceID, CampaignID: in.CampaignID,
		CustomerProfile: &pc.CustomerProfile{
			Name: c.Name, Size: c.Size,
			Address: &pc.Address{AddressLine1: addr.Line1, AddressLine2: addr.Line2, City: addr.City,
				State: addr.State, PostalCode: addr.PostalCode, Country: strings.ToUpper(c.Country), Region: addr.Region},
		},
		Consent: &pc.Consent{ConsentToContact: &consent.Contact, ConsentToShareReferralWithMicrosoftSellers: &consent.ShareWithMicrosoftSellers,
			ConsentToShareInfoWithOthers: consent.ShareInfoWithOthers},
		Details: &pc.Details{Notes: d.Notes, DealValue: d.Value, Currency: d.Currency, ClosingDateTime: isoDate(d.ClosingDate),
			CustomerAction: d.CustomerAction, CustomerRequestedContact: d.CustomerRequestedContact, Requirements: reqs},
	}
	if len(in.Team) > 0 {
		r.Team = members(in.Team)
	}
	if len(c.Contacts) > 0 {
		r.CustomerProfile.Team = members(c.Contacts)
	}
	if len(c.IDs) > 0 {
		raw, err := json.Marshal(c.IDs)
		if err != nil {
			return pc.Referral{}, tools.InvalidArgument("customer.ids", "%v", err)
		}
		r.CustomerProfile.IDs = raw
	}
	for _, t := range in.Target {
		r.Target = append(r.Target, pc.Target{ID: t.ID, Type: t.Type})
	}
	extra, verr := extraMembers(in.Extra)
	if verr != nil {
		return pc.Referral{}, verr
	}
	r.Extra = extra
	return r, nil
}

// extraMembers encodes the caller's extra Referral members; a member the
// model declares is refused (its own argument sends it).
func extraMembers(given map[string]any) (pc.Extra, *tools.Error) {
	if len(given) == 0 {
		return nil, nil
	}
	declared := pc.DeclaredMembers[pc.Referral]()
	out := pc.Extra{}
	for k, v := range given {
		if declared[k] {
			return nil, tools.InvalidArgument("extra", "extra.%s is a member this tool sends from its own argument; use that argument instead", k)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, tools.InvalidArgument("extra", "extra.%s: %v", k, err)
		}
		out[k] = raw
	}
	return out, nil
}

func (s *service) createReferralAs(ctx context.Context, in CreateReferralArgs, reqID string) (CreateResult, error) {
	r, verr := referralOf(in)
	if verr != nil {
		return CreateResult{}, verr
	}
	// A reply without the referral is an error (outcome_unknown): it was
	// created, but is not known.
	created, err := s.conn(ctx).CreateReferral(ctx, r, reqID)
	if err != nil {
		return CreateResult{}, err
	}
	s.versionsFor(ctx).remember(created)
	return CreateResult{Referral: forOutput(*created), RequestID: reqID}, nil
}

// MembersChange changes a list of people: add appends each member
// (path …/-), replace sets the whole list (an empty list clears it).
type MembersChange struct {
	Op      string    `json:"op" jsonschema:"enum=add,enum=replace"`
	Members []Contact `json:"members"`
}

// SolutionsChange changes details.requirements.solutions the same way.
type SolutionsChange struct {
	Op    string           `json:"op" jsonschema:"enum=add,enum=replace"`
	Items []map[string]any `json:"items" jsonschema_description:"e.g. {id:SOL-…}"`
}

// UpdateReferralFieldsArgs are the arguments of
// partnercenter_update_referral_fields: one per PatchReferralById path. A
// scalar given is replaced, also with 0 or "" (which clears a text); an
// omitted one is left alone.
type UpdateReferralFieldsArgs struct {
	ID                  string           `json:"id" jsonschema:"minLength=1"`
	ETag                string           `json:"etag" jsonschema:"minLength=1" jsonschema_description:"From the last read."`
	Status              string           `json:"status,omitempty" jsonschema:"enum=New,enum=Active,enum=Closed"`
	Substatus           string           `json:"substatus,omitempty" jsonschema:"enum=Pending,enum=Received,enum=Accepted,enum=Won,enum=Lost,enum=Declined,enum=Expired"`
	StatusReason        *string          `json:"status_reason,omitempty" jsonschema_description:"Why, e.g. for a decline or a loss."`
	SalesStage          *string          `json:"sales_stage,omitempty" jsonschema:"enum=Qualify,enum=Develop,enum=Propose,enum=Close"`
	DealValue           *float64         `json:"deal_value,omitempty" jsonschema:"minimum=0"`
	Currency            *string          `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	ClosingDate         *string          `json:"closing_date,omitempty" jsonschema_description:"YYYY-MM-DD; \"\" clears."`
	Notes               *string          `json:"notes,omitempty" jsonschema_description:"\"\" clears."`
	ExternalReferenceID *string          `json:"external_reference_id,omitempty"`
	CampaignID          *string          `json:"campaign_id,omitempty"`
	ReferralProgram     *string          `json:"referral_program,omitempty"`
	ShareWithMicrosoft  *bool            `json:"share_with_microsoft_sellers,omitempty"`
	Team                *MembersChange   `json:"team,omitempty" jsonschema_description:"Your sellers."`
	CustomerContacts    *MembersChange   `json:"customer_contacts,omitempty"`
	Solutions           *SolutionsChange `json:"solutions,omitempty" jsonschema_description:"details.requirements.solutions."`
	AddTeamMember       *Contact         `json:"add_team_member,omitempty" jsonschema_description:"= team {op:add}."`
	CorrelationID       string           `json:"correlation_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$"`
}

// listOps are the operations of a list change on path: one add of each
// item at path/- or one replace of the whole list.
func listOps(field, path, op string, items []any) ([]pc.PatchOp, *tools.Error) {
	switch op {
	case pc.OpAdd:
		if len(items) == 0 {
			return nil, tools.InvalidArgument(field, "%s: op add needs at least one item", field)
		}
		ops := make([]pc.PatchOp, 0, len(items))
		for _, it := range items {
			ops = append(ops, pc.PatchOp{Op: pc.OpAdd, Path: path + "/-", Value: it})
		}
		return ops, nil
	case pc.OpReplace:
		if items == nil {
			items = []any{}
		}
		return []pc.PatchOp{{Op: pc.OpReplace, Path: path, Value: items}}, nil
	default:
		return nil, tools.InvalidArgument(field, "%s: op %q is not supported; Partner Center patches with add or replace (replace with an empty list clears)", field, op)
	}
}

func memberItems(cs []Contact) []any {
	out := make([]any, 0, len(cs))
	for _, m := range members(cs) {
		out = append(out, m)
	}
	return out
}

// patchOps compiles the arguments into JSON Patch operations; a bad
// argument is refused here, before any call.
func (in UpdateReferralFieldsArgs) patchOps() ([]pc.PatchOp, *tools.Error) {
	if in.ClosingDate != nil {
		if err := checkDates("closing_date", *in.ClosingDate); err != nil {
			return nil, err
		}
	}
	var ops []pc.PatchOp
	set := func(path string, v any) { ops = append(ops, pc.PatchOp{Op: pc.OpReplace, Path: path, Value: v}) }
	setStr := func(path string, v *string) {
		if v != nil {
			set(path, *v)
		}
	}
	if in.Status != "" {
		set("/status", in.Status)
	}
	if in.Substatus != "" {
		set("/substatus", in.Substatus)
	}
	setStr("/statusReason", in.StatusReason)
	setStr("/salesStage", in.SalesStage)
	if in.DealValue != nil {
		set("/details/dealValue", *in.DealValue)
	}
	setStr("/details/currency", in.Currency)
	if in.ClosingDate != nil {
		set("/details/closingDateTime", isoDate(*in.ClosingDate))
	}
	setStr("/details/notes", in.Notes)
	setStr("/externalReferenceId", in.ExternalReferenceID)
	setStr("/campaignId", in.CampaignID)
	setStr("/referralProgram", in.ReferralProgram)
	if in.ShareWithMicrosoft != nil {
		set("/consent/consentToShareReferralWithMicrosoftSellers", *in.ShareWithMicrosoft)
	}
	lists := []struct {
		field, path string
		op          string
		items       []any
		given       bool
	}{
		{"team", "/team", "", nil, in.Team != nil},
		{"customer_contacts", "/customerProfile/team", "", nil, in.CustomerContacts != nil},
		{"solutions", "/details/requirements/solutions", "", nil, in.Solutions != nil},
	}
	if in.Team != nil {
		lists[0].op, lists[0].items = in.Team.Op, memberItems(in.Team.Members)
	}
	if in.CustomerContacts != nil {
		lists[1].op, lists[1].items = in.CustomerContacts.Op, memberItems(in.CustomerContacts.Members)
	}
	if in.Solutions != nil {
		lists[2].op = in.Solutions.Op
		raws, err := rawItems("solutions.items", in.Solutions.Items)
		if err != nil {
			return nil, err
		}
		for _, r := range raws {
			lists[2].items = append(lists[2].items, r)
		}
	}
	for _, l := range lists {
		if !l.given {
			continue
		}
		more, err := listOps(l.field, l.path, l.op, l.items)
		if err != nil {
			return nil, err
		}
		ops = append(ops, more...)
	}
	if in.AddTeamMember != nil {
		if in.Team != nil && in.Team.Op == pc.OpReplace {
			return nil, tools.InvalidArgument("add_team_member", "add_team_member and team {op: replace} contradict each other; put everyone in team.members")
		}
		ops = append(ops, pc.PatchOp{Op: pc.OpAdd, Path: "/team/-", Value: in.AddTeamMember.member()})
	}
	if len(ops) == 0 {
		return nil, tools.InvalidArgument("", "nothing to change: give at least one field to update")
	}
	if err := pc.CheckPatch(ops, pc.PatchPaths); err != nil {
		return nil, tools.InvalidArgument("", "%s", strings.TrimPrefix(err.Error(), "partnercenter: "))
	}
	return ops, nil
}

func (s *service) updateReferralFields(ctx context.Context, in UpdateReferralFieldsArgs) (WriteResult, error) {
	ctx, corr := correlate(ctx, in.CorrelationID)
	res, err := s.updateReferralFieldsAs(ctx, in)
	return WriteResult{Referral: res.Referral, CorrelationID: corr}, tools.WithCorrelationID(err, corr)
}

func (s *service) updateReferralFieldsAs(ctx context.Context, in UpdateReferralFieldsArgs) (ReferralResult, error) {
	ops, verr := in.patchOps()
	if verr != nil {
		return ReferralResult{}, verr
	}
	if in.Status != "" || in.Substatus != "" {
		cur, err := s.current(ctx, in.ID, in.ETag)
		if err != nil {
			return ReferralResult{}, err
		}
		to := in.Status
		if to == "" {
			to = cur.Status
		}
		if err := pc.CheckTransition(cur.Status, to, in.Substatus); err != nil {
			return ReferralResult{}, tools.InvalidArgument("status", "%s", strings.TrimPrefix(err.Error(), "partnercenter: "))
		}
	}
	r, err := s.conn(ctx).PatchReferral(ctx, in.ID, ops, in.ETag)
	return s.written(ctx, in.ID, r, err)
}

// UpdateReferralArgs are the arguments of the deprecated full replace.
type UpdateReferralArgs struct {
	ID            string       `json:"id" jsonschema:"minLength=1"`
	ETag          string       `json:"etag" jsonschema:"minLength=1"`
	Referral      FullReferral `json:"referral" jsonschema_description:"The whole referral as read, with your changes."`
	CorrelationID string       `json:"correlation_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$"`
}

func (s *service) updateReferral(ctx context.Context, in UpdateReferralArgs) (WriteResult, error) {
	ctx, corr := correlate(ctx, in.CorrelationID)
	res, err := s.updateReferralAs(ctx, in)
	return WriteResult{Referral: res.Referral, CorrelationID: corr}, tools.WithCorrelationID(err, corr)
}

func (s *service) updateReferralAs(ctx context.Context, in UpdateReferralArgs) (ReferralResult, error) {
	cur, err := s.current(ctx, in.ID, in.ETag)
	if err != nil {
		return ReferralResult{}, err
	}
	if in.Referral.Status != "" && (in.Referral.Status != cur.Status || in.Referral.Substatus != cur.Substatus) {
		if err := pc.CheckTransition(cur.Status, in.Referral.Status, in.Referral.Substatus); err != nil {
			return ReferralResult{}, tools.InvalidArgument("referral.status", "%s", strings.TrimPrefix(err.Error(), "partnercenter: "))
		}
	}
	r, err := s.conn(ctx).UpdateReferral(ctx, in.ID, pc.Referral(in.Referral), in.ETag)
	return s.written(ctx, in.ID, r, err)
}

// ContractArgs describe a deal registration's contract.
type ContractArgs struct {
	Value     float64 `json:"value" jsonschema:"minimum=0"`
	Currency  string  `json:"currency" jsonschema:"pattern=^[A-Z]{3}$"`
	Term      string  `json:"term" jsonschema:"enum=Perpetual,enum=Finite"`
	StartDate string  `json:"start_date" jsonschema:"format=date"`
	EndDate   string  `json:"end_date,omitempty" jsonschema:"format=date" jsonschema_description:"YYYY-MM-DD; required for a Finite term."`
	SignDate  string  `json:"sign_date,omitempty" jsonschema:"format=date"`
}

// SolutionArgs describe one solution of a deal registration.
type SolutionArgs struct {
	ID                         string   `json:"id" jsonschema:"minLength=1" jsonschema_description:"Solution id from the marketplace, e.g. SOL-…."`
	Value                      *float64 `json:"value,omitempty" jsonschema:"minimum=0"`
	Currency                   string   `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	IsDeployedOnAzure          bool     `json:"is_deployed_on_azure,omitempty"`
	PrimaryDeploymentOn        string   `json:"primary_deployment_on,omitempty" jsonschema:"enum=Customer,enum=Partner"`
	PricingModel               string   `json:"pricing_model,omitempty" jsonschema:"enum=PayAsYouGo,enum=Other"`
	MarketplaceTransacted      bool     `json:"marketplace_transacted,omitempty"`
	MarketplaceTransactionDate string   `json:"marketplace_transaction_date,omitempty" jsonschema:"format=date"`
}

// CreateDealRegistrationArgs are the arguments of partnercenter_create_deal_registration.
type CreateDealRegistrationArgs struct {
	ID        string         `json:"id" jsonschema:"minLength=1" jsonschema_description:"Referral id."`
	ETag      string         `json:"etag" jsonschema:"minLength=1"`
	Contract  ContractArgs   `json:"contract"`
	Solutions []SolutionArgs `json:"solutions" jsonschema:"minItems=1"`
	RequestID string         `json:"request_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$" jsonschema_description:"Idempotency GUID; reuse it to retry."`
	// CorrelationID is sent as MS-CorrelationId (else a new one is).
	CorrelationID string `json:"correlation_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$"`
}

func (c ContractArgs) check() *tools.Error {
	if err := checkDates("contract.start_date", c.StartDate, "contract.end_date", c.EndDate, "contract.sign_date", c.SignDate); err != nil {
		return err
	}
	if c.EndDate != "" && c.StartDate != "" && c.EndDate < c.StartDate {
		return tools.InvalidArgument("contract.end_date", "contract end_date %s is before start_date %s", c.EndDate, c.StartDate)
	}
	if c.Term == pc.TermFinite && c.EndDate == "" {
		return tools.InvalidArgument("contract.end_date", "a Finite contract needs an end_date")
	}
	return nil
}

func (s *service) createDealRegistration(ctx context.Context, in CreateDealRegistrationArgs) (CreateResult, error) {
	reqID := requestID(in.RequestID)
	ctx, corr := correlate(ctx, in.CorrelationID)
	res, err := s.createDealRegistrationAs(pc.WithRequestID(ctx, reqID), in)
	if err != nil {
		return CreateResult{CorrelationID: corr}, tools.WithCorrelationID(tools.WithRequestID(err, reqID), corr)
	}
	return CreateResult{Referral: res.Referral, RequestID: reqID, CorrelationID: corr}, nil
}

func (s *service) createDealRegistrationAs(ctx context.Context, in CreateDealRegistrationArgs) (ReferralResult, error) {
	if err := in.Contract.check(); err != nil {
		return ReferralResult{}, err
	}
	reg := pc.Registration{Type: pc.RegistrationTypeAzureIPCoSell, Contract: &pc.Contract{
		Value: &in.Contract.Value, Currency: in.Contract.Currency, Term: in.Contract.Term,
		StartDateTime: isoDate(in.Contract.StartDate), EndDateTime: isoDate(in.Contract.EndDate), SignDateTime: isoDate(in.Contract.SignDate),
	}}
	for i, sol := range in.Solutions {
		if err := checkDates("solutions.marketplace_transaction_date", sol.MarketplaceTransactionDate); err != nil {
			return ReferralResult{}, err
		}
		d := pc.SolutionDetail{ID: sol.ID, Value: sol.Value, Currency: sol.Currency, IsDeployedOnAzure: &in.Solutions[i].IsDeployedOnAzure,
			PrimaryDeploymentOn: sol.PrimaryDeploymentOn, PricingModel: sol.PricingModel,
			MarketplaceTransactionDetails: &pc.MarketplaceTransactionDetails{
				IsMarketplaceTransacted: &in.Solutions[i].MarketplaceTransacted, MarketplaceTransactionDateTime: isoDate(sol.MarketplaceTransactionDate)}}
		reg.SolutionDetails = append(reg.SolutionDetails, d)
	}
	cur, err := s.current(ctx, in.ID, in.ETag)
	var te *tools.Error
	switch {
	case err != nil && in.RequestID != "" && errors.As(err, &te) && te.Code == tools.CodeConflict:
		// A retry with the caller's request id: the referral may have moved
		// on because the first attempt registered the deal. Partner Center
		// answers a repeated MS-RequestId with the first request's reply;
		// if there was none, the stale If-Match gets a 412 (a conflict).
	case err != nil:
		return ReferralResult{}, err
	case cur.Status != pc.StatusActive && (cur.Status != pc.StatusClosed || cur.Substatus != pc.SubstatusWon):
		return ReferralResult{}, tools.InvalidArgument("id", "a deal can only be registered on an accepted (Active/Accepted) or won (Closed/Won) referral; this one is %s/%s", cur.Status, cur.Substatus)
	}
	r, err := s.conn(ctx).AddDealRegistration(ctx, in.ID, reg, in.ETag)
	return s.written(ctx, in.ID, r, err)
}

// UpdateDealRegistrationArgs are the arguments of partnercenter_update_deal_registration.
type UpdateDealRegistrationArgs struct {
	ID                         string   `json:"id" jsonschema:"minLength=1" jsonschema_description:"Referral id."`
	ETag                       string   `json:"etag" jsonschema:"minLength=1"`
	ContractValue              *float64 `json:"contract_value,omitempty" jsonschema:"minimum=0"`
	ContractTerm               string   `json:"contract_term,omitempty" jsonschema:"enum=Perpetual,enum=Finite"`
	ContractStartDate          string   `json:"contract_start_date,omitempty" jsonschema:"format=date"`
	ContractEndDate            string   `json:"contract_end_date,omitempty" jsonschema:"format=date"`
	ContractSignDate           string   `json:"contract_sign_date,omitempty" jsonschema:"format=date"`
	SolutionValue              *float64 `json:"solution_value,omitempty" jsonschema:"minimum=0"`
	SolutionCurrency           string   `json:"solution_currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	IsDeployedOnAzure          string   `json:"is_deployed_on_azure,omitempty" jsonschema:"enum=yes,enum=no"`
	PrimaryDeploymentOn        string   `json:"primary_deployment_on,omitempty" jsonschema:"enum=Customer,enum=Partner"`
	PricingModel               string   `json:"pricing_model,omitempty" jsonschema:"enum=PayAsYouGo,enum=Other"`
	MarketplaceTransacted      string   `json:"marketplace_transacted,omitempty" jsonschema:"enum=yes,enum=no"`
	MarketplaceTransactionDate string   `json:"marketplace_transaction_date,omitempty" jsonschema:"format=date"`
	CorrelationID              string   `json:"correlation_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$"`
}

func (s *service) updateDealRegistration(ctx context.Context, in UpdateDealRegistrationArgs) (WriteResult, error) {
	ctx, corr := correlate(ctx, in.CorrelationID)
	res, err := s.updateDealRegistrationAs(ctx, in)
	return WriteResult{Referral: res.Referral, CorrelationID: corr}, tools.WithCorrelationID(err, corr)
}

func (s *service) updateDealRegistrationAs(ctx context.Context, in UpdateDealRegistrationArgs) (ReferralResult, error) {
	if err := checkDates("contract_start_date", in.ContractStartDate, "contract_end_date", in.ContractEndDate,
		"contract_sign_date", in.ContractSignDate, "marketplace_transaction_date", in.MarketplaceTransactionDate); err != nil {
		return ReferralResult{}, err
	}
	if in.ContractStartDate != "" && in.ContractEndDate != "" && in.ContractEndDate < in.ContractStartDate {
		return ReferralResult{}, tools.InvalidArgument("contract_end_date", "contract_end_date is before contract_start_date")
	}
	const contract, solution = "/registrations/0/contract/", "/registrations/0/solutionDetails/0/"
	var ops []pc.PatchOp
	set := func(path string, v any) { ops = append(ops, pc.PatchOp{Op: pc.OpReplace, Path: path, Value: v}) }
	if in.ContractValue != nil {
		set(contract+"value", *in.ContractValue)
	}
	if in.ContractTerm != "" {
		set(contract+"term", in.ContractTerm)
	}
	for _, d := range []struct{ path, date string }{
		{"startDateTime", in.ContractStartDate}, {"endDateTime", in.ContractEndDate}, {"signDateTime", in.ContractSignDate},
	} {
		if d.date != "" {
			set(contract+d.path, isoDate(d.date))
		}
	}
	if in.SolutionValue != nil {
		set(solution+"value", *in.SolutionValue)
	}
	if in.SolutionCurrency != "" {
		set(solution+"currency", in.SolutionCurrency)
	}
	if in.IsDeployedOnAzure != "" {
		set(solution+"isDeployedOnAzure", in.IsDeployedOnAzure == "yes")
	}
	if in.PrimaryDeploymentOn != "" {
		set(solution+"primaryDeploymentOn", in.PrimaryDeploymentOn)
	}
	if in.PricingModel != "" {
		set(solution+"pricingModel", in.PricingModel)
	}
	if in.MarketplaceTransacted != "" {
		set(solution+"marketplaceTransactionDetails/isMarketplaceTransacted", in.MarketplaceTransacted == "yes")
	}
	if in.MarketplaceTransactionDate != "" {
		set(solution+"marketplaceTransactionDetails/marketplaceTransactionDateTime", isoDate(in.MarketplaceTransactionDate))
	}
	if len(ops) == 0 {
		return ReferralResult{}, tools.InvalidArgument("", "nothing to change: give at least one contract or solution field")
	}
	if err := pc.CheckPatch(ops, pc.RegistrationPatchPaths); err != nil {
		return ReferralResult{}, tools.InvalidArgument("", "%v", err)
	}
	cur, err := s.current(ctx, in.ID, in.ETag)
	if err != nil {
		return ReferralResult{}, err
	}
	if cur.Registrations == 0 {
		return ReferralResult{}, tools.InvalidArgument("id", "referral %s has no deal registration yet; create one with partnercenter_create_deal_registration", in.ID)
	}
	r, err := s.conn(ctx).PatchReferral(ctx, in.ID, ops, in.ETag)
	return s.written(ctx, in.ID, r, err)
}
