package pipedrive

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

// Person is the part of an API v2 person this project uses.
type Person struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	OrgID int64  `json:"org_id,omitempty"`
}

// Organization is the part of an API v2 organization this project uses.
type Organization struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
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
	ResultScore float64  `json:"result_score"`
	Item        NamedRef `json:"item"`
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
