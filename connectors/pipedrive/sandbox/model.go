package sandbox

import (
	"math"
	"strings"
	"time"
)

// Stored entities and their wire shapes. Field names, types and order follow the Pipedrive API
// v2 spec (and v1 for users and activity types); absent values are sent as null, as the live
// API does.

type company struct {
	ID       int
	Name     string
	Domain   string
	Country  string
	Industry string
}

type user struct {
	ID        int
	Name      string
	Email     string
	Phone     string
	Admin     bool
	Currency  string
	Timezone  string
	TZOffset  string
	Created   time.Time
	Modified  time.Time
	LastLogin time.Time
}

type activityType struct {
	ID      int
	OrderNr int
	Name    string
	Key     string
	Color   string
	Added   time.Time
}

type pipeline struct {
	ID          int
	Name        string
	OrderNr     int
	Probability bool
	AddTime     time.Time
	UpdateTime  time.Time
}

type stage struct {
	ID          int
	OrderNr     int
	Name        string
	Probability int
	PipelineID  int
	RotDays     *int
	AddTime     time.Time
	UpdateTime  time.Time
}

type address struct {
	Value        string  `json:"value"`
	Country      string  `json:"country"`
	AdminArea1   string  `json:"admin_area_level_1"`
	AdminArea2   *string `json:"admin_area_level_2"`
	Locality     string  `json:"locality"`
	Sublocality  *string `json:"sublocality"`
	Route        string  `json:"route"`
	StreetNumber string  `json:"street_number"`
	Subpremise   *string `json:"subpremise"`
	PostalCode   string  `json:"postal_code"`
}

// party holds the members organizations and persons share.
type party struct {
	ID         int
	OwnerID    int
	VisibleTo  int
	LabelIDs   []int
	AddTime    time.Time
	UpdateTime time.Time
}

// shared is the party of an organization or a person (see partyRecord).
func (p *party) shared() *party { return p }

type organization struct {
	party
	Name          string
	Address       *address
	Website       *string
	Linkedin      *string
	Industry      *int
	AnnualRevenue *int
	EmployeeCount *int
}

type person struct {
	party
	FirstName string
	LastName  string
	OrgID     *int
	Emails    []contactJSON
	Phones    []contactJSON
	JobTitle  string
}

func (p *person) name() string { return strings.TrimSpace(p.FirstName + " " + p.LastName) }

type deal struct {
	ID                int
	Title             string
	CreatorUserID     int
	OwnerID           int
	Value             float64
	PersonID          *int
	OrgID             *int
	StageID           int
	PipelineID        int
	Currency          string
	AddTime           time.Time
	UpdateTime        time.Time
	StageChangeTime   *time.Time
	Status            string // open, won, lost or deleted
	Deleted           bool
	Archived          bool
	ArchiveTime       *time.Time
	Probability       *float64
	LostReason        *string
	VisibleTo         int
	CloseTime         *time.Time
	WonTime           *time.Time
	LostTime          *time.Time
	ExpectedCloseDate *string
	LabelIDs          []int
	Origin            string
	CustomFields      map[string]any
	Notes             []string // note contents, searchable by /deals/search
}

type activity struct {
	ID           int
	Subject      string
	Type         string
	OwnerID      int
	CreatorID    int
	Deleted      bool
	AddTime      time.Time
	UpdateTime   time.Time
	DealID       *int
	PersonID     *int
	OrgID        *int
	DueDate      *string
	DueTime      *string
	Duration     *string
	Busy         bool
	Done         bool
	DoneTime     *time.Time
	Location     map[string]string
	Participants []participant
	Public       *string
	Priority     *int
	Note         *string
}

type participant struct {
	PersonID int  `json:"person_id"`
	Primary  bool `json:"primary"`
}

// helpers

func ptr[T any](v T) *T { return &v }

// orEmpty sends a nil list as [], as the API does.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func ts(t time.Time) string { return t.UTC().Format(timeLayout) }

func tsp(t *time.Time) *string {
	if t == nil {
		return nil
	}
	return ptr(ts(*t))
}

