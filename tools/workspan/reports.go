package workspan

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// ListReportsArgs are the arguments of workspan_list_reports.
type ListReportsArgs struct {
	Limit int `json:"limit,omitempty" jsonschema:"minimum=1,maximum=1000" jsonschema_description:"Maximum reports, default 100."`
}

// Report is a report as tools return it.
type Report struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Status      string `json:"status,omitempty"`
	ModifiedAt  string `json:"modified_at,omitempty"`
}

// ReportList is the result of workspan_list_reports.
type ReportList struct {
	Reports   []Report `json:"reports"`
	Truncated bool     `json:"truncated"`
}

// reportPageSize is how many reports one list call asks for.
const reportPageSize = 100

func (s *service) listReports(ctx context.Context, in ListReportsArgs) (ReportList, error) {
	limit := in.Limit
	if limit == 0 {
		limit = 100
	}
	out := ReportList{Reports: []Report{}}
	for page := 0; ; page++ {
		l, err := s.client.ListReports(ctx, page, reportPageSize)
		if err != nil {
			return ReportList{}, err
		}
		for _, r := range l.Results {
			if len(out.Reports) == limit {
				out.Truncated = true
				return out, nil
			}
			out.Reports = append(out.Reports, Report{ID: r.ID, Name: r.Name, Description: r.Description, Status: r.ReportStatus, ModifiedAt: r.ModifiedAt})
		}
		if l.EndOfList || len(l.Results) == 0 {
			return out, nil
		}
	}
}

// FieldFilter is one column condition.
type FieldFilter struct {
	ColID  string   `json:"col_id" jsonschema:"minLength=1"`
	Type   string   `json:"type" jsonschema:"enum=TEXT,enum=TEXT_REPEATED,enum=TEXT_PG_ARRAY,enum=BOOLEAN,enum=NUMBER,enum=DECIMAL,enum=DATE,enum=DATE_OFFSET,enum=DATE_TIME,enum=DATE_TIME_OFFSET,enum=CURRENCY"`
	Op     string   `json:"op" jsonschema:"enum=EQUAL_TO,enum=IS_EMPTY,enum=CONTAIN,enum=START_WITH,enum=END_WITH,enum=IN,enum=GREATER_THAN,enum=LESS_THAN,enum=GREATER_THAN_OR_EQUAL_TO,enum=LESS_THAN_OR_EQUAL_TO,enum=BETWEEN,enum=OFFSET"`
	Values []string `json:"values,omitempty" jsonschema_description:"Operands as text (numbers, dates YYYY-MM-DD, true/false); BETWEEN takes two, IS_EMPTY none."`
	Negate bool     `json:"negate,omitempty"`
}

// ReadReportArgs are the arguments of workspan_read_report_data.
type ReadReportArgs struct {
	ReportID int64         `json:"report_id" jsonschema:"minimum=1"`
	Match    string        `json:"match,omitempty" jsonschema:"enum=AND,enum=OR" jsonschema_description:"How filters combine, default AND."`
	Filters  []FieldFilter `json:"filters,omitempty"`
	PageSize int           `json:"page_size,omitempty" jsonschema:"minimum=1,maximum=10000" jsonschema_description:"Rows per upstream page, default 500."`
	Cursor   string        `json:"cursor,omitempty" jsonschema_description:"next_cursor of a truncated result."`
}

// ReportRows is the result of workspan_read_report_data.
type ReportRows struct {
	Rows []json.RawMessage `json:"rows"`
	// Truncated is true when more rows exist than this result holds.
	Truncated  bool   `json:"truncated"`
	NextCursor string `json:"next_cursor,omitempty"`
	Version    int64  `json:"version,omitempty"`
}

// reportCursor continues a report read: page number and rows already returned from it.
type reportCursor struct {
	Page int `json:"p"`
	Skip int `json:"s"`
}

func (s *service) readReport(ctx context.Context, in ReadReportArgs) (ReportRows, error) {
	q, err := reportQuery(in)
	if err != nil {
		return ReportRows{}, err
	}
	var cur reportCursor
	if in.Cursor != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(in.Cursor)
		if derr != nil || json.Unmarshal(raw, &cur) != nil || cur.Page < 0 || cur.Skip < 0 {
			return ReportRows{}, tools.InvalidArgument("cursor", "cursor is not one this tool returned")
		}
	}
	out := ReportRows{Rows: []json.RawMessage{}}
	size := 2 // brackets of the rows array
	for page := cur.Page; ; page++ {
		q.Page.Number = page
		data, err := s.client.ReadReport(ctx, in.ReportID, q)
		if err != nil {
			return ReportRows{}, tools.NamedNotFound(err, "report_id", fmt.Sprintf("report %d", in.ReportID), "workspan_list_reports lists the report ids.")
		}
		out.Version = data.Version
		skip := 0
		if page == cur.Page {
			skip = cur.Skip
		}
		for i := skip; i < len(data.Results); i++ {
			row, err := json.Marshal(data.Results[i])
			if err != nil {
				return ReportRows{}, err
			}
			if size+len(row)+1 > s.opts.MaxResultBytes && len(out.Rows) > 0 {
				return truncate(out, page, i), nil
			}
			size += len(row) + 1
			out.Rows = append(out.Rows, row)
		}
		if data.EndOfList || len(data.Results) == 0 {
			return out, nil
		}
	}
}

func truncate(out ReportRows, page, skip int) ReportRows {
	b, _ := json.Marshal(reportCursor{Page: page, Skip: skip})
	out.Truncated, out.NextCursor = true, base64.RawURLEncoding.EncodeToString(b)
	return out
}

// reportQuery builds the upstream query and validates it before any call.
func reportQuery(in ReadReportArgs) (ws.ReportQuery, error) {
	q := ws.ReportQuery{Page: ws.Page{Size: in.PageSize}}
	if q.Page.Size == 0 {
		q.Page.Size = 500
	}
	if len(in.Filters) > 0 {
		match := in.Match
		if match == "" {
			match = "AND"
		}
		q.Filters = &ws.FilterGroup{Op: match}
		for _, f := range in.Filters {
			vals := make([]any, 0, len(f.Values))
			for _, v := range f.Values {
				vals = append(vals, typedValue(f.Type, v))
			}
			q.Filters.FieldFilters = append(q.Filters.FieldFilters, ws.FieldFilter{
				ColID: f.ColID, Type: f.Type, Filter: ws.FilterSpec{Op: f.Op, Negate: f.Negate, Values: vals},
			})
		}
	}
	if err := ws.ValidateQuery(q); err != nil {
		return q, tools.InvalidArgument("filters", "%s", strings.TrimPrefix(err.Error(), "workspan: "))
	}
	return q, nil
}

// typedValue converts a textual operand to the JSON type its column type wants.
func typedValue(typ, v string) any {
	switch typ {
	case "NUMBER", "DECIMAL", "CURRENCY", "DATE_OFFSET", "DATE_TIME_OFFSET":
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	case "BOOLEAN":
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return v
}
