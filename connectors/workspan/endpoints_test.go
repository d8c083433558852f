package workspan

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

func query(t *testing.T, r recorded) url.Values {
	t.Helper()
	q, err := url.ParseQuery(r.RawQuery)
	require.NoError(t, err)
	return q
}

func TestGetExternalID(t *testing.T) {
	f := newFake(t, reply(200, `{"object_id":"WS-Project_a/b","external_ids":[{"external_id":"000owa24575","field_name":"sales_details.crm_opportunity_id"},{"external_id":"pc-1","field_name":"partner_center.referral_id"}]}`))
	got, err := f.client().GetExternalID(context.Background(), "WS-Project_a/b")
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Equal(t, "/app/v1/object/WS-Project_a%2Fb/external_id", r.RawPath)
	assert.Empty(t, r.Body)
	assert.Empty(t, r.Header.Get("Content-Type"))
	assert.Equal(t, &ExternalIDs{ObjectID: "WS-Project_a/b", ExternalIDs: []ExternalID{
		{FieldName: FieldCRMOpportunityID, ExternalID: "000owa24575"},
		{FieldName: FieldPartnerCenterReferralID, ExternalID: "pc-1"},
	}}, got)

	_, err = f.client().GetExternalID(context.Background(), " ")
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

func TestConnectExternalID(t *testing.T) {
	f := newFake(t, reply(200, `{"object_id":"WS-1","external_id":"X9","field_name":"sales_details.crm_opportunity_id"}`))
	c := f.client()
	got, err := c.ConnectExternalID(context.Background(), "WS-1", ExternalIDInput{ExternalID: "X9"})
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, http.MethodPatch, r.Method)
	assert.Equal(t, "/app/v1/object/WS-1/external_id", r.Path)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"external_id":"X9"}`, string(r.Body))
	assert.Equal(t, &ExternalIDResult{ExternalID: "X9", ObjectID: "WS-1", FieldName: FieldCRMOpportunityID}, got)

	_, err = c.ConnectExternalID(context.Background(), "WS-1", ExternalIDInput{ExternalID: "A1", FieldName: FieldExternalAccountID})
	require.NoError(t, err)
	assert.JSONEq(t, `{"external_id":"A1","field_name":"account_info.external_account_id"}`, string(f.last().Body))

	n := len(f.apiRequests())
	_, err = c.ConnectExternalID(context.Background(), "WS-1", ExternalIDInput{})
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Len(t, f.apiRequests(), n, "invalid input costs no call")
}

func TestAddAudit(t *testing.T) {
	f := newFake(t, reply(200, `{"object_id":"WS-1","field_name":"partner_center.integration_status","status_code":"CREATE_FAILED"}`))
	c := f.client()
	got, err := c.AddAudit(context.Background(), "WS-1", AuditInput{StatusCode: StatusCreateFailed, Message: "create failed", IntegrationID: "WS-Integration_1", ExternalID: "pc-9"})
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, http.MethodPatch, r.Method)
	assert.Equal(t, "/app/v1/object/WS-1/audit", r.Path)
	assert.JSONEq(t, `{"field_name":"partner_center.integration_status","status_code":"CREATE_FAILED","message":"create failed","integration_id":"WS-Integration_1","external_id":"pc-9"}`, string(r.Body))
	assert.Equal(t, &AuditResult{ObjectID: "WS-1", FieldName: AuditFieldIntegrationStatus, StatusCode: StatusCreateFailed}, got)

	n := len(f.apiRequests())
	for _, in := range []AuditInput{
		{StatusCode: "DONE", Message: "m"},
		{StatusCode: StatusLinked},
		{FieldName: "other.field", StatusCode: StatusLinked, Message: "m"},
	} {
		_, err := c.AddAudit(context.Background(), "WS-1", in)
		assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", in)
	}
	assert.Len(t, f.apiRequests(), n)
}

func TestBulkLoadBody(t *testing.T) {
	f := newFake(t, reply(200, `{"integration_id":"WS-Integration_1","execution_id":"a64690c2450","data_format":"csv","created_at":"2020-05-07T14:06:57.572Z"}`))
	c := f.client()
	csv := []byte("opportunity_id;amount\naw1;100\n")
	got, err := c.BulkLoad(context.Background(), BulkParams{IntegrationID: "WS-Integration_1", ColumnDelimiter: ";"}, csv)
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/bulk/v1/bulkload", r.Path)
	assert.Equal(t, url.Values{"integration_id": {"WS-Integration_1"}, "data_format": {"csv"}, "column_delimiter": {";"}}, query(t, r))
	assert.Equal(t, "text/csv", r.Header.Get("Content-Type"))
	assert.Equal(t, csv, r.Body)
	assert.Empty(t, r.Header.Get("Idempotency-Key"))
	assert.Empty(t, r.Header.Get("MS-RequestId"))
	assert.Equal(t, &BulkExecution{IntegrationID: "WS-Integration_1", ExecutionID: "a64690c2450", DataFormat: "csv", CreatedAt: "2020-05-07T14:06:57.572Z"}, got)

	js := []byte(`[{"opportunity_id":"aw1"}]`)
	_, err = c.BulkLoad(context.Background(), BulkParams{IntegrationID: "I", Format: "json", ColumnDelimiter: ";"}, js)
	require.NoError(t, err)
	r = f.last()
	assert.Equal(t, url.Values{"integration_id": {"I"}, "data_format": {"json"}}, query(t, r), "no delimiter for json")
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, js, r.Body)
}

func TestBulkLoadOpportunitiesBody(t *testing.T) {
	f := newFake(t, reply(200, `{"integration_id":"I","execution_id":"e1","created_at":"2020-05-07T14:06:57Z"}`))
	c := f.client()
	got, err := c.BulkLoadOpportunities(context.Background(), BulkParams{IntegrationID: "I"}, []byte("a,b\n1,2\n"))
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, "/bulk/v1/bulkload_opportunity", r.Path)
	assert.Equal(t, url.Values{"integration_id": {"I"}, "content_type": {"csv"}}, query(t, r))
	assert.Equal(t, "text/csv", r.Header.Get("Content-Type"))
	assert.Equal(t, "e1", got.ExecutionID)

	_, err = c.BulkLoadOpportunities(context.Background(), BulkParams{IntegrationID: "I", Format: "json"}, []byte(`[]`))
	require.NoError(t, err)
	assert.Equal(t, url.Values{"integration_id": {"I"}, "content_type": {"json"}}, query(t, f.last()))
	assert.Equal(t, "application/json", f.last().Header.Get("Content-Type"))
}

func TestBulkLoadValidation(t *testing.T) {
	f := newFake(t, reply(200, `{"execution_id":"e"}`))
	c := f.client()
	ctx := context.Background()
	_, err := c.BulkLoad(ctx, BulkParams{}, []byte("a"))
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = c.BulkLoad(ctx, BulkParams{IntegrationID: "I", Format: "xlsx"}, []byte("a"))
	assert.ErrorIs(t, err, ErrInvalidArgument, "xlsx only as a file")
	_, err = c.BulkLoadOpportunities(ctx, BulkParams{IntegrationID: "I"}, []byte("  \n"))
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = c.BulkLoadFile(ctx, BulkParams{IntegrationID: "I", Format: "xml"}, "a.xml", []byte("x"))
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = c.BulkLoadOpportunitiesFile(ctx, BulkParams{IntegrationID: "I"}, "a.csv", nil)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Empty(t, f.apiRequests())
}

// A 2xx without an execution_id: the execution was started, under an id
// that is not known (see TestWritesThatReachedWorkSpanAreMarked).
func TestBulkLoadReplyWithoutExecutionID(t *testing.T) {
	f := newFake(t, reply(200, `{}`))
	_, err := f.client().BulkLoad(context.Background(), BulkParams{IntegrationID: "I"}, []byte("a\n1"))
	var be *upstream.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, http.StatusOK, be.Status)
	assert.Equal(t, upstream.BodyUnexpected, be.Kind)
	assert.Contains(t, err.Error(), "execution_id")
	assert.True(t, upstream.OutcomeUnknown(err), "%v", err)
}

// filePart parses a multipart upload and returns its only part.
func filePart(t *testing.T, r recorded) (name, filename, contentType string, content []byte) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/form-data", mt)
	mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
	p, err := mr.NextPart()
	require.NoError(t, err)
	content, err = io.ReadAll(p)
	require.NoError(t, err)
	name, filename, contentType = p.FormName(), p.FileName(), p.Header.Get("Content-Type")
	_, err = mr.NextPart()
	require.ErrorIs(t, err, io.EOF, "exactly one part")
	return name, filename, contentType, content
}

func TestBulkLoadFile(t *testing.T) {
	f := newFake(t, reply(200, `{"integration_id":"I","execution_id":"e2","data_format":"xlsx","created_at":"2020-05-07T14:06:57Z"}`))
	c := f.client()
	xlsx := []byte("PK\x03\x04binary\x00data")
	got, err := c.BulkLoadFile(context.Background(), BulkParams{IntegrationID: "I"}, "dir/Deals Q1.xlsx", xlsx)
	require.NoError(t, err)
	assert.Equal(t, "e2", got.ExecutionID)
	r := f.last()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/bulk/v1/bulkload", r.Path)
	assert.Equal(t, url.Values{"integration_id": {"I"}, "data_format": {"xlsx"}}, query(t, r))
	name, fn, ct, content := filePart(t, r)
	assert.Equal(t, "file", name)
	assert.Equal(t, "Deals Q1.xlsx", fn)
	assert.Equal(t, ContentTypeXLSX, ct)
	assert.Equal(t, xlsx, content)
	assert.Equal(t, int64(len(r.Body)), mustInt(t, r.Header.Get("Content-Length")))

	// Format from the extension; an explicit format wins.
	_, err = c.BulkLoadFile(context.Background(), BulkParams{IntegrationID: "I", ColumnDelimiter: "|"}, "rows.CSV", []byte("a|b\n"))
	require.NoError(t, err)
	r = f.last()
	assert.Equal(t, url.Values{"integration_id": {"I"}, "data_format": {"csv"}, "column_delimiter": {"|"}}, query(t, r))
	_, _, ct, _ = filePart(t, r)
	assert.Equal(t, "text/csv", ct)

	_, err = c.BulkLoadFile(context.Background(), BulkParams{IntegrationID: "I", Format: "json"}, "", []byte(`[{}]`))
	require.NoError(t, err)
	r = f.last()
	assert.Equal(t, "json", query(t, r).Get("data_format"))
	_, fn, ct, _ = filePart(t, r)
	assert.Equal(t, "upload.json", fn)
	assert.Equal(t, "application/json", ct)
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, json.Unmarshal([]byte(s), &n))
	return n
}

func TestBulkLoadOpportunitiesFile(t *testing.T) {
	f := newFake(t, reply(200, `{"integration_id":"I","execution_id":"e3","created_at":"2020-05-07T14:06:57Z"}`))
	c := f.client()
	no := false
	_, err := c.BulkLoadOpportunitiesFile(context.Background(), BulkParams{IntegrationID: "I", HasHeaderRow: &no}, "opps.xlsx", []byte("PK.."))
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, "/bulk/v1/bulkload_opportunity", r.Path)
	assert.Equal(t, url.Values{"integration_id": {"I"}, "content_type": {"xlsx"}, "has_header_row": {"false"}}, query(t, r))
	name, fn, ct, content := filePart(t, r)
	assert.Equal(t, "file", name)
	assert.Equal(t, "opps.xlsx", fn)
	assert.Equal(t, ContentTypeXLSX, ct)
	assert.Equal(t, []byte("PK.."), content)

	_, err = c.BulkLoadOpportunitiesFile(context.Background(), BulkParams{IntegrationID: "I", Format: "csv"}, "opps.txt", []byte("a,b\n"))
	require.NoError(t, err)
	assert.Equal(t, url.Values{"integration_id": {"I"}, "content_type": {"csv"}}, query(t, f.last()), "has_header_row left to the API's default")
}

func TestBulkStatus(t *testing.T) {
	body := `{"integration_id":"WS-Integration_agpzfndzLW","execution_id":"a64690c2450","status":"completed","input_count":200,"error_count":3,"succcess_count":197,"skip_count":0,
	"started_at":"2020-05-07T14:06:57.572Z","completed_at":"2020-05-07T14:07:10.572Z","include_errors":true,
	"errors":[{"id":"aw00079","message":"invalid value in field 'close_date'","data_row":{"opportunity_id":"aw00079","close_date":"20-jan-2020","amount":250000}},
	{"id":17,"message":"Missing value of key field","data_row":"17,,2020-10-20"}]}`
	f := newFake(t, reply(200, body))
	c := f.client()
	got, err := c.BulkStatus(context.Background(), "WS-Integration_agpzfndzLW", "a64690c2450", true, 10)
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Equal(t, "/bulk/v1/status/WS-Integration_agpzfndzLW", r.Path)
	assert.Equal(t, url.Values{"execution_id": {"a64690c2450"}, "include_errors": {"true"}, "max_errors": {"10"}}, query(t, r))

	assert.Equal(t, BulkCompleted, got.Status)
	assert.Equal(t, 197, got.SuccessCount)
	assert.Equal(t, 3, got.ErrorCount)
	assert.Equal(t, 200, got.InputCount)
	assert.Equal(t, 0, got.SkipCount)
	assert.Equal(t, "2020-05-07T14:07:10.572Z", got.CompletedAt)
	assert.True(t, got.IncludeErrors)
	require.Len(t, got.Errors, 2)
	assert.Equal(t, "aw00079", got.Errors[0].ID)
	assert.Equal(t, map[string]any{"opportunity_id": "aw00079", "close_date": "20-jan-2020", "amount": json.Number("250000")}, got.Errors[0].DataRow)
	assert.Equal(t, "17", got.Errors[1].ID)
	assert.Equal(t, "17,,2020-10-20", got.Errors[1].DataRow)

	// Encoding keeps the API's spelling.
	out, err := json.Marshal(got)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"succcess_count":197`)

	_, err = c.BulkStatus(context.Background(), "I", "E", false, 10)
	require.NoError(t, err)
	assert.Equal(t, url.Values{"execution_id": {"E"}, "include_errors": {"false"}}, query(t, f.last()))

	_, err = c.BulkStatus(context.Background(), "I", "", true, 0)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

