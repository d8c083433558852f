package workspan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}

func required(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return invalid("%s is required", name)
	}
	return nil
}

func objectPath(objectID, leaf string) string {
	return "/app/v1/object/" + url.PathEscape(objectID) + "/" + leaf
}

// GetExternalID returns the external IDs stored on a WorkSpan object
// (GET /app/v1/object/{object_id}/external_id).
func (c *Client) GetExternalID(ctx context.Context, objectID string) (*ExternalIDs, error) {
	if err := required("object id", objectID); err != nil {
		return nil, err
	}
	var out ExternalIDs
	if err := c.doJSON(ctx, call{method: http.MethodGet, path: objectPath(objectID, "external_id")}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConnectExternalID stores an external system's ID on a WorkSpan object
// (PATCH /app/v1/object/{object_id}/external_id).
func (c *Client) ConnectExternalID(ctx context.Context, objectID string, in ExternalIDInput) (*ExternalIDResult, error) {
	if err := required("object id", objectID); err != nil {
		return nil, err
	}
	if err := required("external id", in.ExternalID); err != nil {
		return nil, err
	}
	cl, err := jsonCall(http.MethodPatch, objectPath(objectID, "external_id"), in)
	if err != nil {
		return nil, err
	}
	var out ExternalIDResult
	if err := c.doJSON(ctx, cl, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddAudit records integration status on a WorkSpan object
// (PATCH /app/v1/object/{object_id}/audit).
func (c *Client) AddAudit(ctx context.Context, objectID string, in AuditInput) (*AuditResult, error) {
	if err := required("object id", objectID); err != nil {
		return nil, err
	}
	if in.FieldName == "" {
		in.FieldName = AuditFieldIntegrationStatus
	}
	if in.FieldName != AuditFieldIntegrationStatus {
		return nil, invalid("field name must be %q", AuditFieldIntegrationStatus)
	}
	if !slices.Contains(AuditStatusCodes, in.StatusCode) {
		return nil, invalid("status code must be one of %s", strings.Join(AuditStatusCodes, ", "))
	}
	if err := required("message", in.Message); err != nil {
		return nil, err
	}
	cl, err := jsonCall(http.MethodPatch, objectPath(objectID, "audit"), in)
	if err != nil {
		return nil, err
	}
	var out AuditResult
	if err := c.doJSON(ctx, cl, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// bodyFormat checks the format of a raw bulk body (csv or json, default csv)
// and returns it with its content type.
func bodyFormat(p BulkParams, body []byte) (format, contentType string, err error) {
	if err := required("integration id", p.IntegrationID); err != nil {
		return "", "", err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", "", invalid("the data to load is empty")
	}
	switch strings.ToLower(p.Format) {
	case "", FormatCSV:
		return FormatCSV, ContentTypeCSV, nil
	case FormatJSON:
		return FormatJSON, ContentTypeJSON, nil
	}
	return "", "", invalid("format must be csv or json, not %q", p.Format)
}

func bulkQuery(p BulkParams, formatKey, format string) url.Values {
	q := url.Values{}
	q.Set("integration_id", p.IntegrationID)
	q.Set(formatKey, format)
	if format == FormatCSV && p.ColumnDelimiter != "" {
		q.Set("column_delimiter", p.ColumnDelimiter)
	}
	return q
}

// BulkLoad uploads data rows for an integration as a raw csv or json body
// (POST /bulk/v1/bulkload?integration_id=&data_format=&column_delimiter=).
// The upload is sent once: it carries no idempotency key, so the transport
// does not repeat it.
func (c *Client) BulkLoad(ctx context.Context, p BulkParams, body []byte) (*BulkExecution, error) {
	format, ct, err := bodyFormat(p, body)
	if err != nil {
		return nil, err
	}
	return c.bulk(ctx, call{method: http.MethodPost, path: "/bulk/v1/bulkload", query: bulkQuery(p, "data_format", format), body: body, contentType: ct})
}

// BulkLoadOpportunities uploads opportunities for an integration as a raw
// csv or json body (POST
// /bulk/v1/bulkload_opportunity?integration_id=&content_type=&column_delimiter=).
// The upload is sent once.
func (c *Client) BulkLoadOpportunities(ctx context.Context, p BulkParams, body []byte) (*BulkExecution, error) {
	format, ct, err := bodyFormat(p, body)
	if err != nil {
		return nil, err
	}
	return c.bulk(ctx, call{method: http.MethodPost, path: "/bulk/v1/bulkload_opportunity", query: bulkQuery(p, "content_type", format), body: body, contentType: ct})
}

// BulkLoadFile uploads a csv, json or xlsx file of data rows as
// multipart/form-data part "file" (POST /bulk/v1/bulkload?data_format=; the
// connector's /bulk/v1/bulkload/file is routed there). The upload is sent
// once.
func (c *Client) BulkLoadFile(ctx context.Context, p BulkParams, filename string, content []byte) (*BulkExecution, error) {
	cl, err := fileCall("/bulk/v1/bulkload", "data_format", p, filename, content, false)
	if err != nil {
		return nil, err
	}
	return c.bulk(ctx, cl)
}

// BulkLoadOpportunitiesFile uploads a csv, json or xlsx file of
// opportunities as multipart/form-data part "file" (POST
// /bulk/v1/bulkload_opportunity?content_type=&has_header_row=; the
// connector's /bulk/v1/bulkload_opportunity/file is routed there). The
// upload is sent once.
func (c *Client) BulkLoadOpportunitiesFile(ctx context.Context, p BulkParams, filename string, content []byte) (*BulkExecution, error) {
	cl, err := fileCall("/bulk/v1/bulkload_opportunity", "content_type", p, filename, content, true)
	if err != nil {
		return nil, err
	}
	return c.bulk(ctx, cl)
}

// fileFormat picks the format of an uploaded file: p.Format, else the file
// name's extension, else xlsx (the API's default).
func fileFormat(p BulkParams, filename string) (string, string, error) {
	f := strings.ToLower(p.Format)
	if f == "" {
		f = strings.TrimPrefix(strings.ToLower(path.Ext(filename)), ".")
		if f != FormatCSV && f != FormatJSON {
			f = FormatXLSX
		}
	}
	switch f {
	case FormatCSV:
		return f, ContentTypeCSV, nil
	case FormatJSON:
		return f, ContentTypeJSON, nil
	case FormatXLSX:
		return f, ContentTypeXLSX, nil
	}
	return "", "", invalid("format must be csv, json or xlsx, not %q", p.Format)
}

// fileCall builds a multipart upload in memory, so that it is replayable.
func fileCall(endpoint, formatKey string, p BulkParams, filename string, content []byte, headerRow bool) (call, error) {
	if err := required("integration id", p.IntegrationID); err != nil {
		return call{}, err
	}
	if len(content) == 0 {
		return call{}, invalid("the file is empty")
	}
	format, ct, err := fileFormat(p, filename)
	if err != nil {
		return call{}, err
	}
	name := cleanFilename(filename, format)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", multipart.FileContentDisposition("file", name))
	h.Set("Content-Type", ct)
	part, err := mw.CreatePart(h)
	if err == nil {
		_, err = part.Write(content)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return call{}, fmt.Errorf("workspan: build upload: %w", err)
	}
	q := bulkQuery(p, formatKey, format)
	if headerRow && p.HasHeaderRow != nil {
		q.Set("has_header_row", strconv.FormatBool(*p.HasHeaderRow))
	}
	return call{method: http.MethodPost, path: endpoint, query: q, body: buf.Bytes(), contentType: mw.FormDataContentType()}, nil
}

// cleanFilename keeps the base name of filename without control characters,
// or names the upload after its format.
func cleanFilename(filename, format string) string {
	name := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, filename)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." {
		name = "upload." + format
	}
	return name
}

// bulk sends one upload, which starts an execution upstream; it is never
// repeated here. Once the request may have reached WorkSpan, a failure
// leaves it unknown whether the execution exists (upstream.OutcomeUnknown):
// a lost or cut-off reply, a 5xx, and a 2xx whose body is not JSON or
// carries no execution_id (an *upstream.BodyError: WorkSpan acted, but the
// execution it started is not known).
func (c *Client) bulk(ctx context.Context, cl call) (*BulkExecution, error) {
	var out BulkExecution
	status, err := c.create(ctx, cl, &out)
	if err != nil {
		return nil, err
	}
	if out.ExecutionID == "" {
		return nil, noID(cl, status, "the bulk load reply has no execution_id")
	}
	return &out, nil
}

// create performs a call that creates something upstream and decodes its
// JSON reply into out; it returns the reply's status for noID.
func (c *Client) create(ctx context.Context, cl call, out any) (int, error) {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, upstream.Sent(cl.method, c.replies.DecodeJSON(resp, out))
}

// noID is the error of a 2xx reply to a create that does not name what it
// created: the create was carried out, its result is unknown.
func noID(cl call, status int, what string) error {
	return upstream.Sent(cl.method, &upstream.BodyError{Connector: connectorName, Status: status, Kind: upstream.BodyUnexpected, Err: errors.New(what)})
}

// BulkStatus returns the state of a bulk load execution
// (GET /bulk/v1/status/{integration_id}?execution_id=&include_errors=&max_errors=).
// maxErrors ≤ 0 leaves the API's default (5).
func (c *Client) BulkStatus(ctx context.Context, integrationID, executionID string, includeErrors bool, maxErrors int) (*BulkStatus, error) {
	if err := required("integration id", integrationID); err != nil {
		return nil, err
	}
	if err := required("execution id", executionID); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("execution_id", executionID)
	q.Set("include_errors", strconv.FormatBool(includeErrors))
	if includeErrors && maxErrors > 0 {
		q.Set("max_errors", strconv.Itoa(maxErrors))
	}
	var out BulkStatus
	if err := c.doJSON(ctx, call{method: http.MethodGet, path: "/bulk/v1/status/" + url.PathEscape(integrationID), query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListReports returns a page of the reports the application user can read
// (POST /report/v1/list). page starts at 0; size 0 means DefaultPageSize.
// Page on until EndOfList. Though a POST, it only reads: its errors are
// never marked as a sent write (upstream.SentError).
func (c *Client) ListReports(ctx context.Context, page, size int) (*ReportList, error) {
	if size == 0 {
		size = DefaultPageSize
	}
	if err := validatePage(Page{Number: page, Size: size}); err != nil {
		return nil, err
	}
	cl, err := jsonCall(http.MethodPost, "/report/v1/list", map[string]Page{"page": {Number: page, Size: size}})
	if err != nil {
		return nil, err
	}
	cl.read = true // a POST that changes nothing
	var out ReportList
	if err := c.doJSON(ctx, cl, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReadReport returns a page of a report's rows (POST /report/v1/{reportId}/data).
// A zero page size means DefaultPageSize and an empty filter join means AND;
// the query is then checked with ValidateQuery. Page on until EndOfList.
// Though a POST, it only reads, like ListReports.
func (c *Client) ReadReport(ctx context.Context, reportID int64, q ReportQuery) (*ReportData, error) {
	if reportID <= 0 {
		return nil, invalid("report id must be positive")
	}
	if q.Page.Size == 0 {
		q.Page.Size = DefaultPageSize
	}
	if q.Filters != nil {
		f := *q.Filters
		if f.Op == "" {
			f.Op = JoinAnd
		}
		if f.FieldFilters == nil {
			f.FieldFilters = []FieldFilter{}
		}
		q.Filters = &f
	}
	if err := ValidateQuery(q); err != nil {
		return nil, err
	}
	cl, err := jsonCall(http.MethodPost, "/report/v1/"+strconv.FormatInt(reportID, 10)+"/data", q)
	if err != nil {
		return nil, err
	}
	cl.read = true // a POST that changes nothing
	var out ReportData
	if err := c.doJSON(ctx, cl, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func validatePage(p Page) error {
	if p.Number < 0 {
		return invalid("page number must be 0 or more")
	}
	if p.Size < 1 || p.Size > MaxPageSize {
		return invalid("page size must be between 1 and %d", MaxPageSize)
	}
	return nil
}

// ValidateQuery checks a report query against the API definition: page
// number ≥ 0, page size 1..10000, join AND or OR, every field filter with a
// column id, a type of FieldTypes and an operator of FilterOps, and the
// operand count the operator needs (IS_EMPTY none, BETWEEN two, the others
// at least one). Errors wrap ErrInvalidArgument.
func ValidateQuery(q ReportQuery) error {
	if err := validatePage(q.Page); err != nil {
		return err
	}
	if q.Filters == nil {
		return nil
	}
	if q.Filters.Op != JoinAnd && q.Filters.Op != JoinOr {
		return invalid("filters op must be AND or OR, not %q", q.Filters.Op)
	}
	for i, ff := range q.Filters.FieldFilters {
		if strings.TrimSpace(ff.ColID) == "" {
			return invalid("field filter %d: colId is required", i)
		}
		if !slices.Contains(FieldTypes, ff.Type) {
			return invalid("field filter %d (%s): type must be one of %s, not %q", i, ff.ColID, strings.Join(FieldTypes, ", "), ff.Type)
		}
		f := ff.Filter
		if !slices.Contains(FilterOps, f.Op) {
			return invalid("field filter %d (%s): op must be one of %s, not %q", i, ff.ColID, strings.Join(FilterOps, ", "), f.Op)
		}
		if f.Value != nil && len(f.Values) > 0 {
			return invalid("field filter %d (%s): give value or values, not both", i, ff.ColID)
		}
		n := f.operands()
		switch f.Op {
		case OpIsEmpty:
			if n != 0 {
				return invalid("field filter %d (%s): IS_EMPTY takes no values", i, ff.ColID)
			}
		case OpBetween:
			if n != 2 {
				return invalid("field filter %d (%s): BETWEEN takes exactly 2 values, got %d", i, ff.ColID, n)
			}
		default:
			if n < 1 {
				return invalid("field filter %d (%s): %s takes at least 1 value", i, ff.ColID, f.Op)
			}
		}
	}
	return nil
}

// Integrations lists the integrations configured in WorkSpan
// (GET /event/v1/metadata/integration).
func (c *Client) Integrations(ctx context.Context) ([]Integration, error) {
	var out struct {
		Integrations []Integration `json:"integrations"`
	}
	if err := c.doJSON(ctx, call{method: http.MethodGet, path: "/event/v1/metadata/integration"}, &out); err != nil {
		return nil, err
	}
	return out.Integrations, nil
}

// ObjectSchema returns the schema of an integration's objects
// (GET /event/v1/metadata/integration/{integration_id}, the connector's
// GetObjectEventSchema). A reply without a schema object is an
// *upstream.BodyError.
func (c *Client) ObjectSchema(ctx context.Context, integrationID string) (*ObjectSchema, error) {
	if err := required("integration id", integrationID); err != nil {
		return nil, err
	}
	var out ObjectSchema
	if err := c.doJSON(ctx, call{method: http.MethodGet, path: "/event/v1/metadata/integration/" + url.PathEscape(integrationID)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Events lists the events a subscriber may ask for
// (GET /event/v1/metadata/event).
func (c *Client) Events(ctx context.Context) ([]Event, error) {
	var out struct {
		Events []Event `json:"events"`
	}
	if err := c.doJSON(ctx, call{method: http.MethodGet, path: "/event/v1/metadata/event"}, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

// Subscribe registers a webhook for WorkSpan events and returns its
// subscriber id (POST /event/v1/subscriber, the one subscribe endpoint the
// connector's three triggers are routed to). It is sent once: a failure
// after the request may have reached WorkSpan, a 2xx without a
// subscriber_id included, is an *upstream.SentError (see
// upstream.OutcomeUnknown) and the subscriber may exist.
func (c *Client) Subscribe(ctx context.Context, in SubscriberInput) (string, error) {
	switch ev := in.Event.(type) {
	case string:
		if strings.TrimSpace(ev) == "" {
			return "", invalid("event is required")
		}
	case []string:
		if len(ev) == 0 || slices.Contains(ev, "") {
			return "", invalid("events must be non-empty names")
		}
	default:
		return "", invalid("event must be a string or a list of strings")
	}
	if err := required("subscriber name", in.Name); err != nil {
		return "", err
	}
	if u, err := url.Parse(in.WebhookSettings.CallbackURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", invalid("callback url must be an absolute http(s) URL")
	}
	if in.SubscriberType == "" {
		in.SubscriberType = SubscriberTypeWebhook
	}
	cl, err := jsonCall(http.MethodPost, "/event/v1/subscriber", in)
	if err != nil {
		return "", err
	}
	var out struct {
		SubscriberID string `json:"subscriber_id"`
	}
	status, err := c.create(ctx, cl, &out)
	if err != nil {
		return "", err
	}
	if out.SubscriberID == "" {
		// Subscribed, but under an id that is not known.
		return "", noID(cl, status, "the subscribe reply has no subscriber_id")
	}
	return out.SubscriberID, nil
}

// GetSubscriber returns a registered subscriber
// (GET /event/v1/subscriber/{subscriber_id}).
func (c *Client) GetSubscriber(ctx context.Context, subscriberID string) (*Subscriber, error) {
	if err := required("subscriber id", subscriberID); err != nil {
		return nil, err
	}
	var out Subscriber
	if err := c.doJSON(ctx, call{method: http.MethodGet, path: "/event/v1/subscriber/" + url.PathEscape(subscriberID)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSubscriber removes a subscriber
// (DELETE /event/v1/subscriber/{subscriber_id}); the API replies 200
// without a body.
func (c *Client) DeleteSubscriber(ctx context.Context, subscriberID string) error {
	if err := required("subscriber id", subscriberID); err != nil {
		return err
	}
	return c.doJSON(ctx, call{method: http.MethodDelete, path: "/event/v1/subscriber/" + url.PathEscape(subscriberID)}, nil)
}
