package sandbox

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// referral is the Partner Center Referral resource (swagger
// Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral). Field order is the order
// of the JSON the sandbox serves; optional members are omitted when empty.
type referral struct {
	ID                  string           `json:"id"`
	EngagementID        string           `json:"engagementId"`
	Name                string           `json:"name,omitempty"`
	OrganizationID      string           `json:"organizationId"`
	OrganizationName    string           `json:"organizationName"`
	MpnID               string           `json:"mpnId,omitempty"`
	ExternalReferenceID string           `json:"externalReferenceId,omitempty"`
	CampaignID          string           `json:"campaignId,omitempty"`
	CreatedDateTime     string           `json:"createdDateTime"`
	UpdatedDateTime     string           `json:"updatedDateTime"`
	ExpirationDateTime  string           `json:"expirationDateTime,omitempty"`
	AcceptedDateTime    string           `json:"acceptedDateTime,omitempty"`
	ClosedDateTime      string           `json:"closedDateTime,omitempty"`
	Status              string           `json:"status"`
	Substatus           string           `json:"substatus"`
	StatusReason        string           `json:"statusReason,omitempty"`
	Type                string           `json:"type"`
	Qualification       string           `json:"qualification,omitempty"`
	ReferralProgram     string           `json:"referralProgram,omitempty"`
	SalesStage          string           `json:"salesStage,omitempty"`
	Direction           string           `json:"direction"`
	ReferralSource      string           `json:"referralSource,omitempty"`
	CallToAction        string           `json:"callToAction,omitempty"`
	Quality             string           `json:"quality,omitempty"`
	IsSpam              *bool            `json:"isSpam,omitempty"`
	Favorite            *bool            `json:"favorite,omitempty"`
	LastModifiedVia     string           `json:"lastModifiedVia,omitempty"`
	LastRunID           string           `json:"lastRunId,omitempty"`
	RegistrationStatus  string           `json:"registrationStatus,omitempty"`
	Tags                []tag            `json:"tags,omitempty"`
	CustomerProfile     *customerProfile `json:"customerProfile,omitempty"`
	Consent             *consent         `json:"consent,omitempty"`
	Details             *details         `json:"details,omitempty"`
	Team                []member         `json:"team,omitempty"`
	InviteContext       *inviteContext   `json:"inviteContext,omitempty"`
	Target              []target         `json:"target,omitempty"`
	TrackingInfo        *trackingInfo    `json:"trackingInfo,omitempty"`
	Registrations       []registration   `json:"registrations,omitempty"`
	Links               *links           `json:"links,omitempty"`
	ETag                string           `json:"eTag"`
}

type tag struct {
	Tag string `json:"tag"`
}

type customerProfile struct {
	Name string `json:"name"`
	Size string `json:"size,omitempty"`
	// IDs are the customer's external identifiers: the connector definition
	// declares an array of untyped items, the REST documentation a map such
	// as {"CRMId": "…"}; both are stored as sent.
	IDs     any      `json:"ids,omitempty"`
	Address *address `json:"address,omitempty"`
	Team    []member `json:"team,omitempty"`
}

type address struct {
	AddressLine1 string `json:"addressLine1,omitempty"`
	AddressLine2 string `json:"addressLine2,omitempty"`
	City         string `json:"city,omitempty"`
	State        string `json:"state,omitempty"`
	PostalCode   string `json:"postalCode,omitempty"`
	Country      string `json:"country,omitempty"`
	Region       string `json:"region,omitempty"`
}

type member struct {
	FirstName         string             `json:"firstName,omitempty"`
	LastName          string             `json:"lastName,omitempty"`
	Email             string             `json:"email,omitempty"`
	PhoneNumber       string             `json:"phoneNumber,omitempty"`
	ContactPreference *contactPreference `json:"contactPreference,omitempty"`
}

type contactPreference struct {
	Locale               string `json:"locale,omitempty"`
	DisableNotifications *bool  `json:"disableNotifications,omitempty"`
}

type consent struct {
	ConsentToContact                          *bool `json:"consentToContact,omitempty"`
	ConsentToToShareInfoWithOthers            *bool `json:"consentToToShareInfoWithOthers,omitempty"`
	ConsentToShareReferralWithMicrosoftSeller *bool `json:"consentToShareReferralWithMicrosoftSellers,omitempty"`
}

type details struct {
	Notes                    string        `json:"notes,omitempty"`
	DealValue                *float64      `json:"dealValue,omitempty"`
	Currency                 string        `json:"currency,omitempty"`
	ClosingDateTime          string        `json:"closingDateTime,omitempty"`
	CustomerAction           string        `json:"customerAction,omitempty"`
	CustomerRequestedContact *bool         `json:"customerRequestedContact,omitempty"`
	Requirements             *requirements `json:"requirements,omitempty"`
}

