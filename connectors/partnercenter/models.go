package partnercenter

import (
	"bytes"
	"encoding/json"
)

// Referral statuses (ReferralStatus).
const (
	StatusNone   = "None"
	StatusNew    = "New"
	StatusActive = "Active"
	StatusClosed = "Closed"
)

// Referral substatuses (ReferralSubstatus).
const (
	SubstatusNone     = "None"
	SubstatusPending  = "Pending"
	SubstatusReceived = "Received"
	SubstatusAccepted = "Accepted"
	SubstatusWon      = "Won"
	SubstatusLost     = "Lost"
	SubstatusDeclined = "Declined"
	SubstatusExpired  = "Expired"
)

// Referral types (ReferralType).
const (
	// TypeShared is a referral all parties collaborate on (co-sell with
	// Microsoft).
	TypeShared = "Shared"
	// TypeIndependent is a referral visible to one partner only.
	TypeIndependent = "Independent"
)

// Referral qualifications (ReferralQualification).
const (
	QualificationNone               = "None"
	QualificationDirect             = "Direct"
	QualificationMarketingQualified = "MarketingQualified"
	QualificationSalesQualified     = "SalesQualified"
)

// Referral directions (read-only).
const (
	DirectionIncoming = "Incoming"
	DirectionOutgoing = "Outgoing"
)

// Sales stages.
const (
	SalesStageQualify = "Qualify"
	SalesStageDevelop = "Develop"
	SalesStagePropose = "Propose"
	SalesStageClose   = "Close"
)

// Assistance request codes of an InviteContext.
const (
	AssistanceUnknown                          = "Unknown"
	AssistanceGeneralOrOther                   = "GeneralOrOther"
	AssistanceCustomerTechnicalArchitecture    = "CustomerTechnicalArchitecture"
	AssistanceProofOfConceptOrDemo             = "ProofOfConceptOrDemo"
	AssistanceQuotesOrLicensing                = "QuotesOrLicensing"
	AssistancePostSalesCustomerSuccess         = "PostSalesCustomerSuccess"
	AssistanceWorkloadSpecificValueProposition = "WorkloadSpecificValueProposition"
)

// Deal registration values.
const (
	// RegistrationTypeAzureIPCoSell is the only deal registration type.
	RegistrationTypeAzureIPCoSell = "AzureIPCoSell"

	TermPerpetual = "Perpetual"
	TermFinite    = "Finite"

	DeployedOnCustomer = "Customer"
	DeployedOnPartner  = "Partner"

	PricingPayAsYouGo = "PayAsYouGo"
	PricingOther      = "Other"
)

// Target types and the id of Microsoft as a target. A shared (co-sell)
// referral is made of two connected referrals with one engagementId: the
// partner's own, targeted at its solution profile, and one for Microsoft.
const (
	TargetSolutionProfile         = "SolutionProfile"
	TargetBusinessProfileLocation = "BusinessProfileLocation"
	TargetMicrosoft               = "msft"
)

// Referral is a Partner Center referral
// (Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral). Fields
// marked read-only are set by Partner Center and ignored on writes.
type Referral struct {
	ODataContext        string `json:"@odata.context,omitempty"`
	ID                  string `json:"id,omitempty"`
	EngagementID        string `json:"engagementId,omitempty"`
	Name                string `json:"name,omitempty"`
	OrganizationID      string `json:"organizationId,omitempty"`
	OrganizationName    string `json:"organizationName,omitempty"`
	ExternalReferenceID string `json:"externalReferenceId,omitempty"`
	CampaignID          string `json:"campaignId,omitempty"`
	CreatedDateTime     string `json:"createdDateTime,omitempty"`
	UpdatedDateTime     string `json:"updatedDateTime,omitempty"`
	ExpirationDateTime  string `json:"expirationDateTime,omitempty"`
	// AcceptedDateTime is read-only.
	AcceptedDateTime string `json:"acceptedDateTime,omitempty"`
	// ClosedDateTime is read-only.
	ClosedDateTime string `json:"closedDateTime,omitempty"`
	// Status is one of the Status* constants.
	Status string `json:"status,omitempty"`
	// Substatus is one of the Substatus* constants.
	Substatus    string `json:"substatus,omitempty"`
	StatusReason string `json:"statusReason,omitempty"`
	// Type is TypeShared or TypeIndependent.
	Type string `json:"type,omitempty"`
	// Qualification is one of the Qualification* constants.
	Qualification   string `json:"qualification,omitempty"`
	ReferralProgram string `json:"referralProgram,omitempty"`
	// SalesStage is one of the SalesStage* constants.
	SalesStage string `json:"salesStage,omitempty"`
	// ETag is the concurrency token to send as If-Match on updates.
	ETag            string `json:"eTag,omitempty"`
	Favorite        *bool  `json:"favorite,omitempty"`
	LastModifiedVia string `json:"lastModifiedVia,omitempty"`
	LastRunID       string `json:"lastRunId,omitempty"`
	MPNID           string `json:"mpnId,omitempty"`
	// RegistrationStatus is read-only.
	RegistrationStatus string `json:"registrationStatus,omitempty"`
	CallToAction       string `json:"callToAction,omitempty"`
	ReferralSource     string `json:"referralSource,omitempty"`
	// Quality is read-only.
	Quality string `json:"quality,omitempty"`
	// IsSpam is read-only.
	IsSpam *bool `json:"isSpam,omitempty"`
	// Direction is read-only: DirectionIncoming or DirectionOutgoing.
	Direction string `json:"direction,omitempty"`
	// Tags is read-only.
	Tags            []Tag            `json:"tags,omitempty"`
	Consent         *Consent         `json:"consent,omitempty"`
	CustomerProfile *CustomerProfile `json:"customerProfile,omitempty"`
	Details         *Details         `json:"details,omitempty"`
	Team            []Member         `json:"team,omitempty"`
	InviteContext   *InviteContext   `json:"inviteContext,omitempty"`
	Target          []Target         `json:"target,omitempty"`
	TrackingInfo    *TrackingInfo    `json:"trackingInfo,omitempty"`
	Links           *Links           `json:"links,omitempty"`
	// Registrations is read-only here; add one with AddDealRegistration.
	Registrations []Registration `json:"registrations,omitempty"`
	// Extra holds members the upstream sent that this model does not declare;
	// they are encoded again with the declared ones.
	Extra Extra `json:"-"`
}