func TestBulkStatusCountSpellings(t *testing.T) {
	var s BulkStatus
	require.NoError(t, json.Unmarshal([]byte(`{"status":"running","success_count":5,"error_count":"2","input_count":7.0}`), &s))
	assert.Equal(t, BulkStatus{Status: BulkRunning, SuccessCount: 5, ErrorCount: 2, InputCount: 7}, s)
	require.NoError(t, json.Unmarshal([]byte(`{"succcess_count":4,"success_count":9}`), &s))
	assert.Equal(t, 4, s.SuccessCount, "the API's spelling wins")
}

func TestListReports(t *testing.T) {
	f := newFake(t, reply(200, `{"endOfList":true,"results":[{"id":9007199254740993,"name":"Pipeline","description":"d","createdAt":"2024-01-02T03:04:05Z","createdBy":{"id":"u1","name":"Ann"},"modifiedAt":"2024-02-02T03:04:05Z","modifiedBy":{"id":"u2"},"reportStatus":"PUBLISHED"}]}`))
	c := f.client()
	got, err := c.ListReports(context.Background(), 2, 50)
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/report/v1/list", r.Path)
	assert.JSONEq(t, `{"page":{"number":2,"size":50}}`, string(r.Body))
	assert.True(t, got.EndOfList)
	require.Len(t, got.Results, 1)
	assert.Equal(t, ReportSummary{ID: 9007199254740993, Name: "Pipeline", Description: "d", CreatedAt: "2024-01-02T03:04:05Z",
		CreatedBy: &Person{ID: "u1", Name: "Ann"}, ModifiedAt: "2024-02-02T03:04:05Z", ModifiedBy: &Person{ID: "u2"}, ReportStatus: "PUBLISHED"}, got.Results[0])

	_, err = c.ListReports(context.Background(), 0, 0)
	require.NoError(t, err)
	assert.JSONEq(t, `{"page":{"number":0,"size":500}}`, string(f.last().Body))

	n := len(f.apiRequests())
	_, err = c.ListReports(context.Background(), -1, 10)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = c.ListReports(context.Background(), 0, 10001)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Len(t, f.apiRequests(), n)
}

