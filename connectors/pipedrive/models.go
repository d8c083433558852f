package pipedrive

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Deal is an API v2 deal.
type Deal struct {
	ID                int64    `json:"id"`
	Title             string   `json:"title"`
	CreatorUserID     int64    `json:"creator_user_id,omitempty"`
	OwnerID           int64    `json:"owner_id"`
	PersonID          int64    `json:"person_id,omitempty"`
	OrgID             int64    `json:"org_id,omitempty"`
	PipelineID        int64    `json:"pipeline_id"`
	StageID           int64    `json:"stage_id"`
	Value             float64  `json:"value"`
	Currency          string   `json:"currency"`
	Status            string   `json:"status"`
	Probability       *float64 `json:"probability,omitempty"`
	LostReason        string   `json:"lost_reason,omitempty"`
	VisibleTo         int      `json:"visible_to,omitempty"`
	AddTime           string   `json:"add_time,omitempty"`
	UpdateTime        string   `json:"update_time,omitempty"`
	StageChangeTime   string   `json:"stage_change_time,omitempty"`
	CloseTime         string   `json:"close_time,omitempty"`
	WonTime           string   `json:"won_time,omitempty"`
	LostTime          string   `json:"lost_time,omitempty"`
	ExpectedCloseDate string   `json:"expected_close_date,omitempty"`
	IsDeleted         bool     `json:"is_deleted,omitempty"`
	IsArchived        bool     `json:"is_archived,omitempty"`
	LabelIDs          []int64  `json:"label_ids,omitempty"`
	NextActivityID    int64    `json:"next_activity_id,omitempty"`
	LastActivityID    int64    `json:"last_activity_id,omitempty"`
	// DealIncluded holds the counts and times include_fields asked for.
	DealIncluded
	// CustomFields holds the deal's custom field values keyed by field code
	// (DealField.FieldCode), as sent: null when unset, a string (varchar,
	// text, date), a number (double), an option id (enum), an array of
	// option ids (set) or a MonetaryValue (monetary). With option labels
	// asked for, enum and set values are {"id","label"} objects instead.
	CustomFields map[string]json.RawMessage `json:"custom_fields,omitempty"`
}

// DealInput is the body of a deal create (POST) or update (PATCH). Nil
// fields are not sent, so an update changes only what is set.
type DealInput struct {
	Title             *string  `json:"title,omitempty"`
	OwnerID           *int64   `json:"owner_id,omitempty"`
	PersonID          *int64   `json:"person_id,omitempty"`
	OrgID             *int64   `json:"org_id,omitempty"`
	PipelineID        *int64   `json:"pipeline_id,omitempty"`
	StageID           *int64   `json:"stage_id,omitempty"`
	Value             *float64 `json:"value,omitempty"`
	Currency          *string  `json:"currency,omitempty"`
	Status            *string  `json:"status,omitempty"`
	LostReason        *string  `json:"lost_reason,omitempty"`
	VisibleTo         *int     `json:"visible_to,omitempty"`
	ExpectedCloseDate *string  `json:"expected_close_date,omitempty"`
	// CustomFields sets custom field values by field code; fields not in the
	// map keep their values, a nil value clears one. Values take the read
	// encodings: string, number, int64 option id (enum), []int64 option ids
	// (set, never empty) or MonetaryValue. A nil or empty map is not sent.
	CustomFields map[string]any `json:"custom_fields,omitempty"`
}

// MonetaryValue is the value of a monetary custom field. On write an empty
// Currency is left out and Pipedrive uses the deal's currency.
type MonetaryValue struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency,omitempty"`
}

// DealField describes one deal field (GET /api/v2/dealFields): a standard
// field keyed by its property name or a custom field keyed by a
// 40-character hash, the key of its value in Deal.CustomFields.
type DealField struct {
	FieldName   string `json:"field_name"`
	FieldCode   string `json:"field_code"`
	Description string `json:"description,omitempty"`
	// FieldType is e.g. varchar, text, double, monetary, date, enum, set,
	// user, org, people, stage, status.
	FieldType     string `json:"field_type"`
	IsCustomField bool   `json:"is_custom_field"`
	// IsOptionalResponseField marks fields deal reads return only when
	// include_fields asks for them.
	IsOptionalResponseField bool          `json:"is_optional_response_field"`
	Options                 []FieldOption `json:"options,omitempty"`
	Subfields               []Subfield    `json:"subfields,omitempty"`
}

// Option returns the field's option with the label, compared without
// regard to case or surrounding space.
func (f DealField) Option(label string) (FieldOption, bool) {
	label = strings.TrimSpace(label)
	for _, o := range f.Options {
		if strings.EqualFold(strings.TrimSpace(o.Label), label) {
			return o, true
		}
	}
	return FieldOption{}, false
}

// OptionByID returns the field's option with the integer id.
func (f DealField) OptionByID(id int64) (FieldOption, bool) {
	for _, o := range f.Options {
		if o.Key == "" && o.ID == id {
			return o, true
		}
	}
	return FieldOption{}, false
}