func localDate(t *time.Time) *string {
	if t == nil {
		return nil
	}
	return ptr(t.UTC().Format(dateLayout))
}

func (a *address) formatted() *string {
	if a == nil {
		return nil
	}
	return ptr(a.Value)
}

// v2 wire shapes

type pipelineJSON struct {
	ID                       int    `json:"id"`
	Name                     string `json:"name"`
	OrderNr                  int    `json:"order_nr"`
	IsDeleted                bool   `json:"is_deleted"`
	IsDealProbabilityEnabled bool   `json:"is_deal_probability_enabled"`
	AddTime                  string `json:"add_time"`
	UpdateTime               string `json:"update_time"`
}

func (p *pipeline) json() pipelineJSON {
	return pipelineJSON{p.ID, p.Name, p.OrderNr, false, p.Probability, ts(p.AddTime), ts(p.UpdateTime)}
}

type stageJSON struct {
	ID               int    `json:"id"`
	OrderNr          int    `json:"order_nr"`
	Name             string `json:"name"`
	IsDeleted        bool   `json:"is_deleted"`
	DealProbability  int    `json:"deal_probability"`
	PipelineID       int    `json:"pipeline_id"`
	IsDealRotEnabled bool   `json:"is_deal_rot_enabled"`
	DaysToRotten     *int   `json:"days_to_rotten"`
	AddTime          string `json:"add_time"`
	UpdateTime       string `json:"update_time"`
}

func (st *stage) json() stageJSON {
	return stageJSON{st.ID, st.OrderNr, st.Name, false, st.Probability, st.PipelineID, st.RotDays != nil, st.RotDays, ts(st.AddTime), ts(st.UpdateTime)}
}

type dealJSON struct {
	ID                int            `json:"id"`
	Title             string         `json:"title"`
	CreatorUserID     int            `json:"creator_user_id"`
	OwnerID           int            `json:"owner_id"`
	Value             float64        `json:"value"`
	PersonID          *int           `json:"person_id"`
	OrgID             *int           `json:"org_id"`
	StageID           int            `json:"stage_id"`
	PipelineID        int            `json:"pipeline_id"`
	Currency          string         `json:"currency"`
	ArchiveTime       *string        `json:"archive_time"`
	AddTime           string         `json:"add_time"`
	UpdateTime        string         `json:"update_time"`
	StageChangeTime   *string        `json:"stage_change_time"`
	Status            string         `json:"status"`
	IsArchived        bool           `json:"is_archived"`
	IsDeleted         bool           `json:"is_deleted"`
	Probability       *float64       `json:"probability"`
	LostReason        *string        `json:"lost_reason"`
	VisibleTo         int            `json:"visible_to"`
	CloseTime         *string        `json:"close_time"`
	WonTime           *string        `json:"won_time"`
	LostTime          *string        `json:"lost_time"`
	LocalWonDate      *string        `json:"local_won_date"`
	LocalLostDate     *string        `json:"local_lost_date"`
	LocalCloseDate    *string        `json:"local_close_date"`
	ExpectedCloseDate *string        `json:"expected_close_date"`
	LabelIDs          []int          `json:"label_ids"`
	Origin            string         `json:"origin"`
	OriginID          *string        `json:"origin_id"`
	Channel           *int           `json:"channel"`
	ChannelID         *string        `json:"channel_id"`
	ACV               *float64       `json:"acv"`
	ARR               *float64       `json:"arr"`
	MRR               *float64       `json:"mrr"`
	CustomFields      map[string]any `json:"custom_fields"`
}