func TestReadReport(t *testing.T) {
	f := newFake(t, reply(200, `{"endOfList":false,"results":[{"name":"Deal A","amount":12345678901234567,"won":true}],"version":42}`))
	c := f.client()
	q := ReportQuery{
		Filters: &FilterGroup{Op: JoinOr, FieldFilters: []FieldFilter{
			{ColID: "stage", Type: TypeText, Filter: FilterSpec{Op: OpIn, Values: []any{"won", "lost"}}},
			{ColID: "amount", Type: TypeCurrency, Filter: FilterSpec{Op: OpBetween, Values: []any{1000, 5000}}},
			{ColID: "partner", Type: TypeText, Filter: FilterSpec{Negate: true, Op: OpIsEmpty}},
			{ColID: "closed", Type: TypeBoolean, Filter: FilterSpec{Op: OpEqualTo, Value: false}},
		}},
		Page: Page{Number: 1, Size: 100},
	}
	got, err := c.ReadReport(context.Background(), 77, q)
	require.NoError(t, err)
	r := f.last()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/report/v1/77/data", r.Path)
	assert.JSONEq(t, `{"filters":{"op":"OR","fieldFilters":[
		{"colId":"stage","type":"TEXT","filter":{"negate":false,"op":"IN","values":["won","lost"]}},
		{"colId":"amount","type":"CURRENCY","filter":{"negate":false,"op":"BETWEEN","values":[1000,5000]}},
		{"colId":"partner","type":"TEXT","filter":{"negate":true,"op":"IS_EMPTY"}},
		{"colId":"closed","type":"BOOLEAN","filter":{"negate":false,"op":"EQUAL_TO","value":false}}]},
		"page":{"number":1,"size":100}}`, string(r.Body))
	assert.False(t, got.EndOfList)
	assert.Equal(t, int64(42), got.Version)
	require.Len(t, got.Results, 1)
	assert.Equal(t, json.Number("12345678901234567"), got.Results[0]["amount"])
	assert.Equal(t, true, got.Results[0]["won"])

	// Defaults: page size 500, join AND; no filters at all is fine.
	_, err = c.ReadReport(context.Background(), 77, ReportQuery{Filters: &FilterGroup{FieldFilters: []FieldFilter{{ColID: "a", Type: TypeNumber, Filter: FilterSpec{Op: OpGreaterThan, Value: 3}}}}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"filters":{"op":"AND","fieldFilters":[{"colId":"a","type":"NUMBER","filter":{"negate":false,"op":"GREATER_THAN","value":3}}]},"page":{"number":0,"size":500}}`, string(f.last().Body))
	_, err = c.ReadReport(context.Background(), 77, ReportQuery{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"page":{"number":0,"size":500}}`, string(f.last().Body))

	n := len(f.apiRequests())
	_, err = c.ReadReport(context.Background(), 0, ReportQuery{})
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = c.ReadReport(context.Background(), 77, ReportQuery{Filters: &FilterGroup{FieldFilters: []FieldFilter{{ColID: "a", Type: "STRING", Filter: FilterSpec{Op: OpEqualTo, Value: 1}}}}})
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Len(t, f.apiRequests(), n)
}

