package workspan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// Field names of WorkSpan objects the API documents.
const (
	// AuditFieldIntegrationStatus is the only audit field (ObjectAudit's enum).
	AuditFieldIntegrationStatus = "partner_center.integration_status"
	// FieldCRMOpportunityID is the default external ID field of an opportunity.
	FieldCRMOpportunityID = "sales_details.crm_opportunity_id"
	// FieldExternalAccountID is the default external ID field of an account.
	FieldExternalAccountID = "account_info.external_account_id"
	// FieldPartnerCenterReferralID holds a Partner Center referral id.
	FieldPartnerCenterReferralID = "partner_center.referral_id"
)

// Audit status codes (ObjectAudit's status_code enum).
const (
	StatusScheduled    = "SCHEDULED"
	StatusCreateFailed = "CREATE_FAILED"
	StatusUpdateFailed = "UPDATE_FAILED"
	StatusLinked       = "LINKED"
)

// AuditStatusCodes lists the audit status codes the API accepts.
var AuditStatusCodes = []string{StatusScheduled, StatusCreateFailed, StatusUpdateFailed, StatusLinked}

// Bulk data formats.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
	FormatXLSX = "xlsx"
)

// Content types of bulk uploads.
const (
	ContentTypeCSV  = "text/csv"
	ContentTypeJSON = "application/json"
	ContentTypeXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// Bulk execution states (GetBulkloadStatus's status enum).
const (
	BulkRunning   = "running"
	BulkCompleted = "completed"
)

// Object events a subscriber may ask for (SubscribeObjectEvent's enum).
const (
	EventObjectAll                   = "object.all"
	EventObjectCreate                = "object.create"
	EventObjectUpdate                = "object.update"
	EventObjectDelete                = "object.delete"
	EventObjectStageChange           = "object.stage_change"
	EventPartnerCenterReferralSubmit = "object.partner_center_referral_submit"
	EventReportSubmit                = "report.submit"
)

// SubscriberTypeWebhook is the only subscriber type the API documents.
const SubscriberTypeWebhook = "webhook"

// ExternalIDs is the reply of GetExternalID.
type ExternalIDs struct {
	ObjectID    string       `json:"object_id"`
	ExternalIDs []ExternalID `json:"external_ids"`
}

// ExternalID is one external system's ID stored on a WorkSpan object.
type ExternalID struct {
	FieldName  string `json:"field_name"`
	ExternalID string `json:"external_id"`
}

// ExternalIDInput connects an external ID to a WorkSpan object. An empty
// FieldName lets WorkSpan pick the object's default field
// (FieldCRMOpportunityID or FieldExternalAccountID).
type ExternalIDInput struct {
	ExternalID string `json:"external_id"`
	FieldName  string `json:"field_name,omitempty"`
}

// ExternalIDResult is the reply of ConnectExternalID.
type ExternalIDResult struct {
	ExternalID string `json:"external_id"`
	ObjectID   string `json:"object_id"`
	FieldName  string `json:"field_name"`
}

// AuditInput records integration status on a WorkSpan object. FieldName
// defaults to AuditFieldIntegrationStatus; StatusCode is one of
// AuditStatusCodes; Message is required.
type AuditInput struct {
	FieldName     string `json:"field_name"`
	StatusCode    string `json:"status_code"`
	Message       string `json:"message"`
	IntegrationID string `json:"integration_id,omitempty"`
	ExternalID    string `json:"external_id,omitempty"`
}

// AuditResult is the reply of AddAudit.
type AuditResult struct {
	ObjectID   string `json:"object_id"`
	FieldName  string `json:"field_name"`
	StatusCode string `json:"status_code"`
}

// BulkParams are the query parameters of a bulk load.
type BulkParams struct {
	// IntegrationID of the CRM integration configured in WorkSpan (required).
	IntegrationID string
	// Format is csv or json for a raw body (default csv), and csv, json or
	// xlsx for a file (default: from the file name's extension, else xlsx).
	Format string
	// ColumnDelimiter of csv data (the API's default is ",").
	ColumnDelimiter string
	// HasHeaderRow tells whether an opportunity file has a header row (the
	// API's default is true); only BulkLoadOpportunitiesFile sends it.
	HasHeaderRow *bool
}

// BulkExecution is the reply of a bulk load: the execution to poll with
// BulkStatus.
type BulkExecution struct {
	IntegrationID string `json:"integration_id"`
	ExecutionID   string `json:"execution_id"`
	DataFormat    string `json:"data_format,omitempty"`
	CreatedAt     string `json:"created_at"`
}

// BulkStatus is the state of a bulk load execution.
type BulkStatus struct {
	IntegrationID string `json:"integration_id"`
	ExecutionID   string `json:"execution_id"`
	// Status is BulkRunning or BulkCompleted.
	Status string `json:"status"`
	// SuccessCount carries the API's spelling "succcess_count"; a reply
	// spelling it "success_count" is read as well.
	SuccessCount  int        `json:"succcess_count"`
	ErrorCount    int        `json:"error_count"`
	InputCount    int        `json:"input_count"`
	SkipCount     int        `json:"skip_count"`
	StartedAt     string     `json:"started_at"`
	CompletedAt   string     `json:"completed_at"`
	IncludeErrors bool       `json:"include_errors"`
	Errors        []RowError `json:"errors"`
}

// UnmarshalJSON reads counts given as integers, decimals or numeric strings
// and accepts both spellings of the success count.
func (s *BulkStatus) UnmarshalJSON(b []byte) error {
	var w struct {
		IntegrationID string              `json:"integration_id"`
		ExecutionID   string              `json:"execution_id"`
		Status        string              `json:"status"`
		Succcess      *upstream.FlexInt64 `json:"succcess_count"`
		Success       *upstream.FlexInt64 `json:"success_count"`
		ErrorCount    upstream.FlexInt64  `json:"error_count"`
		InputCount    upstream.FlexInt64  `json:"input_count"`
		SkipCount     upstream.FlexInt64  `json:"skip_count"`
		StartedAt     string              `json:"started_at"`
		CompletedAt   string              `json:"completed_at"`
		IncludeErrors bool                `json:"include_errors"`
		Errors        []RowError          `json:"errors"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = BulkStatus{
		IntegrationID: w.IntegrationID,
		ExecutionID:   w.ExecutionID,
		Status:        w.Status,
		ErrorCount:    int(w.ErrorCount),
		InputCount:    int(w.InputCount),
		SkipCount:     int(w.SkipCount),
		StartedAt:     w.StartedAt,
		CompletedAt:   w.CompletedAt,
		IncludeErrors: w.IncludeErrors,
		Errors:        w.Errors,
	}
	switch {
	case w.Succcess != nil:
		s.SuccessCount = int(*w.Succcess)
	case w.Success != nil:
		s.SuccessCount = int(*w.Success)
	}
	return nil
}

// RowError is one record a bulk load rejected.
type RowError struct {
	Message string `json:"message"`
	// ID of the failed record; a numeric id is read as its decimal text.
	ID string `json:"id"`
	// DataRow is the failed row: declared a string, sent as an object in the
	// API's own example, so kept as decoded.
	DataRow any `json:"data_row,omitempty"`
}

// UnmarshalJSON accepts an id given as a string or a number; numbers in
// DataRow are json.Number.
func (r *RowError) UnmarshalJSON(b []byte) error {
	var w struct {
		Message string          `json:"message"`
		ID      json.RawMessage `json:"id"`
		DataRow any             `json:"data_row"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*r = RowError{Message: w.Message, ID: codeString(w.ID), DataRow: w.DataRow}
	return nil
}

// Page selects a page of a report list or report data. Number starts
// at 0; Size is 1..10000 (the API's default is 500).
type Page struct {
	Number int `json:"number"`
	Size   int `json:"size"`
}

// DefaultPageSize is the API's default page size.
const DefaultPageSize = 500

// MaxPageSize is the largest page size the API accepts.
const MaxPageSize = 10000

// ReportList is a page of reports.
type ReportList struct {
	EndOfList bool            `json:"endOfList"`
	Results   []ReportSummary `json:"results"`
}

// ReportSummary describes one report (ReportBaseDto).
type ReportSummary struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	CreatedAt   string  `json:"createdAt,omitempty"`
	CreatedBy   *Person `json:"createdBy,omitempty"`
	ModifiedAt  string  `json:"modifiedAt,omitempty"`
	ModifiedBy  *Person `json:"modifiedBy,omitempty"`
	// ReportStatus is DRAFT or PUBLISHED.
	ReportStatus string `json:"reportStatus,omitempty"`
}

// Person is a WorkSpan user (PersonBaseDto).
type Person struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Report filter joins (ReportFilterContainer.op).
const (
	JoinAnd = "AND"
	JoinOr  = "OR"
)

// Column types of a report field filter (ReportFieldFilter.type).
const (
	TypeText           = "TEXT"
	TypeTextRepeated   = "TEXT_REPEATED"
	TypeTextPGArray    = "TEXT_PG_ARRAY"
	TypeBoolean        = "BOOLEAN"
	TypeNumber         = "NUMBER"
	TypeDecimal        = "DECIMAL"
	TypeDate           = "DATE"
	TypeDateOffset     = "DATE_OFFSET"
	TypeDateTime       = "DATE_TIME"
	TypeDateTimeOffset = "DATE_TIME_OFFSET"
	TypeCurrency       = "CURRENCY"
)

// Filter operators (ReportFilter.op).
const (
	OpEqualTo              = "EQUAL_TO"
	OpIsEmpty              = "IS_EMPTY"
	OpContain              = "CONTAIN"
	OpStartWith            = "START_WITH"
	OpEndWith              = "END_WITH"
	OpIn                   = "IN"
	OpGreaterThan          = "GREATER_THAN"
	OpLessThan             = "LESS_THAN"
	OpGreaterThanOrEqualTo = "GREATER_THAN_OR_EQUAL_TO"
	OpLessThanOrEqualTo    = "LESS_THAN_OR_EQUAL_TO"
	OpBetween              = "BETWEEN"
	OpOffset               = "OFFSET"
)

// FieldTypes lists the column types of a field filter, as the API
// definition enumerates them.
var FieldTypes = []string{TypeText, TypeTextRepeated, TypeTextPGArray, TypeBoolean, TypeNumber, TypeDecimal,
	TypeDate, TypeDateOffset, TypeDateTime, TypeDateTimeOffset, TypeCurrency}

// FilterOps lists the filter operators, as the API definition enumerates
// them.
var FilterOps = []string{OpEqualTo, OpIsEmpty, OpContain, OpStartWith, OpEndWith, OpIn, OpGreaterThan, OpLessThan,
	OpGreaterThanOrEqualTo, OpLessThanOrEqualTo, OpBetween, OpOffset}

// ReportQuery is the body of ReadReport (ReportDataRequest).
type ReportQuery struct {
	Filters *FilterGroup `json:"filters,omitempty"`
	Page    Page         `json:"page"`
}

// FilterGroup combines field filters with AND or OR.
type FilterGroup struct {
	Op           string        `json:"op"`
	FieldFilters []FieldFilter `json:"fieldFilters"`
}

// FieldFilter filters one report column.
type FieldFilter struct {
	ColID string `json:"colId"`
	// Type is one of FieldTypes.
	Type   string     `json:"type"`
	Filter FilterSpec `json:"filter"`
}

// FilterSpec is the condition of a field filter.
//
// The API definition lists only negate and op; where the operands go is
// not documented. Values (and the single-operand alternative Value) are
// inferred: IS_EMPTY takes none, BETWEEN takes two (low, high), the other
// operators at least one (IN any number, OFFSET the offset).
type FilterSpec struct {
	Negate bool   `json:"negate"`
	Op     string `json:"op"`
	// Values are the operands (inferred field).
	Values []any `json:"values,omitempty"`
	// Value is a single operand (inferred field); use it or Values, not both.
	Value any `json:"value,omitempty"`
}

// operands counts a filter's operands.
func (f FilterSpec) operands() int {
	n := len(f.Values)
	if f.Value != nil {
		n++
	}
	return n
}

// ReportData is a page of report rows.
type ReportData struct {
	EndOfList bool `json:"endOfList"`
	// Results are the rows; numbers are json.Number, so large ids keep
	// their precision.
	Results []map[string]any `json:"results"`
	Version int64            `json:"version"`
}

// Integration is an integration configured in WorkSpan.
type Integration struct {
	IntegrationID   string `json:"integration_id"`
	IntegrationType string `json:"integration_type"`
	Description     string `json:"description"`
	Name            string `json:"name"`
}

// Event is an event a subscriber may ask for.
type Event struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// WebhookSettings says where WorkSpan delivers events.
type WebhookSettings struct {
	CallbackURL string `json:"callback_url"`
}

// SubscriberInput subscribes a webhook to WorkSpan events. The API has one
// subscribe endpoint for collaboration events (Event a string, no
// IntegrationID), object events (Event a []string of EventObject…,
// IntegrationID set) and the Partner Center referral submission
// (Event EventPartnerCenterReferralSubmit, IntegrationID set).
type SubscriberInput struct {
	IntegrationID string `json:"integration_id,omitempty"`
	// Event is a string or a []string.
	Event any    `json:"event"`
	Name  string `json:"name"`
	// SubscriberType defaults to SubscriberTypeWebhook.
	SubscriberType  string          `json:"subscriber_type"`
	WebhookSettings WebhookSettings `json:"webhook_settings"`
	ObjectIDs       []string        `json:"object_ids,omitempty"`
	// Filters is a filter expression, e.g.
	// (stage in [ "closed", "won", "lost" ]) AND (sales_details.partner = "P1").
	Filters string `json:"filters,omitempty"`
}

// Subscriber is a registered event subscriber (event_subscribe_info).
type Subscriber struct {
	SubscriberID   string   `json:"subscriber_id"`
	Name           string   `json:"name"`
	ObjectIDs      []string `json:"objectids,omitempty"`
	Events         []string `json:"event"`
	Filters        string   `json:"filters,omitempty"`
	IntegrationID  string   `json:"integration_id,omitempty"`
	SubscriberType string   `json:"subscriber_type"`
}

// UnmarshalJSON reads the API's spellings: "integraion_id" (sic) or
// "integration_id", "objectids" or "object_ids", and an event given as a
// string or a list.
func (s *Subscriber) UnmarshalJSON(b []byte) error {
	var w struct {
		SubscriberID   string          `json:"subscriber_id"`
		Name           string          `json:"name"`
		ObjectIDs      []string        `json:"objectids"`
		ObjectIDs2     []string        `json:"object_ids"`
		Event          json.RawMessage `json:"event"`
		Filters        string          `json:"filters"`
		Integraion     string          `json:"integraion_id"`
		Integration    string          `json:"integration_id"`
		SubscriberType string          `json:"subscriber_type"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Subscriber{SubscriberID: w.SubscriberID, Name: w.Name, ObjectIDs: w.ObjectIDs, Filters: w.Filters,
		IntegrationID: w.Integration, SubscriberType: w.SubscriberType}
	if s.ObjectIDs == nil {
		s.ObjectIDs = w.ObjectIDs2
	}
	if s.IntegrationID == "" {
		s.IntegrationID = w.Integraion
	}
	if len(w.Event) > 0 && string(w.Event) != "null" {
		var one string
		if json.Unmarshal(w.Event, &one) == nil {
			s.Events = []string{one}
		} else if err := json.Unmarshal(w.Event, &s.Events); err != nil {
			return fmt.Errorf("event: %w", err)
		}
	}
	return nil
}