// Consent holds the consent flags of a referral. The JSON name
// "consentToToShareInfoWithOthers" is spelled as the upstream spells it.
type Consent struct {
	ConsentToContact                           *bool `json:"consentToContact,omitempty"`
	ConsentToShareInfoWithOthers               *bool `json:"consentToToShareInfoWithOthers,omitempty"`
	ConsentToShareReferralWithMicrosoftSellers *bool `json:"consentToShareReferralWithMicrosoftSellers,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// CustomerProfile describes the customer of a referral.
type CustomerProfile struct {
	Name string `json:"name,omitempty"`
	// Size is a band such as "10to50employees".
	Size string `json:"size,omitempty"`
	// IDs are the customer's external identifiers. The connector definition
	// leaves their shape open, so they are kept as raw JSON.
	IDs     json.RawMessage `json:"ids,omitempty"`
	Address *Address        `json:"address,omitempty"`
	Team    []Member        `json:"team,omitempty"`
	// Extra holds members the upstream sent that this model does not declare;
	// they are encoded again with the declared ones.
	Extra Extra `json:"-"`
}

// Address is a postal address; Country is an ISO code such as "US".
type Address struct {
	AddressLine1 string `json:"addressLine1,omitempty"`
	AddressLine2 string `json:"addressLine2,omitempty"`
	City         string `json:"city,omitempty"`
	State        string `json:"state,omitempty"`
	PostalCode   string `json:"postalCode,omitempty"`
	Country      string `json:"country,omitempty"`
	Region       string `json:"region,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// Member is a person on the customer's or the partner's team.
type Member struct {
	FirstName         string             `json:"firstName,omitempty"`
	LastName          string             `json:"lastName,omitempty"`
	Email             string             `json:"email,omitempty"`
	PhoneNumber       string             `json:"phoneNumber,omitempty"`
	ContactPreference *ContactPreference `json:"contactPreference,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// ContactPreference says how a member wants to be contacted.
type ContactPreference struct {
	Locale               string `json:"locale,omitempty"`
	DisableNotifications *bool  `json:"disableNotifications,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// Details are the deal facts of a referral.
type Details struct {
	Notes                    string        `json:"notes,omitempty"`
	DealValue                *float64      `json:"dealValue,omitempty"`
	Currency                 string        `json:"currency,omitempty"`
	ClosingDateTime          string        `json:"closingDateTime,omitempty"`
	CustomerAction           string        `json:"customerAction,omitempty"`
	CustomerRequestedContact *bool         `json:"customerRequestedContact,omitempty"`
	Requirements             *Requirements `json:"requirements,omitempty"`
	// Extra holds members the upstream sent that this model does not declare;
	// they are encoded again with the declared ones.
	Extra Extra `json:"-"`
}

// Requirements are what the customer needs. Solutions and offers have no
// declared shape upstream and are kept as raw JSON items.
type Requirements struct {
	Industries             []IDRef                 `json:"industries,omitempty"`
	Products               []IDRef                 `json:"products,omitempty"`
	Services               []IDRef                 `json:"services,omitempty"`
	Solutions              []json.RawMessage       `json:"solutions,omitempty"`
	Offers                 []json.RawMessage       `json:"offers,omitempty"`
	AdditionalRequirements *AdditionalRequirements `json:"additionalRequirements,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// IDRef is a reference by id.
type IDRef struct {
	ID string `json:"id,omitempty"`
}

// AdditionalRequirements carries typed attributes of the customer's need.
type AdditionalRequirements struct {
	Attributes []Attribute `json:"attributes,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// Attribute is one typed identifier.
type Attribute struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type,omitempty"`
}

// InviteContext is what the inviting organization said about the referral.
type InviteContext struct {
	Notes     string        `json:"notes,omitempty"`
	InvitedBy *Organization `json:"invitedBy,omitempty"`
	// AssistanceRequestCode is one of the Assistance* constants.
	AssistanceRequestCode string `json:"assistanceRequestCode,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// Organization names a Partner Center organization.
type Organization struct {
	OrganizationID   string `json:"organizationId,omitempty"`
	OrganizationName string `json:"organizationName,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// Target is whom a referral is addressed to, for example
// {Type: "SolutionProfile", ID: "SOL-…"} or
// {Type: "BusinessProfileLocation", ID: "msft"} for Microsoft.
type Target struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// TrackingInfo links a referral to Microsoft's own systems.
type TrackingInfo struct {
	MicrosoftMsxID string `json:"microsoftMsxId,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// Links are the related resources of a referral.
type Links struct {
	Self             *Link `json:"self,omitempty"`
	RelatedReferrals *Link `json:"relatedReferrals,omitempty"`
}

// Link is a URI with the method to call it with.
type Link struct {
	URI    string `json:"uri,omitempty"`
	Method string `json:"method,omitempty"`
}

// Tag is a label on a referral. The connector definition declares tags both
// as strings and as {"tag": …} objects, so both forms are read.
type Tag struct {
	Tag string `json:"tag,omitempty"`
}

// UnmarshalJSON accepts a bare string or a {"tag": …} object.
func (t *Tag) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &t.Tag)
	}
	type plain Tag
	return json.Unmarshal(b, (*plain)(t))
}

// Registration is a deal registration of a referral.
type Registration struct {
	ID string `json:"id,omitempty"`
	// Type is RegistrationTypeAzureIPCoSell.
	Type                 string           `json:"type,omitempty"`
	RegistrationDateTime string           `json:"registrationDateTime,omitempty"`
	Status               string           `json:"status,omitempty"`
	StatusReason         string           `json:"statusReason,omitempty"`
	Contract             *Contract        `json:"contract,omitempty"`
	SolutionDetails      []SolutionDetail `json:"solutionDetails,omitempty"`
	StatusHistory        *StatusHistory   `json:"statusHistory,omitempty"`
	// Extra holds members the upstream sent that this model does not declare;
	// they are encoded again with the declared ones.
	Extra Extra `json:"-"`
}

// Contract is the contract of a deal registration.
type Contract struct {
	Value         *float64 `json:"value,omitempty"`
	Currency      string   `json:"currency,omitempty"`
	StartDateTime string   `json:"startDateTime,omitempty"`
	EndDateTime   string   `json:"endDateTime,omitempty"`
	SignDateTime  string   `json:"signDateTime,omitempty"`
	// Term is TermPerpetual or TermFinite.
	Term string `json:"term,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// SolutionDetail is one solution of a deal registration.
type SolutionDetail struct {
	ID                string   `json:"id,omitempty"`
	Name              string   `json:"name,omitempty"`
	Value             *float64 `json:"value,omitempty"`
	Currency          string   `json:"currency,omitempty"`
	IsDeployedOnAzure *bool    `json:"isDeployedOnAzure,omitempty"`
	// PrimaryDeploymentOn is DeployedOnCustomer or DeployedOnPartner.
	PrimaryDeploymentOn string `json:"primaryDeploymentOn,omitempty"`
	// PricingModel is PricingPayAsYouGo or PricingOther.
	PricingModel                  string                         `json:"pricingModel,omitempty"`
	MarketplaceTransactionDetails *MarketplaceTransactionDetails `json:"marketplaceTransactionDetails,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// MarketplaceTransactionDetails says whether a solution was bought through
// the Microsoft commercial marketplace.
type MarketplaceTransactionDetails struct {
	IsMarketplaceTransacted        *bool  `json:"isMarketplaceTransacted,omitempty"`
	MarketplaceTransactionDateTime string `json:"marketplaceTransactionDateTime,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// StatusHistory records when a deal registration reached each review state.
type StatusHistory struct {
	ReviewPendingDateTime  string `json:"reviewPendingDateTime,omitempty"`
	ActionRequiredDateTime string `json:"actionRequiredDateTime,omitempty"`
	PassedDateTime         string `json:"passedDateTime,omitempty"`
	FailedDateTime         string `json:"failedDateTime,omitempty"`
	ApprovedDateTime       string `json:"approvedDateTime,omitempty"`
	// Extra holds undeclared members (see Extra).
	Extra Extra `json:"-"`
}

// ReferralPage is one page of GET /referrals.
type ReferralPage struct {
	Context string `json:"@odata.context,omitempty"`
	// Count is the total match count, present when ListParams.Count was set.
	Count *int `json:"@odata.count,omitempty"`
	// NextLink is the URL of the next page; empty on the last.
	NextLink string     `json:"@odata.nextLink,omitempty"`
	Value    []Referral `json:"value"`
}

// PatchOp is one JSON Patch (RFC 6902) operation. Partner Center supports
// the "replace" and "add" operations only (the connector definition's op
// enum): there is no "remove"; a replace with "" or [] clears a member.
// Value is always sent, so 0, false and "" are values.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// JSON Patch operations Partner Center accepts.
const (
	OpReplace = "replace"
	OpAdd     = "add"
)