func (d *deal) json() dealJSON {
	labels := d.LabelIDs
	if labels == nil {
		labels = []int{}
	}
	cf := d.CustomFields
	if cf == nil {
		cf = map[string]any{}
	}
	return dealJSON{
		ID: d.ID, Title: d.Title, CreatorUserID: d.CreatorUserID, OwnerID: d.OwnerID, Value: d.Value,
		PersonID: d.PersonID, OrgID: d.OrgID, StageID: d.StageID, PipelineID: d.PipelineID, Currency: d.Currency,
		ArchiveTime: tsp(d.ArchiveTime), AddTime: ts(d.AddTime), UpdateTime: ts(d.UpdateTime),
		StageChangeTime: tsp(d.StageChangeTime), Status: d.Status, IsArchived: d.Archived, IsDeleted: d.Deleted,
		Probability: d.Probability, LostReason: d.LostReason, VisibleTo: d.VisibleTo,
		CloseTime: tsp(d.CloseTime), WonTime: tsp(d.WonTime), LostTime: tsp(d.LostTime),
		LocalWonDate: localDate(d.WonTime), LocalLostDate: localDate(d.LostTime), LocalCloseDate: localDate(d.CloseTime),
		ExpectedCloseDate: d.ExpectedCloseDate, LabelIDs: labels, Origin: d.Origin, CustomFields: cf,
	}
}

type activityJSON struct {
	ID                      int               `json:"id"`
	Subject                 string            `json:"subject"`
	Type                    string            `json:"type"`
	OwnerID                 int               `json:"owner_id"`
	CreatorUserID           int               `json:"creator_user_id"`
	IsDeleted               bool              `json:"is_deleted"`
	AddTime                 string            `json:"add_time"`
	UpdateTime              string            `json:"update_time"`
	DealID                  *int              `json:"deal_id"`
	LeadID                  *string           `json:"lead_id"`
	PersonID                *int              `json:"person_id"`
	OrgID                   *int              `json:"org_id"`
	ProjectID               *int              `json:"project_id"`
	DueDate                 *string           `json:"due_date"`
	DueTime                 *string           `json:"due_time"`
	Duration                *string           `json:"duration"`
	Busy                    bool              `json:"busy"`
	Done                    bool              `json:"done"`
	MarkedAsDoneTime        *string           `json:"marked_as_done_time"`
	Location                map[string]string `json:"location"`
	Participants            []participant     `json:"participants"`
	Attendees               *[]any            `json:"attendees,omitempty"`
	ConferenceMeetingClient *string           `json:"conference_meeting_client"`
	ConferenceMeetingURL    *string           `json:"conference_meeting_url"`
	ConferenceMeetingID     *string           `json:"conference_meeting_id"`
	PublicDescription       *string           `json:"public_description"`
	Priority                *int              `json:"priority"`
	Note                    *string           `json:"note"`
}

func (a *activity) json(withAttendees bool) activityJSON {
	parts := a.Participants
	if parts == nil {
		parts = []participant{}
	}
	out := activityJSON{
		ID: a.ID, Subject: a.Subject, Type: a.Type, OwnerID: a.OwnerID, CreatorUserID: a.CreatorID,
		IsDeleted: a.Deleted, AddTime: ts(a.AddTime), UpdateTime: ts(a.UpdateTime),
		DealID: a.DealID, PersonID: a.PersonID, OrgID: a.OrgID, DueDate: a.DueDate, DueTime: a.DueTime,
		Duration: a.Duration, Busy: a.Busy, Done: a.Done, MarkedAsDoneTime: tsp(a.DoneTime),
		Location: a.Location, Participants: parts, PublicDescription: a.Public, Priority: a.Priority, Note: a.Note,
	}
	if withAttendees {
		out.Attendees = &[]any{}
	}
	return out
}

type contactJSON struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary"`
	Label   string `json:"label"`
}

type personJSON struct {
	ID            int            `json:"id"`
	Name          string         `json:"name"`
	FirstName     string         `json:"first_name"`
	LastName      string         `json:"last_name"`
	OwnerID       int            `json:"owner_id"`
	OrgID         *int           `json:"org_id"`
	AddTime       string         `json:"add_time"`
	UpdateTime    string         `json:"update_time"`
	Emails        []contactJSON  `json:"emails"`
	Phones        []contactJSON  `json:"phones"`
	IsDeleted     bool           `json:"is_deleted"`
	VisibleTo     int            `json:"visible_to"`
	LabelIDs      []int          `json:"label_ids"`
	PictureID     *int           `json:"picture_id"`
	CustomFields  map[string]any `json:"custom_fields"`
	Notes         *string        `json:"notes"`
	IM            []contactJSON  `json:"im"`
	Birthday      *string        `json:"birthday"`
	JobTitle      string         `json:"job_title"`
	PostalAddress *address       `json:"postal_address"`
}