func TestValidateQuery(t *testing.T) {
	page := Page{Number: 0, Size: 500}
	ff := func(typ, op string, values ...any) *FilterGroup {
		return &FilterGroup{Op: JoinAnd, FieldFilters: []FieldFilter{{ColID: "c", Type: typ, Filter: FilterSpec{Op: op, Values: values}}}}
	}
	cases := []struct {
		name string
		q    ReportQuery
		ok   bool
	}{
		{"no filters", ReportQuery{Page: page}, true},
		{"size 1", ReportQuery{Page: Page{Size: 1}}, true},
		{"size max", ReportQuery{Page: Page{Number: 3, Size: 10000}}, true},
		{"size 0", ReportQuery{Page: Page{Size: 0}}, false},
		{"size too big", ReportQuery{Page: Page{Size: 10001}}, false},
		{"negative page", ReportQuery{Page: Page{Number: -1, Size: 10}}, false},
		{"empty filter list", ReportQuery{Page: page, Filters: &FilterGroup{Op: JoinOr}}, true},
		{"bad join", ReportQuery{Page: page, Filters: &FilterGroup{Op: "XOR"}}, false},
		{"missing join", ReportQuery{Page: page, Filters: &FilterGroup{}}, false},
		{"equal", ReportQuery{Page: page, Filters: ff(TypeText, OpEqualTo, "x")}, true},
		{"equal without value", ReportQuery{Page: page, Filters: ff(TypeText, OpEqualTo)}, false},
		{"in many", ReportQuery{Page: page, Filters: ff(TypeTextRepeated, OpIn, "a", "b", "c")}, true},
		{"between two", ReportQuery{Page: page, Filters: ff(TypeDate, OpBetween, "2024-01-01", "2024-12-31")}, true},
		{"between one", ReportQuery{Page: page, Filters: ff(TypeDate, OpBetween, "2024-01-01")}, false},
		{"between three", ReportQuery{Page: page, Filters: ff(TypeDecimal, OpBetween, 1, 2, 3)}, false},
		{"is empty", ReportQuery{Page: page, Filters: ff(TypeTextPGArray, OpIsEmpty)}, true},
		{"is empty with value", ReportQuery{Page: page, Filters: ff(TypeText, OpIsEmpty, "x")}, false},
		{"offset", ReportQuery{Page: page, Filters: ff(TypeDateOffset, OpOffset, -30)}, true},
		{"every type", ReportQuery{Page: page, Filters: &FilterGroup{Op: JoinAnd, FieldFilters: func() []FieldFilter {
			var out []FieldFilter
			for _, typ := range FieldTypes {
				out = append(out, FieldFilter{ColID: typ, Type: typ, Filter: FilterSpec{Op: OpEqualTo, Value: "v"}})
			}
			return out
		}()}}, true},
		{"every op", ReportQuery{Page: page, Filters: &FilterGroup{Op: JoinAnd, FieldFilters: func() []FieldFilter {
			var out []FieldFilter
			for _, op := range FilterOps {
				f := FilterSpec{Op: op, Values: []any{1}}
				switch op {
				case OpIsEmpty:
					f.Values = nil
				case OpBetween:
					f.Values = []any{1, 2}
				}
				out = append(out, FieldFilter{ColID: op, Type: TypeNumber, Filter: f})
			}
			return out
		}()}}, true},
		{"unknown type", ReportQuery{Page: page, Filters: ff("STRING", OpEqualTo, "x")}, false},
		{"lower-case type", ReportQuery{Page: page, Filters: ff("text", OpEqualTo, "x")}, false},
		{"unknown op", ReportQuery{Page: page, Filters: ff(TypeText, "LIKE", "x")}, false},
		{"missing col", ReportQuery{Page: page, Filters: &FilterGroup{Op: JoinAnd, FieldFilters: []FieldFilter{{Type: TypeText, Filter: FilterSpec{Op: OpEqualTo, Value: "x"}}}}}, false},
		{"value and values", ReportQuery{Page: page, Filters: &FilterGroup{Op: JoinAnd, FieldFilters: []FieldFilter{{ColID: "c", Type: TypeText, Filter: FilterSpec{Op: OpIn, Value: "x", Values: []any{"y"}}}}}}, false},
		{"single value counts", ReportQuery{Page: page, Filters: &FilterGroup{Op: JoinAnd, FieldFilters: []FieldFilter{{ColID: "c", Type: TypeBoolean, Filter: FilterSpec{Op: OpEqualTo, Value: false}}}}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateQuery(tc.q)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidArgument)
			}
		})
	}
}