// FieldOption is one option of an enum or set field. Custom fields number
// their options with integers (ID); some built-in fields use strings (Key,
// e.g. status "won"), and then ID is 0.
type FieldOption struct {
	ID    int64
	Key   string
	Label string
	Color string
}

type fieldOptionJSON struct {
	ID    json.RawMessage `json:"id"`
	Label string          `json:"label"`
	Color string          `json:"color,omitempty"`
}

// UnmarshalJSON accepts an integer or a string id.
func (o *FieldOption) UnmarshalJSON(b []byte) error {
	var w fieldOptionJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*o = FieldOption{Label: w.Label, Color: w.Color}
	if len(w.ID) == 0 || string(w.ID) == "null" {
		return nil
	}
	if w.ID[0] == '"' {
		return json.Unmarshal(w.ID, &o.Key)
	}
	if err := json.Unmarshal(w.ID, &o.ID); err != nil {
		return fmt.Errorf("option id %s is neither an integer nor a string", w.ID)
	}
	return nil
}

// MarshalJSON writes the id back in the form it was read.
func (o FieldOption) MarshalJSON() ([]byte, error) {
	id := strconv.FormatInt(o.ID, 10)
	if o.Key != "" {
		b, _ := json.Marshal(o.Key)
		id = string(b)
	}
	return json.Marshal(fieldOptionJSON{ID: json.RawMessage(id), Label: o.Label, Color: o.Color})
}

// Subfield is a part of a composite field's value, e.g. the value and
// currency of a monetary field.
type Subfield struct {
	FieldCode string `json:"field_code"`
	FieldName string `json:"field_name"`
	FieldType string `json:"field_type"`
}

// Stage is an API v2 stage.
type Stage struct {
	ID               int64  `json:"id"`
	OrderNr          int    `json:"order_nr"`
	Name             string `json:"name"`
	IsDeleted        bool   `json:"is_deleted"`
	DealProbability  int    `json:"deal_probability"`
	PipelineID       int64  `json:"pipeline_id"`
	IsDealRotEnabled bool   `json:"is_deal_rot_enabled"`
	DaysToRotten     *int   `json:"days_to_rotten"`
	AddTime          string `json:"add_time"`
	UpdateTime       string `json:"update_time"`
}

// Pipeline is an API v2 pipeline.
type Pipeline struct {
	ID                       int64  `json:"id"`
	Name                     string `json:"name"`
	OrderNr                  int    `json:"order_nr"`
	IsDeleted                bool   `json:"is_deleted"`
	IsDealProbabilityEnabled bool   `json:"is_deal_probability_enabled"`
	AddTime                  string `json:"add_time"`
	UpdateTime               string `json:"update_time"`
}

// Activity is an API v2 activity.
type Activity struct {
	ID               int64  `json:"id"`
	Subject          string `json:"subject"`
	Type             string `json:"type"`
	OwnerID          int64  `json:"owner_id"`
	CreatorUserID    int64  `json:"creator_user_id,omitempty"`
	DealID           int64  `json:"deal_id,omitempty"`
	PersonID         int64  `json:"person_id,omitempty"`
	OrgID            int64  `json:"org_id,omitempty"`
	DueDate          string `json:"due_date,omitempty"`
	DueTime          string `json:"due_time,omitempty"`
	Duration         string `json:"duration,omitempty"`
	Busy             bool   `json:"busy"`
	Done             bool   `json:"done"`
	Note             string `json:"note,omitempty"`
	AddTime          string `json:"add_time,omitempty"`
	UpdateTime       string `json:"update_time,omitempty"`
	MarkedAsDoneTime string `json:"marked_as_done_time,omitempty"`
	IsDeleted        bool   `json:"is_deleted,omitempty"`
}

// ActivityInput is the body of an activity create. Zero fields are not sent.
type ActivityInput struct {
	Subject  string `json:"subject"`
	Type     string `json:"type"`
	OwnerID  int64  `json:"owner_id,omitempty"`
	DealID   int64  `json:"deal_id,omitempty"`
	PersonID int64  `json:"person_id,omitempty"`
	OrgID    int64  `json:"org_id,omitempty"`
	DueDate  string `json:"due_date,omitempty"`
	DueTime  string `json:"due_time,omitempty"`
	Duration string `json:"duration,omitempty"`
	Note     string `json:"note,omitempty"`
	Done     *bool  `json:"done,omitempty"`
}

// Person is an API v2 person (a contact, not a user). JobTitle is sent
// only when the company has contact sync enabled.
type Person struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	FirstName  string    `json:"first_name,omitempty"`
	LastName   string    `json:"last_name,omitempty"`
	OwnerID    int64     `json:"owner_id,omitempty"`
	OrgID      int64     `json:"org_id,omitempty"`
	Emails     []Contact `json:"emails,omitempty"`
	Phones     []Contact `json:"phones,omitempty"`
	JobTitle   string    `json:"job_title,omitempty"`
	VisibleTo  int       `json:"visible_to,omitempty"`
	LabelIDs   []int64   `json:"label_ids,omitempty"`
	IsDeleted  bool      `json:"is_deleted,omitempty"`
	AddTime    string    `json:"add_time,omitempty"`
	UpdateTime string    `json:"update_time,omitempty"`
	// CustomFields holds the person's custom field values keyed by field
	// code, as sent (see Deal.CustomFields).
	CustomFields map[string]json.RawMessage `json:"custom_fields,omitempty"`
}