func (p *person) json() personJSON {
	return personJSON{
		ID: p.ID, Name: p.name(), FirstName: p.FirstName, LastName: p.LastName, OwnerID: p.OwnerID, OrgID: p.OrgID,
		AddTime: ts(p.AddTime), UpdateTime: ts(p.UpdateTime),
		Emails: orEmpty(p.Emails), Phones: orEmpty(p.Phones), VisibleTo: p.VisibleTo, LabelIDs: orEmpty(p.LabelIDs),
		CustomFields: map[string]any{}, IM: []contactJSON{}, JobTitle: p.JobTitle,
	}
}

type orgJSON struct {
	ID            int            `json:"id"`
	Name          string         `json:"name"`
	OwnerID       int            `json:"owner_id"`
	AddTime       string         `json:"add_time"`
	UpdateTime    string         `json:"update_time"`
	Address       *address       `json:"address"`
	IsDeleted     bool           `json:"is_deleted"`
	VisibleTo     int            `json:"visible_to"`
	LabelIDs      []int          `json:"label_ids"`
	Website       *string        `json:"website"`
	Linkedin      *string        `json:"linkedin"`
	Industry      *int           `json:"industry"`
	AnnualRevenue *int           `json:"annual_revenue"`
	EmployeeCount *int           `json:"employee_count"`
	CustomFields  map[string]any `json:"custom_fields"`
}

func (o *organization) json() orgJSON {
	return orgJSON{
		ID: o.ID, Name: o.Name, OwnerID: o.OwnerID, AddTime: ts(o.AddTime), UpdateTime: ts(o.UpdateTime),
		Address: o.Address, VisibleTo: o.VisibleTo, LabelIDs: orEmpty(o.LabelIDs), Website: o.Website, Linkedin: o.Linkedin,
		Industry: o.Industry, AnnualRevenue: o.AnnualRevenue, EmployeeCount: o.EmployeeCount,
		CustomFields: map[string]any{},
	}
}

// v1 wire shapes

type userAccess struct {
	App             string `json:"app"`
	Admin           bool   `json:"admin"`
	PermissionSetID string `json:"permission_set_id"`
}

type userJSON struct {
	ID                int          `json:"id"`
	Name              string       `json:"name"`
	DefaultCurrency   string       `json:"default_currency"`
	Locale            string       `json:"locale"`
	Lang              int          `json:"lang"`
	Email             string       `json:"email"`
	Phone             *string      `json:"phone"`
	Activated         bool         `json:"activated"`
	LastLogin         string       `json:"last_login"`
	Created           string       `json:"created"`
	Modified          *string      `json:"modified"`
	HasCreatedCompany bool         `json:"has_created_company"`
	Access            []userAccess `json:"access"`
	ActiveFlag        bool         `json:"active_flag"`
	TimezoneName      string       `json:"timezone_name"`
	TimezoneOffset    string       `json:"timezone_offset"`
	RoleID            int          `json:"role_id"`
	IconURL           *string      `json:"icon_url"`
	IsYou             bool         `json:"is_you"`
	IsDeleted         bool         `json:"is_deleted"`
}

func (u *user) json(meID int) userJSON {
	access := []userAccess{{App: "sales", Admin: u.Admin, PermissionSetID: permissionSet("sales", u.Admin)}}
	access = append(access, userAccess{App: "global", Admin: u.Admin, PermissionSetID: permissionSet("global", u.Admin)})
	if u.Admin {
		access = append(access, userAccess{App: "account_settings", Admin: true, PermissionSetID: permissionSet("account_settings", true)})
	}
	var phone *string
	if u.Phone != "" {
		phone = ptr(u.Phone)
	}
	return userJSON{
		ID: u.ID, Name: u.Name, DefaultCurrency: u.Currency, Locale: "en_US", Lang: 1, Email: u.Email, Phone: phone,
		Activated: true, LastLogin: u.LastLogin.Format(v1TimeLayout), Created: u.Created.Format(v1TimeLayout),
		Modified: ptr(u.Modified.Format(v1TimeLayout)), HasCreatedCompany: u.ID == meID, Access: access,
		ActiveFlag: true, TimezoneName: u.Timezone, TimezoneOffset: u.TZOffset, RoleID: 1, IsYou: u.ID == meID,
	}
}

