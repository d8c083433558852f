package partnercenter

import (
	"context"
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
}

func (c Contact) member() pc.Member {
	return pc.Member{FirstName: c.FirstName, LastName: c.LastName, Email: c.Email, PhoneNumber: c.Phone}
}

func members(cs []Contact) []pc.Member {
	var out []pc.Member
	for _, c := range cs {
		out = append(out, c.member())
	}
	return out
}

// CreateReferralArgs are the arguments of partnercenter_create_referral.
type CreateReferralArgs struct {
	Name                 string    `json:"name" jsonschema:"minLength=1" jsonschema_description:"e.g. Contoso — Azure migration."`
	Type                 string    `json:"type" jsonschema:"enum=Shared,enum=Independent" jsonschema_description:"Shared = Microsoft co-sell."`
	CustomerName         string    `json:"customer_name" jsonschema:"minLength=1"`
	CustomerCountry      string    `json:"customer_country" jsonschema:"pattern=^[A-Za-z]{2}$" jsonschema_description:"ISO alpha-2."`
	CustomerCity         string    `json:"customer_city,omitempty"`
	CustomerState        string    `json:"customer_state,omitempty"`
	CustomerPostalCode   string    `json:"customer_postal_code,omitempty"`
	CustomerAddressLine1 string    `json:"customer_address_line1,omitempty"`
	CustomerSize         string    `json:"customer_size,omitempty" jsonschema_description:"e.g. 10to50employees."`
	CustomerContacts     []Contact `json:"customer_contacts,omitempty"`
	Team                 []Contact `json:"team,omitempty" jsonschema_description:"Your sellers on the deal."`
	DealValue            float64   `json:"deal_value,omitempty" jsonschema:"minimum=0"`
	Currency             string    `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	ClosingDate          string    `json:"closing_date,omitempty" jsonschema:"format=date"`
	Notes                string    `json:"notes,omitempty"`
	Qualification        string    `json:"qualification,omitempty" jsonschema:"enum=Direct,enum=MarketingQualified,enum=SalesQualified"`
	ConsentToContact     bool      `json:"consent_to_contact,omitempty" jsonschema_description:"The customer agreed to be contacted."`
	ShareWithMicrosoft   bool      `json:"share_with_microsoft_sellers,omitempty" jsonschema_description:"Consent to share with Microsoft sellers."`
	ExternalReferenceID  string    `json:"external_reference_id,omitempty" jsonschema_description:"Your CRM id."`
	CampaignID           string    `json:"campaign_id,omitempty"`
	RequestID            string    `json:"request_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$" jsonschema_description:"Idempotency GUID; reuse it to retry."`
}

// CreateResult is the created referral and the request id that made it.
type CreateResult struct {
	Referral  FullReferral `json:"referral"`
	RequestID string       `json:"request_id"`
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

func (s *service) createReferral(ctx context.Context, in CreateReferralArgs) (CreateResult, error) {
	reqID := requestID(in.RequestID)
	res, err := s.createReferralAs(ctx, in, reqID)
	return res, tools.WithRequestID(err, reqID)
}

func (s *service) createReferralAs(ctx context.Context, in CreateReferralArgs, reqID string) (CreateResult, error) {
	if err := checkDates("closing_date", in.ClosingDate); err != nil {
		return CreateResult{}, err
	}
	if strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.CustomerName) == "" {
		return CreateResult{}, tools.InvalidArgument("name", "name and customer_name must not be blank")
	}
	r := pc.Referral{
		Name: in.Name, Type: in.Type, Qualification: in.Qualification, Status: pc.StatusNew, Substatus: pc.SubstatusPending,
		ExternalReferenceID: in.ExternalReferenceID, CampaignID: in.CampaignID, Team: members(in.Team),
		CustomerProfile: &pc.CustomerProfile{
			Name: in.CustomerName, Size: in.CustomerSize, Team: members(in.CustomerContacts),
			Address: &pc.Address{AddressLine1: in.CustomerAddressLine1, City: in.CustomerCity, State: in.CustomerState,
				PostalCode: in.CustomerPostalCode, Country: strings.ToUpper(in.CustomerCountry)},
		},
		Consent: &pc.Consent{ConsentToContact: &in.ConsentToContact, ConsentToShareReferralWithMicrosoftSellers: &in.ShareWithMicrosoft},
		Details: &pc.Details{Notes: in.Notes, Currency: in.Currency, ClosingDateTime: isoDate(in.ClosingDate)},
	}
	if in.DealValue != 0 {
		r.Details.DealValue = &in.DealValue
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

// UpdateReferralFieldsArgs are the arguments of partnercenter_update_referral_fields.
type UpdateReferralFieldsArgs struct {
	ID                  string  `json:"id" jsonschema:"minLength=1"`
	ETag                string  `json:"etag" jsonschema:"minLength=1" jsonschema_description:"eTag from the last read of this referral."`
	Status              string  `json:"status,omitempty" jsonschema:"enum=New,enum=Active,enum=Closed"`
	Substatus           string  `json:"substatus,omitempty" jsonschema:"enum=Pending,enum=Received,enum=Accepted,enum=Won,enum=Lost,enum=Declined,enum=Expired"`
	StatusReason        string  `json:"status_reason,omitempty" jsonschema_description:"Why, e.g. for a decline or a loss."`
	SalesStage          string  `json:"sales_stage,omitempty" jsonschema:"enum=Qualify,enum=Develop,enum=Propose,enum=Close"`
	DealValue           float64 `json:"deal_value,omitempty" jsonschema:"minimum=0"`
	Currency            string  `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	ClosingDate         string  `json:"closing_date,omitempty" jsonschema:"format=date"`
	Notes               string  `json:"notes,omitempty"`
	ExternalReferenceID string  `json:"external_reference_id,omitempty"`
	CampaignID          string  `json:"campaign_id,omitempty"`
	ShareWithMicrosoft  string  `json:"share_with_microsoft_sellers,omitempty" jsonschema:"enum=yes,enum=no"`
	AddTeamMember       Contact `json:"add_team_member,omitempty" jsonschema_description:"Add one of your sellers to the referral team."`
}