type requirements struct {
	Industries             []idItem       `json:"industries,omitempty"`
	Products               []idItem       `json:"products,omitempty"`
	Services               []idItem       `json:"services,omitempty"`
	Solutions              []any          `json:"solutions,omitempty"`
	Offers                 []any          `json:"offers,omitempty"`
	AdditionalRequirements map[string]any `json:"additionalRequirements,omitempty"`
}

type idItem struct {
	ID string `json:"id"`
}

type inviteContext struct {
	Notes                 string     `json:"notes,omitempty"`
	InvitedBy             *invitedBy `json:"invitedBy,omitempty"`
	AssistanceRequestCode string     `json:"assistanceRequestCode,omitempty"`
}

type invitedBy struct {
	OrganizationID   string `json:"organizationId,omitempty"`
	OrganizationName string `json:"organizationName,omitempty"`
}

type target struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type trackingInfo struct {
	MicrosoftMsxID string `json:"microsoftMsxId,omitempty"`
}

type links struct {
	Self             *link `json:"self,omitempty"`
	RelatedReferrals *link `json:"relatedReferrals,omitempty"`
}

type link struct {
	URI    string `json:"uri"`
	Method string `json:"method"`
}

type registration struct {
	ID                   string           `json:"id"`
	RegistrationDateTime string           `json:"registrationDateTime,omitempty"`
	Status               string           `json:"status,omitempty"`
	StatusReason         string           `json:"statusReason,omitempty"`
	Contract             *contract        `json:"contract,omitempty"`
	SolutionDetails      []solutionDetail `json:"solutionDetails,omitempty"`
	StatusHistory        *statusHistory   `json:"statusHistory,omitempty"`
}

type contract struct {
	Value         *float64 `json:"value,omitempty"`
	Currency      string   `json:"currency,omitempty"`
	StartDateTime string   `json:"startDateTime,omitempty"`
	EndDateTime   string   `json:"endDateTime,omitempty"`
	SignDateTime  string   `json:"signDateTime,omitempty"`
	Term          string   `json:"term,omitempty"`
}

type solutionDetail struct {
	ID                            string                 `json:"id,omitempty"`
	Name                          string                 `json:"name,omitempty"`
	Value                         *float64               `json:"value,omitempty"`
	Currency                      string                 `json:"currency,omitempty"`
	IsDeployedOnAzure             *bool                  `json:"isDeployedOnAzure,omitempty"`
	PrimaryDeploymentOn           string                 `json:"primaryDeploymentOn,omitempty"`
	PricingModel                  string                 `json:"pricingModel,omitempty"`
	MarketplaceTransactionDetails *marketplaceTxnDetails `json:"marketplaceTransactionDetails,omitempty"`
}

type marketplaceTxnDetails struct {
	IsMarketplaceTransacted        *bool  `json:"isMarketplaceTransacted,omitempty"`
	MarketplaceTransactionDateTime string `json:"marketplaceTransactionDateTime,omitempty"`
}

type statusHistory struct {
	ReviewPendingDateTime  string `json:"reviewPendingDateTime,omitempty"`
	ActionRequiredDateTime string `json:"actionRequiredDateTime,omitempty"`
	PassedDateTime         string `json:"passedDateTime,omitempty"`
	FailedDateTime         string `json:"failedDateTime,omitempty"`
	ApprovedDateTime       string `json:"approvedDateTime,omitempty"`
}

// clone returns a deep copy of r.
func (r *referral) clone() *referral {
	buf, err := json.Marshal(r)
	if err != nil {
		panic(err) // the model only holds JSON-encodable values
	}
	var c referral
	if err := json.Unmarshal(buf, &c); err != nil {
		panic(err)
	}
	return &c
}

// Enumerations (Partner Center docs: referral-resources). Values are matched
// case-insensitively on input and stored in their canonical spelling.