// Contact is one email address or phone number of a person.
type Contact struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary"`
	// Label classifies it: work, home, mobile or other.
	Label string `json:"label,omitempty"`
}

// Organization is an API v2 organization.
type Organization struct {
	ID            int64    `json:"id"`
	Name          string   `json:"name"`
	OwnerID       int64    `json:"owner_id,omitempty"`
	Address       *Address `json:"address,omitempty"`
	Website       string   `json:"website,omitempty"`
	Linkedin      string   `json:"linkedin,omitempty"`
	Industry      int64    `json:"industry,omitempty"`
	AnnualRevenue int64    `json:"annual_revenue,omitempty"`
	EmployeeCount int64    `json:"employee_count,omitempty"`
	VisibleTo     int      `json:"visible_to,omitempty"`
	LabelIDs      []int64  `json:"label_ids,omitempty"`
	IsDeleted     bool     `json:"is_deleted,omitempty"`
	AddTime       string   `json:"add_time,omitempty"`
	UpdateTime    string   `json:"update_time,omitempty"`
	// CustomFields holds the organization's custom field values keyed by
	// field code, as sent (see Deal.CustomFields).
	CustomFields map[string]json.RawMessage `json:"custom_fields,omitempty"`
}

// Address is an organization's address. On write, Value alone is enough:
// Pipedrive parses it into the parts.
type Address struct {
	Value           string `json:"value,omitempty"`
	Country         string `json:"country,omitempty"`
	AdminAreaLevel1 string `json:"admin_area_level_1,omitempty"`
	AdminAreaLevel2 string `json:"admin_area_level_2,omitempty"`
	Locality        string `json:"locality,omitempty"`
	Sublocality     string `json:"sublocality,omitempty"`
	Route           string `json:"route,omitempty"`
	StreetNumber    string `json:"street_number,omitempty"`
	Subpremise      string `json:"subpremise,omitempty"`
	PostalCode      string `json:"postal_code,omitempty"`
}

// User is a v1 user (v2 has no users endpoint).
type User struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Active bool   `json:"active_flag"`
}

// ActivityType is a v1 activity type (v2 has no equivalent).
type ActivityType struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	KeyString  string `json:"key_string"`
	ActiveFlag bool   `json:"active_flag"`
}

// DealSearchResult is one hit of the v2 deal search.
type DealSearchResult struct {
	ResultScore float64        `json:"result_score"`
	Item        DealSearchItem `json:"item"`
}

// DealSearchItem is the deal part of a search hit.
type DealSearchItem struct {
	ID           int64     `json:"id"`
	Title        string    `json:"title"`
	Value        float64   `json:"value"`
	Currency     string    `json:"currency"`
	Status       string    `json:"status"`
	Owner        IDRef     `json:"owner"`
	Stage        NamedRef  `json:"stage"`
	Person       *NamedRef `json:"person"`
	Organization *NamedRef `json:"organization"`
}

// OrganizationSearchResult is one hit of the v2 organization search.
type OrganizationSearchResult struct {
	ResultScore float64                `json:"result_score"`
	Item        OrganizationSearchItem `json:"item"`
}

// OrganizationSearchItem is the organization part of a search hit.
// CustomFields and Notes are the values the term matched in.
type OrganizationSearchItem struct {
	ID           int64    `json:"id"`
	Name         string   `json:"name"`
	Address      string   `json:"address,omitempty"`
	VisibleTo    int      `json:"visible_to,omitempty"`
	Owner        IDRef    `json:"owner"`
	CustomFields []string `json:"custom_fields,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// PersonSearchResult is one hit of the v2 person search.
type PersonSearchResult struct {
	ResultScore float64          `json:"result_score"`
	Item        PersonSearchItem `json:"item"`
}

// PersonSearchItem is the person part of a search hit: emails and phones
// as plain values. CustomFields and Notes are the values the term matched
// in.
type PersonSearchItem struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Emails       []string  `json:"emails,omitempty"`
	Phones       []string  `json:"phones,omitempty"`
	VisibleTo    int       `json:"visible_to,omitempty"`
	Owner        IDRef     `json:"owner"`
	Organization *NamedRef `json:"organization,omitempty"`
	CustomFields []string  `json:"custom_fields,omitempty"`
	Notes        []string  `json:"notes,omitempty"`
}

// IDRef is a reference by id.
type IDRef struct {
	ID int64 `json:"id"`
}

// NamedRef is a reference by id with the referenced object's name.
type NamedRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}