// permissionSet returns a stable UUID-shaped permission set id for an app and admin flag.
func permissionSet(app string, admin bool) string {
	ids := map[string][2]string{
		"sales":            {"f07d229d-088a-4144-a40f-1fe64295d180", "62cc4d7f-4038-4352-abf3-a8c1c822b631"},
		"global":           {"7d1a6c8e-52b1-4e1f-9c44-2f0b8d3a9e61", "233b7976-39bd-43a9-b305-ef3a2b0998e5"},
		"account_settings": {"982c5ce5-b8ba-4b47-b102-9da024f4b990", "982c5ce5-b8ba-4b47-b102-9da024f4b990"},
	}
	if admin {
		return ids[app][1]
	}
	return ids[app][0]
}

type meJSON struct {
	userJSON
	CompanyID       int             `json:"company_id"`
	CompanyName     string          `json:"company_name"`
	CompanyDomain   string          `json:"company_domain"`
	CompanyCountry  string          `json:"company_country"`
	CompanyIndustry string          `json:"company_industry"`
	Language        languageJSONOut `json:"language"`
}

type languageJSONOut struct {
	LanguageCode string `json:"language_code"`
	CountryCode  string `json:"country_code"`
}

type activityTypeJSON struct {
	ID           int    `json:"id"`
	OrderNr      int    `json:"order_nr"`
	Name         string `json:"name"`
	KeyString    string `json:"key_string"`
	IconKey      string `json:"icon_key"`
	ActiveFlag   bool   `json:"active_flag"`
	Color        string `json:"color"`
	IsCustomFlag bool   `json:"is_custom_flag"`
	AddTime      string `json:"add_time"`
	UpdateTime   string `json:"update_time"`
}

func (t *activityType) json() activityTypeJSON {
	return activityTypeJSON{t.ID, t.OrderNr, t.Name, t.Key, t.Key, true, t.Color, false,
		t.Added.Format(v1TimeLayout), t.Added.Format(v1TimeLayout)}
}

// search result shapes

type idRef struct {
	ID int `json:"id"`
}

type namedRef struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type orgRef struct {
	ID      int     `json:"id"`
	Name    string  `json:"name"`
	Address *string `json:"address"`
}

type dealSearchItem struct {
	ID           int       `json:"id"`
	Type         string    `json:"type"`
	Title        string    `json:"title"`
	Value        any       `json:"value"`
	Currency     string    `json:"currency"`
	Status       string    `json:"status"`
	VisibleTo    int       `json:"visible_to"`
	Owner        idRef     `json:"owner"`
	Stage        namedRef  `json:"stage"`
	Person       *namedRef `json:"person"`
	Organization *orgRef   `json:"organization"`
	CustomFields []string  `json:"custom_fields"`
	Notes        []string  `json:"notes"`
	IsArchived   bool      `json:"is_archived"`
}

type orgSearchItem struct {
	ID           int      `json:"id"`
	Type         string   `json:"type"`
	Name         string   `json:"name"`
	Address      *string  `json:"address"`
	VisibleTo    int      `json:"visible_to"`
	Owner        idRef    `json:"owner"`
	CustomFields []string `json:"custom_fields"`
	Notes        []string `json:"notes"`
}

type searchResult struct {
	ResultScore float64 `json:"result_score"`
	Item        any     `json:"item"`
}

type searchData struct {
	Items []searchResult `json:"items"`
}

// numberValue renders a whole amount as a JSON integer (the search item declares value as an
// integer) and keeps fractions otherwise.
func numberValue(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v)
	}
	return v
}

func lower(s string) string { return strings.ToLower(s) }