func TestIntegrationsAndEvents(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/event/v1/metadata/integration":
			writeJSON(w, 200, `{"integrations":[{"integration_id":"WS-Integration_1","integration_type":"object_event","description":"CRM sync","name":"CRM"}]}`)
		case "/event/v1/metadata/event":
			writeJSON(w, 200, `{"events":[{"name":"collab.created","description":"Collaboration created"}]}`)
		default:
			http.NotFound(w, r)
		}
	})
	c := f.client()
	ints, err := c.Integrations(context.Background())
	require.NoError(t, err)
	assert.Equal(t, http.MethodGet, f.last().Method)
	assert.Equal(t, []Integration{{IntegrationID: "WS-Integration_1", IntegrationType: "object_event", Description: "CRM sync", Name: "CRM"}}, ints)
	evs, err := c.Events(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "/event/v1/metadata/event", f.last().Path)
	assert.Equal(t, []Event{{Name: "collab.created", Description: "Collaboration created"}}, evs)
}

func TestSubscribe(t *testing.T) {
	f := newFake(t, reply(200, `{"subscriber_id":"sub-1"}`))
	c := f.client()
	id, err := c.Subscribe(context.Background(), SubscriberInput{
		IntegrationID:   "WS-Integration_1",
		Event:           []string{EventObjectCreate, EventObjectStageChange},
		Name:            "flow",
		WebhookSettings: WebhookSettings{CallbackURL: "https://example.test/hook/abc"},
		ObjectIDs:       []string{"WS-1"},
		Filters:         `(stage in [ "closed", "won" ])`,
	})
	require.NoError(t, err)
	assert.Equal(t, "sub-1", id)
	r := f.last()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/event/v1/subscriber", r.Path)
	assert.JSONEq(t, `{"integration_id":"WS-Integration_1","event":["object.create","object.stage_change"],"name":"flow","subscriber_type":"webhook",
		"webhook_settings":{"callback_url":"https://example.test/hook/abc"},"object_ids":["WS-1"],"filters":"(stage in [ \"closed\", \"won\" ])"}`, string(r.Body))

	_, err = c.Subscribe(context.Background(), SubscriberInput{Event: "collab.created", Name: "n", WebhookSettings: WebhookSettings{CallbackURL: "http://localhost:8080/cb"}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"event":"collab.created","name":"n","subscriber_type":"webhook","webhook_settings":{"callback_url":"http://localhost:8080/cb"}}`, string(f.last().Body))

	n := len(f.apiRequests())
	ok := WebhookSettings{CallbackURL: "https://x.test/cb"}
	for _, in := range []SubscriberInput{
		{Event: "", Name: "n", WebhookSettings: ok},
		{Event: []string{}, Name: "n", WebhookSettings: ok},
		{Event: 3, Name: "n", WebhookSettings: ok},
		{Event: "e", WebhookSettings: ok},
		{Event: "e", Name: "n"},
		{Event: "e", Name: "n", WebhookSettings: WebhookSettings{CallbackURL: "/relative"}},
	} {
		_, err := c.Subscribe(context.Background(), in)
		assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", in)
	}
	assert.Len(t, f.apiRequests(), n)
}

// A 2xx without a subscriber_id: subscribed, under an id that is not known.
func TestSubscribeWithoutID(t *testing.T) {
	f := newFake(t, reply(200, `{}`))
	_, err := f.client().Subscribe(context.Background(), SubscriberInput{Event: "e", Name: "n", WebhookSettings: WebhookSettings{CallbackURL: "https://x.test/cb"}})
	var be *upstream.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, upstream.BodyUnexpected, be.Kind)
	assert.Contains(t, err.Error(), "subscriber_id")
	assert.True(t, upstream.OutcomeUnknown(err), "%v", err)
}

func TestGetAndDeleteSubscriber(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, `{"subscriber_id":"sub 1","name":"flow","objectids":["WS-1"],"event":["object.all"],"filters":"","integraion_id":"WS-Integration_1","subscriber_type":"webhook"}`)
		case http.MethodDelete:
			w.WriteHeader(200)
		}
	})
	c := f.client()
	s, err := c.GetSubscriber(context.Background(), "sub 1")
	require.NoError(t, err)
	assert.Equal(t, "/event/v1/subscriber/sub%201", f.last().RawPath)
	assert.Equal(t, &Subscriber{SubscriberID: "sub 1", Name: "flow", ObjectIDs: []string{"WS-1"}, Events: []string{EventObjectAll}, IntegrationID: "WS-Integration_1", SubscriberType: "webhook"}, s)

	require.NoError(t, c.DeleteSubscriber(context.Background(), "sub 1"))
	r := f.last()
	assert.Equal(t, http.MethodDelete, r.Method)
	assert.Equal(t, "/event/v1/subscriber/sub%201", r.RawPath)

	assert.ErrorIs(t, c.DeleteSubscriber(context.Background(), ""), ErrInvalidArgument)
}

func TestSubscriberDecodingVariants(t *testing.T) {
	var s Subscriber
	require.NoError(t, json.Unmarshal([]byte(`{"subscriber_id":"a","event":"collab.created","integration_id":"I","object_ids":["x"]}`), &s))
	assert.Equal(t, Subscriber{SubscriberID: "a", Events: []string{"collab.created"}, IntegrationID: "I", ObjectIDs: []string{"x"}}, s)
}

func TestErrorBodies(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantMsg    string
		wantDetail string
		wantRetry  time.Duration
	}{
		{"message", 404, nil, `{"message":"Object not found"}`, "Object not found", "", 0},
		{"message with code", 400, nil, `{"message":"bad field","code":"E42"}`, "bad field", "code E42", 0},
		{"oauth style", 400, nil, `{"error":"invalid_request","error_description":"execution_id is required"}`, "execution_id is required", "invalid_request", 0},
		{"error string only", 403, nil, `{"error":"forbidden"}`, "forbidden", "", 0},
		{"error object", 409, nil, `{"error":{"message":"already linked"}}`, "already linked", "", 0},
		{"errors list", 400, nil, `{"errors":[{"message":"integration_id is invalid"},{"field":"data_format","message":"unsupported"}]}`, "integration_id is invalid", "data_format: unsupported", 0},
		{"plain text", 502, nil, "upstream   connect error", "Bad Gateway", "upstream connect error", 0},
		{"html", 500, nil, "<html><body>oops</body></html>", "Internal Server Error", "", 0},
		{"empty", 404, nil, "", "Not Found", "", 0},
		{"json without known fields", 400, nil, `{"foo":1}`, "Bad Request", "", 0},
		{"429 retry-after", 429, http.Header{"Retry-After": {"7"}}, `{"message":"slow down"}`, "slow down", "", 7 * time.Second},
		{"503 retry-after", 503, http.Header{"Retry-After": {"3"}}, ``, "Service Unavailable", "", 3 * time.Second},
		// Without a Date the client's clock dates an HTTP-date Retry-After.
		{"429 retry-after date", 429, http.Header{"Retry-After": {testStart.Add(42 * time.Second).Format(http.TimeFormat)}, "Date": nil}, `{"message":"slow down"}`, "slow down", "", 42 * time.Second},
		{"secret echoed", 400, nil, `{"message":"client ` + testSecret + ` rejected"}`, "client [redacted] rejected", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := f.client(func(cfg *Config) { cfg.Clock = clock.NewFake(testStart) }).GetExternalID(context.Background(), "WS-1")
			var ue *upstream.Error
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, "workspan", ue.Connector)
			assert.Equal(t, tc.status, ue.Status)
			assert.Equal(t, tc.wantMsg, ue.Message)
			assert.Equal(t, tc.wantDetail, ue.Detail)
			assert.Equal(t, tc.wantRetry, ue.RetryAfter)
			assert.NotContains(t, err.Error(), testSecret)
		})
	}
}

func TestMalformedSuccessBody(t *testing.T) {
	f := newFake(t, reply(200, `{"object_id":`))
	_, err := f.client().GetExternalID(context.Background(), "WS-1")
	// issue finding 8: a 2xx with an unreadable body is its own error type.
	var be *upstream.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, http.StatusOK, be.Status)
	assert.Equal(t, upstream.BodyMalformed, be.Kind)
}

// budgetedClient returns an API client that sends through the shared
// transport chain: retries over a throttle budget.
func budgetedClient(f *fakeAPI) *Client {
	return f.client(func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: httpx.Chain(throttle.New("ws", throttle.Config{}), http.DefaultTransport)}
	})
}

func TestUploadNotRetriedThroughRetryTransport(t *testing.T) {
	uploads := map[string]func(*Client) error{
		"BulkLoad": func(c *Client) error {
			_, err := c.BulkLoad(context.Background(), BulkParams{IntegrationID: "I"}, []byte("a\n1\n"))
			return err
		},
		"BulkLoadOpportunities": func(c *Client) error {
			_, err := c.BulkLoadOpportunities(context.Background(), BulkParams{IntegrationID: "I"}, []byte("a\n1\n"))
			return err
		},
		"BulkLoadFile": func(c *Client) error {
			_, err := c.BulkLoadFile(context.Background(), BulkParams{IntegrationID: "I"}, "a.xlsx", []byte("PK"))
			return err
		},
		"BulkLoadOpportunitiesFile": func(c *Client) error {
			_, err := c.BulkLoadOpportunitiesFile(context.Background(), BulkParams{IntegrationID: "I"}, "a.csv", []byte("a\n"))
			return err
		},
	}
	for name, upload := range uploads {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "0")
				writeJSON(w, 503, `{"message":"busy"}`)
			})
			err := upload(budgetedClient(f))
			var ue *upstream.Error
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, 503, ue.Status)
			assert.Equal(t, "busy", ue.Message)
			assert.Len(t, f.apiRequests(), 1, "an upload reaches the server exactly once")
		})
	}
}

func TestReadRetriedThroughRetryTransport(t *testing.T) {
	// The contrast to the upload test: the same chain does repeat a read.
	var n atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			writeJSON(w, 503, `{"message":"busy"}`)
			return
		}
		writeJSON(w, 200, `{"status":"running","execution_id":"E"}`)
	})
	got, err := budgetedClient(f).BulkStatus(context.Background(), "I", "E", true, 0)
	require.NoError(t, err)
	assert.Equal(t, BulkRunning, got.Status)
	assert.Len(t, f.apiRequests(), 2)
}