var (
	statuses       = []string{"New", "Active", "Closed"}
	substatusOf    = map[string][]string{"New": {"Pending", "Received"}, "Active": {"Accepted"}, "Closed": {"Won", "Lost", "Declined", "Expired"}}
	allSubstatuses = []string{"Pending", "Received", "Accepted", "Won", "Lost", "Declined", "Expired"}
	referralTypes  = []string{"Shared", "Independent"}
	qualifications = []string{"None", "Direct", "MarketingQualified", "SalesQualified"}
	salesStages    = []string{"Qualify", "Develop", "Propose", "Close"}
	assistCodes    = []string{"Unknown", "GeneralOrOther", "CustomerTechnicalArchitecture", "ProofOfConceptOrDemo",
		"QuotesOrLicensing", "PostSalesCustomerSuccess", "WorkloadSpecificValueProposition"}
	contractTerms    = []string{"Perpetual", "Finite"}
	deploymentSites  = []string{"Customer", "Partner"}
	pricingModels    = []string{"PayAsYouGo", "Other"}
	registrationType = "AzureIPCoSell"
)

// nextStatuses is the referral state machine: the statuses a referral may move to from each status.
var nextStatuses = map[string][]string{
	"New":    {"New", "Active", "Closed"},
	"Active": {"Active", "Closed"},
	"Closed": {"Closed"},
}

// canonical returns the member of values equal to v ignoring case.
func canonical(v string, values []string) (string, bool) {
	for _, c := range values {
		if strings.EqualFold(c, v) {
			return c, true
		}
	}
	return "", false
}

func contains(values []string, v string) bool {
	for _, c := range values {
		if c == v {
			return true
		}
	}
	return false
}

// Timestamps are served the way the service's .NET back end writes them: UTC with seven
// fractional digits, e.g. 2026-09-15T12:00:00.0000000Z.
const timeLayout = "2006-01-02T15:04:05.0000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"}

// parseTime accepts RFC 3339 date-times, date-times without an offset (taken as UTC) and
// plain dates (midnight UTC).
func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var (
	guidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	currencyRE = regexp.MustCompile(`^[A-Za-z]{3}$`)
	emailRE    = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// newGUID draws a version-4 GUID from rng.
func newGUID(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Field schema, derived from the model so that filters, ordering and projections know
// exactly the properties the service serves.

type fieldKind int

const (
	kindString fieldKind = iota
	kindNumber
	kindBool
	kindDateTime
	kindObject
	kindArray
)

func (k fieldKind) String() string {
	return [...]string{"Edm.String", "Edm.Double", "Edm.Boolean", "Edm.DateTimeOffset", "complex type", "collection"}[k]
}

type schemaNode struct {
	name     string // canonical JSON name
	path     string // slash-separated path from the referral root
	kind     fieldKind
	fold     bool // compared case-insensitively (enumerations and GUIDs)
	children []*schemaNode
	byLower  map[string]*schemaNode
}

func (n *schemaNode) child(name string) *schemaNode {
	if n.byLower == nil {
		return nil
	}
	return n.byLower[strings.ToLower(name)]
}

// foldFields are compared case-insensitively in $filter and $orderby: the service stores them
// as enumerations (status, substatus, type, qualification, direction, salesStage) or GUIDs.
var foldFields = map[string]bool{
	"status": true, "substatus": true, "type": true, "qualification": true, "direction": true, "salesStage": true,
	"id": true, "engagementId": true, "organizationId": true,
}

var referralSchema = buildSchema(reflect.TypeFor[referral](), "", "")

func buildSchema(t reflect.Type, name, path string) *schemaNode {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := &schemaNode{name: name, path: path}
	switch t.Kind() {
	case reflect.String:
		n.kind = kindString
		if strings.HasSuffix(name, "DateTime") {
			n.kind = kindDateTime
		}
		n.fold = path == name && foldFields[name]
	case reflect.Float64, reflect.Float32, reflect.Int, reflect.Int64:
		n.kind = kindNumber
	case reflect.Bool:
		n.kind = kindBool
	case reflect.Slice:
		n.kind = kindArray
	case reflect.Map, reflect.Interface:
		n.kind = kindObject
	case reflect.Struct:
		n.kind = kindObject
		n.byLower = map[string]*schemaNode{}
		for i := range t.NumField() {
			f := t.Field(i)
			jname, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if jname == "" || jname == "-" {
				continue
			}
			p := jname
			if path != "" {
				p = path + "/" + jname
			}
			c := buildSchema(f.Type, jname, p)
			n.children = append(n.children, c)
			n.byLower[strings.ToLower(jname)] = c
		}
	default:
		panic("sandbox: unsupported model type " + t.String())
	}
	return n
}

// toDoc converts raw referral JSON into the generic form filters and ordering read.
func toDoc(raw []byte) map[string]any {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		panic(err)
	}
	return doc
}

// lookup returns the value at a slash-separated path of canonical names (nil when absent).
func lookup(doc map[string]any, segs []string) any {
	var cur any = doc
	for _, s := range segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[s]
	}
	return cur
}