func (s *service) updateReferralFields(ctx context.Context, in UpdateReferralFieldsArgs) (ReferralResult, error) {
	if err := checkDates("closing_date", in.ClosingDate); err != nil {
		return ReferralResult{}, err
	}
	var ops []pc.PatchOp
	set := func(path string, v any) { ops = append(ops, pc.PatchOp{Op: pc.OpReplace, Path: path, Value: v}) }
	if in.Status != "" {
		set("/status", in.Status)
	}
	if in.Substatus != "" {
		set("/substatus", in.Substatus)
	}
	if in.StatusReason != "" {
		set("/statusReason", in.StatusReason)
	}
	if in.SalesStage != "" {
		set("/salesStage", in.SalesStage)
	}
	if in.DealValue != 0 {
		set("/details/dealValue", in.DealValue)
	}
	if in.Currency != "" {
		set("/details/currency", in.Currency)
	}
	if in.ClosingDate != "" {
		set("/details/closingDateTime", isoDate(in.ClosingDate))
	}
	if in.Notes != "" {
		set("/details/notes", in.Notes)
	}
	if in.ExternalReferenceID != "" {
		set("/externalReferenceId", in.ExternalReferenceID)
	}
	if in.CampaignID != "" {
		set("/campaignId", in.CampaignID)
	}
	if in.ShareWithMicrosoft != "" {
		set("/consent/consentToShareReferralWithMicrosoftSellers", in.ShareWithMicrosoft == "yes")
	}
	if in.AddTeamMember != (Contact{}) {
		ops = append(ops, pc.PatchOp{Op: pc.OpAdd, Path: "/team/-", Value: in.AddTeamMember.member()})
	}
	if len(ops) == 0 {
		return ReferralResult{}, tools.InvalidArgument("", "nothing to change: give at least one field to update")
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
	ID       string       `json:"id" jsonschema:"minLength=1"`
	ETag     string       `json:"etag" jsonschema:"minLength=1"`
	Referral FullReferral `json:"referral" jsonschema_description:"The whole referral as read, with your changes."`
}

func (s *service) updateReferral(ctx context.Context, in UpdateReferralArgs) (ReferralResult, error) {
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
	ID                         string  `json:"id" jsonschema:"minLength=1" jsonschema_description:"Solution id from the marketplace, e.g. SOL-…."`
	Value                      float64 `json:"value,omitempty" jsonschema:"minimum=0"`
	Currency                   string  `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	IsDeployedOnAzure          bool    `json:"is_deployed_on_azure,omitempty"`
	PrimaryDeploymentOn        string  `json:"primary_deployment_on,omitempty" jsonschema:"enum=Customer,enum=Partner"`
	PricingModel               string  `json:"pricing_model,omitempty" jsonschema:"enum=PayAsYouGo,enum=Other"`
	MarketplaceTransacted      bool    `json:"marketplace_transacted,omitempty"`
	MarketplaceTransactionDate string  `json:"marketplace_transaction_date,omitempty" jsonschema:"format=date"`
}

// CreateDealRegistrationArgs are the arguments of partnercenter_create_deal_registration.
type CreateDealRegistrationArgs struct {
	ID        string         `json:"id" jsonschema:"minLength=1" jsonschema_description:"Referral id."`
	ETag      string         `json:"etag" jsonschema:"minLength=1"`
	Contract  ContractArgs   `json:"contract"`
	Solutions []SolutionArgs `json:"solutions" jsonschema:"minItems=1"`
	RequestID string         `json:"request_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$" jsonschema_description:"Idempotency GUID; reuse it to retry."`
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
	res, err := s.createDealRegistrationAs(pc.WithRequestID(ctx, reqID), in)
	if err != nil {
		return CreateResult{}, tools.WithRequestID(err, reqID)
	}
	return CreateResult{Referral: res.Referral, RequestID: reqID}, nil
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
		d := pc.SolutionDetail{ID: sol.ID, Currency: sol.Currency, IsDeployedOnAzure: &in.Solutions[i].IsDeployedOnAzure,
			PrimaryDeploymentOn: sol.PrimaryDeploymentOn, PricingModel: sol.PricingModel,
			MarketplaceTransactionDetails: &pc.MarketplaceTransactionDetails{
				IsMarketplaceTransacted: &in.Solutions[i].MarketplaceTransacted, MarketplaceTransactionDateTime: isoDate(sol.MarketplaceTransactionDate)}}
		if sol.Value != 0 {
			d.Value = &in.Solutions[i].Value
		}
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
	case cur.Status != pc.StatusActive:
		return ReferralResult{}, tools.InvalidArgument("id", "a deal can only be registered on an accepted referral (Active/Accepted); this one is %s/%s", cur.Status, cur.Substatus)
	}
	r, err := s.conn(ctx).AddDealRegistration(ctx, in.ID, reg, in.ETag)
	return s.written(ctx, in.ID, r, err)
}

// UpdateDealRegistrationArgs are the arguments of partnercenter_update_deal_registration.
type UpdateDealRegistrationArgs struct {
	ID                         string  `json:"id" jsonschema:"minLength=1" jsonschema_description:"Referral id."`
	ETag                       string  `json:"etag" jsonschema:"minLength=1"`
	ContractValue              float64 `json:"contract_value,omitempty" jsonschema:"minimum=0"`
	ContractTerm               string  `json:"contract_term,omitempty" jsonschema:"enum=Perpetual,enum=Finite"`
	ContractStartDate          string  `json:"contract_start_date,omitempty" jsonschema:"format=date"`
	ContractEndDate            string  `json:"contract_end_date,omitempty" jsonschema:"format=date"`
	ContractSignDate           string  `json:"contract_sign_date,omitempty" jsonschema:"format=date"`
	SolutionValue              float64 `json:"solution_value,omitempty" jsonschema:"minimum=0"`
	SolutionCurrency           string  `json:"solution_currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	IsDeployedOnAzure          string  `json:"is_deployed_on_azure,omitempty" jsonschema:"enum=yes,enum=no"`
	PrimaryDeploymentOn        string  `json:"primary_deployment_on,omitempty" jsonschema:"enum=Customer,enum=Partner"`
	PricingModel               string  `json:"pricing_model,omitempty" jsonschema:"enum=PayAsYouGo,enum=Other"`
	MarketplaceTransacted      string  `json:"marketplace_transacted,omitempty" jsonschema:"enum=yes,enum=no"`
	MarketplaceTransactionDate string  `json:"marketplace_transaction_date,omitempty" jsonschema:"format=date"`
}

func (s *service) updateDealRegistration(ctx context.Context, in UpdateDealRegistrationArgs) (ReferralResult, error) {
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
	if in.ContractValue != 0 {
		set(contract+"value", in.ContractValue)
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
	if in.SolutionValue != 0 {
		set(solution+"value", in.SolutionValue)
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
