package sandbox

// # Reports
//
// POST /report/v1/list takes an optional body {page: {number, size}} (number ≥ 0, default 0;
// size 1..10000, default 500) and answers {endOfList, results: [{id, name, description,
// createdAt, createdBy {id, name}, modifiedAt, modifiedBy {id, name}, reportStatus}]} with the
// twelve seeded reports ordered by id; page number n holds reports n*size .. n*size+size-1, and
// endOfList is true on the page holding the last one (and on any page past it, which is empty).
//
// POST /report/v1/{reportId}/data reads a report. reportId must be an integer (400) of a known
// report (404). The body {filters, page} is optional. Every report is a view of the sandbox's
// opportunities (so objects created by bulk loads appear in it), one row per opportunity,
// ordered by creation time then id, with these columns (the type a filter on it may use):
//
//	opportunity_id, name, stage, currency, partner, country,
//	account_name, crm_opportunity_id, partner_center_status   TEXT
//	amount                                                    CURRENCY, NUMBER or DECIMAL
//	probability                                               NUMBER, DECIMAL or CURRENCY
//	close_date                                                DATE or DATE_TIME (YYYY-MM-DD)
//	created_at, modified_at                                   DATE_TIME or DATE (RFC 3339, UTC)
//	is_closed                                                 BOOLEAN
//
// A missing value is null. Some reports only hold a subset (open pipeline, closed won, …).
// The reply is {endOfList, results, version}: version increases whenever an opportunity
// changes. Paging is as for the list.
//
// filters is {op: AND (default) | OR, fieldFilters: [{colId, type, filter: {negate, op,
// values}}]}. Filter ops:
//
//	EQUAL_TO                   1 value; any type (TEXT compares case-insensitively)
//	IN                         1 or more values; equal to any of them
//	IS_EMPTY                   no value needed; the cell is null or ""
//	CONTAIN, START_WITH,
//	END_WITH                   1 value; TEXT only; case-insensitive
//	GREATER_THAN, LESS_THAN,
//	GREATER_THAN_OR_EQUAL_TO,
//	LESS_THAN_OR_EQUAL_TO      1 value; numbers and dates
//	BETWEEN                    2 values (low, high), inclusive; numbers and dates
//
// Values may be JSON strings, numbers or booleans and are read per the filter type: numbers
// as decimals, DATE as YYYY-MM-DD (or an RFC 3339 date-time, of which the UTC date counts),
// DATE_TIME as RFC 3339 (or YYYY-MM-DD, meaning midnight UTC), BOOLEAN as true/false. A DATE
// filter compares calendar days, DATE_TIME instants. An empty cell never satisfies an op other
// than IS_EMPTY. negate inverts the result of its filter. Everything else is 400: an unknown
// column, type or op, the types TEXT_REPEATED, TEXT_PG_ARRAY, DATE_OFFSET and
// DATE_TIME_OFFSET and the op OFFSET (not supported by the sandbox), a type that does not fit
// the column, an op that does not fit the type, a wrong number of values or an unreadable
// value, a filters.op other than AND/OR, and a page number < 0 or size outside 1..10000.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

type person struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type report struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   string `json:"createdAt"`
	CreatedBy   person `json:"createdBy"`
	ModifiedAt  string `json:"modifiedAt"`
	ModifiedBy  person `json:"modifiedBy"`
	Status      string `json:"reportStatus"`
	include     func(o *object, now time.Time) bool
}

var reportAuthors = []person{
	{"usr-7f3a21", "Maya Chen"}, {"usr-2b9e04", "Jonas Berg"}, {"usr-c51d88", "Ana Souza"}, {"usr-94a0f7", "Raj Mehta"},
}

var emea = []string{"GB", "DE", "FR", "NL", "SE", "ES", "IT"}
var americas = []string{"US", "CA", "BR", "MX"}

func (s *Server) seedReports(rng *rand.Rand, now time.Time) {
	defs := []struct {
		name, desc, status string
		include            func(o *object, now time.Time) bool
	}{
		{"All opportunities", "Every opportunity shared with partners", "PUBLISHED", nil},
		{"Open pipeline", "Opportunities not yet closed", "PUBLISHED", func(o *object, _ time.Time) bool { return !isClosed(o.stage) }},
		{"Closed won", "Opportunities won with partners", "PUBLISHED", func(o *object, _ time.Time) bool { return o.stage == "Closed Won" }},
		{"Closed lost", "Opportunities lost, for win/loss reviews", "PUBLISHED", func(o *object, _ time.Time) bool { return o.stage == "Closed Lost" }},
		{"Microsoft co-sell pipeline", "Opportunities co-sold with Microsoft", "PUBLISHED", func(o *object, _ time.Time) bool { return o.partner == "Microsoft" }},
		{"EMEA pipeline", "Opportunities in Europe, the Middle East and Africa", "PUBLISHED", func(o *object, _ time.Time) bool { return slices.Contains(emea, o.country) }},
		{"Americas pipeline", "Opportunities in North and South America", "PUBLISHED", func(o *object, _ time.Time) bool { return slices.Contains(americas, o.country) }},
		{"Large deals", "Opportunities of 250,000 or more (in deal currency)", "PUBLISHED", func(o *object, _ time.Time) bool { return o.amount != nil && *o.amount >= 250000 }},
		{"Closing in the next 90 days", "Open opportunities with a close date within 90 days", "PUBLISHED", func(o *object, now time.Time) bool {
			if isClosed(o.stage) || o.closeDate == "" {
				return false
			}
			d, err := time.Parse(dateLayout, o.closeDate)
			return err == nil && !d.After(now.AddDate(0, 0, 90))
		}},
		{"Missing CRM id", "Opportunities not yet linked to a CRM opportunity", "PUBLISHED", func(o *object, _ time.Time) bool { return o.externalIDs[fieldCRMOpportunityID] == "" }},
		{"Partner Center referrals", "Opportunities with a Partner Center integration status", "DRAFT", func(o *object, _ time.Time) bool { return o.integrationStatus != "" }},
		{"Quarterly forecast", "Working draft of the quarterly partner forecast", "DRAFT", func(o *object, _ time.Time) bool { return !isClosed(o.stage) && o.stage != "Prospect" }},
	}
	id := int64(1_700_000_100)
	for i, d := range defs {
		id += int64(1 + rng.IntN(90))
		created := now.AddDate(0, 0, -(300 - i*20)).Add(-time.Duration(rng.IntN(86400)) * time.Second)
		modified := created.Add(time.Duration(1+rng.IntN(40*24)) * time.Hour)
		if modified.After(now) {
			modified = now
		}
		s.reports = append(s.reports, &report{
			ID:          id,
			Name:        d.name,
			Description: d.desc,
			CreatedAt:   formatTime(created),
			CreatedBy:   reportAuthors[rng.IntN(len(reportAuthors))],
			ModifiedAt:  formatTime(modified),
			ModifiedBy:  reportAuthors[rng.IntN(len(reportAuthors))],
			Status:      d.status,
			include:     d.include,
		})
	}
}

// page is a page request as sent: absent fields take the defaults.
type pageRequest struct {
	Number *int64 `json:"number"`
	Size   *int64 `json:"size"`
}

// resolve validates a page request and returns the page number and size.
func (p *pageRequest) resolve() (number, size int, err *apiError) {
	number, size = 0, defaultPageSize
	if p == nil {
		return number, size, nil
	}
	if p.Number != nil {
		if *p.Number < 0 {
			return 0, 0, badRequest("Invalid page.number %d: must be 0 or more", *p.Number)
		}
		number = int(min(*p.Number, 1<<31))
	}
	if p.Size != nil {
		if *p.Size < 1 || *p.Size > maxPageSize {
			return 0, 0, badRequest("Invalid page.size %d: must be between 1 and %d", *p.Size, maxPageSize)
		}
		size = int(*p.Size)
	}
	return number, size, nil
}

// pageOf returns the bounds of a page within n items and whether it is the last page.
func pageOf(n, number, size int) (lo, hi int, end bool) {
	lo = min(number*size, n)
	hi = min(lo+size, n)
	return lo, hi, hi >= n
}

func (s *Server) listReports(req *request) (*reply, *apiError) {
	var body struct {
		Page *pageRequest `json:"page"`
	}
	if err := decodeJSON(req.body, &body, true); err != nil {
		return nil, err
	}
	number, size, err := body.Page.resolve()
	if err != nil {
		return nil, err
	}
	lo, hi, end := pageOf(len(s.reports), number, size)
	results := make([]*report, 0, hi-lo)
	results = append(results, s.reports[lo:hi]...)
	return ok(map[string]any{"endOfList": end, "results": results})
}

// Report data

type column struct {
	id     string
	family string // text, number, date, datetime, bool
	value  func(s *Server, o *object) any
}

var reportColumns = []column{
	{"opportunity_id", "text", func(_ *Server, o *object) any { return o.id }},
	{"name", "text", func(_ *Server, o *object) any { return o.name }},
	{"stage", "text", func(_ *Server, o *object) any { return o.stage }},
	{"amount", "number", func(_ *Server, o *object) any {
		if o.amount == nil {
			return nil
		}
		return *o.amount
	}},
	{"currency", "text", func(_ *Server, o *object) any { return nullIfEmpty(o.currency) }},
	{"close_date", "date", func(_ *Server, o *object) any { return nullIfEmpty(o.closeDate) }},
	{"partner", "text", func(_ *Server, o *object) any { return nullIfEmpty(o.partner) }},
	{"country", "text", func(_ *Server, o *object) any { return nullIfEmpty(o.country) }},
	{"account_name", "text", func(s *Server, o *object) any {
		if a := s.objects[o.accountID]; a != nil {
			return a.name
		}
		return nullIfEmpty(o.custom["account_name"])
	}},
	{"crm_opportunity_id", "text", func(_ *Server, o *object) any { return nullIfEmpty(o.externalIDs[fieldCRMOpportunityID]) }},
	{"partner_center_status", "text", func(_ *Server, o *object) any { return nullIfEmpty(o.integrationStatus) }},
	{"probability", "number", func(_ *Server, o *object) any { return stageProbability(o.stage) }},
	{"is_closed", "bool", func(_ *Server, o *object) any { return isClosed(o.stage) }},
	{"created_at", "datetime", func(_ *Server, o *object) any { return formatTime(o.createdAt) }},
	{"modified_at", "datetime", func(_ *Server, o *object) any { return formatTime(o.modifiedAt) }},
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// filterFamilies maps each supported filter type to the column families it applies to.
var filterFamilies = map[string][]string{
	"TEXT":      {"text"},
	"NUMBER":    {"number"},
	"DECIMAL":   {"number"},
	"CURRENCY":  {"number"},
	"DATE":      {"date", "datetime"},
	"DATE_TIME": {"date", "datetime"},
	"BOOLEAN":   {"bool"},
}

var unsupportedFilterTypes = []string{"TEXT_REPEATED", "TEXT_PG_ARRAY", "DATE_OFFSET", "DATE_TIME_OFFSET"}

var filterOps = []string{"EQUAL_TO", "IS_EMPTY", "CONTAIN", "START_WITH", "END_WITH", "IN", "GREATER_THAN",
	"LESS_THAN", "GREATER_THAN_OR_EQUAL_TO", "LESS_THAN_OR_EQUAL_TO", "BETWEEN", "OFFSET"}

type reportDataRequest struct {
	Filters *struct {
		Op           string        `json:"op"`
		FieldFilters []fieldFilter `json:"fieldFilters"`
	} `json:"filters"`
	Page *pageRequest `json:"page"`
}

type fieldFilter struct {
	ColID  string `json:"colId"`
	Type   string `json:"type"`
	Filter *struct {
		Negate bool   `json:"negate"`
		Op     string `json:"op"`
		Values []any  `json:"values"`
	} `json:"filter"`
}

// predicate tests one report row.
type predicate func(row map[string]any) bool

func (s *Server) reportData(req *request) (*reply, *apiError) {
	id, perr := strconv.ParseInt(req.segs[2], 10, 64)
	if perr != nil {
		return nil, badRequest("Invalid reportId %q: must be an integer", req.segs[2])
	}
	var rep *report
	for _, r := range s.reports {
		if r.ID == id {
			rep = r
		}
	}
	if rep == nil {
		return nil, notFound("Report %d is not defined", id)
	}
	var body reportDataRequest
	if err := decodeJSON(req.body, &body, true); err != nil {
		return nil, err
	}
	number, size, err := body.Page.resolve()
	if err != nil {
		return nil, err
	}
	combine := "AND"
	var preds []predicate
	if f := body.Filters; f != nil {
		switch f.Op {
		case "", "AND":
		case "OR":
			combine = "OR"
		default:
			return nil, badRequest("Invalid filters.op %q: must be AND or OR", f.Op)
		}
		for i, ff := range f.FieldFilters {
			p, err := compileFilter(ff)
			if err != nil {
				err.msg = fmt.Sprintf("fieldFilters[%d]: %s", i, err.msg)
				return nil, err
			}
			preds = append(preds, p)
		}
	}

	var rows []map[string]any
	for _, o := range s.sortedOpportunities() {
		if rep.include != nil && !rep.include(o, req.now) {
			continue
		}
		row := make(map[string]any, len(reportColumns))
		for _, c := range reportColumns {
			row[c.id] = c.value(s, o)
		}
		if matchAll(preds, combine, row) {
			rows = append(rows, row)
		}
	}
	lo, hi, end := pageOf(len(rows), number, size)
	results := make([]map[string]any, 0, hi-lo)
	results = append(results, rows[lo:hi]...)
	return ok(map[string]any{"endOfList": end, "results": results, "version": s.version})
}

func matchAll(preds []predicate, combine string, row map[string]any) bool {
	if len(preds) == 0 {
		return true
	}
	for _, p := range preds {
		m := p(row)
		if combine == "OR" && m {
			return true
		}
		if combine == "AND" && !m {
			return false
		}
	}
	return combine == "AND"
}

func compileFilter(ff fieldFilter) (predicate, *apiError) {
	var col *column
	for i := range reportColumns {
		if reportColumns[i].id == ff.ColID {
			col = &reportColumns[i]
		}
	}
	if col == nil {
		return nil, badRequest("Unknown column %q", ff.ColID)
	}
	families, known := filterFamilies[ff.Type]
	switch {
	case slices.Contains(unsupportedFilterTypes, ff.Type):
		return nil, badRequest("Filter type %s is not supported", ff.Type)
	case !known:
		return nil, badRequest("Invalid filter type %q", ff.Type)
	case !slices.Contains(families, col.family):
		return nil, badRequest("Filter type %s does not apply to column %s", ff.Type, col.id)
	}
	if ff.Filter == nil {
		return nil, badRequest("Missing filter for column %s", col.id)
	}
	op, values := ff.Filter.Op, ff.Filter.Values
	switch {
	case op == "OFFSET":
		return nil, badRequest("Filter op OFFSET is not supported")
	case !slices.Contains(filterOps, op):
		return nil, badRequest("Invalid filter op %q", op)
	}
	ordered := ff.Type != "TEXT" && ff.Type != "BOOLEAN"
	want := 1
	switch op {
	case "IS_EMPTY":
		want = 0
	case "IN":
		want = -1
	case "BETWEEN":
		want = 2
	case "CONTAIN", "START_WITH", "END_WITH":
		if ff.Type != "TEXT" {
			return nil, badRequest("Filter op %s applies to TEXT only", op)
		}
	case "GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL_TO", "LESS_THAN_OR_EQUAL_TO":
		if !ordered {
			return nil, badRequest("Filter op %s does not apply to type %s", op, ff.Type)
		}
	}
	if op == "BETWEEN" && !ordered {
		return nil, badRequest("Filter op BETWEEN does not apply to type %s", ff.Type)
	}
	switch {
	case want == -1 && len(values) == 0:
		return nil, badRequest("Filter op IN needs at least one value")
	case want >= 1 && len(values) != want:
		return nil, badRequest("Filter op %s needs %d value(s), got %d", op, want, len(values))
	}
	vals := make([]any, 0, len(values))
	if want != 0 {
		for _, v := range values {
			pv, ok := parseFilterValue(ff.Type, v)
			if !ok {
				return nil, badRequest("Invalid %s value %v for column %s", ff.Type, v, col.id)
			}
			vals = append(vals, pv)
		}
	}
	typ, negate, colID := ff.Type, ff.Filter.Negate, col.id
	return func(row map[string]any) bool {
		return test(typ, op, vals, row[colID]) != negate
	}, nil
}

// test evaluates one filter op on one cell; vals are parsed per typ.
func test(typ, op string, vals []any, cell any) bool {
	if cell == nil || cell == "" {
		return op == "IS_EMPTY"
	}
	if op == "IS_EMPTY" {
		return false
	}
	v, ok := parseCell(typ, cell)
	if !ok {
		return false
	}
	if typ == "TEXT" {
		text := strings.ToLower(v.(string))
		first := strings.ToLower(vals[0].(string))
		switch op {
		case "CONTAIN":
			return strings.Contains(text, first)
		case "START_WITH":
			return strings.HasPrefix(text, first)
		case "END_WITH":
			return strings.HasSuffix(text, first)
		}
	}
	cmp := func(a, b any) int { return compareValues(typ, a, b) }
	switch op {
	case "EQUAL_TO":
		return cmp(v, vals[0]) == 0
	case "IN":
		return slices.ContainsFunc(vals, func(x any) bool { return cmp(v, x) == 0 })
	case "GREATER_THAN":
		return cmp(v, vals[0]) > 0
	case "LESS_THAN":
		return cmp(v, vals[0]) < 0
	case "GREATER_THAN_OR_EQUAL_TO":
		return cmp(v, vals[0]) >= 0
	case "LESS_THAN_OR_EQUAL_TO":
		return cmp(v, vals[0]) <= 0
	case "BETWEEN":
		return cmp(v, vals[0]) >= 0 && cmp(v, vals[1]) <= 0
	}
	return false
}

func compareValues(typ string, a, b any) int {
	switch typ {
	case "TEXT":
		return strings.Compare(strings.ToLower(a.(string)), strings.ToLower(b.(string)))
	case "BOOLEAN":
		if a.(bool) == b.(bool) {
			return 0
		}
		return 1
	case "DATE", "DATE_TIME":
		return a.(time.Time).Compare(b.(time.Time))
	default:
		x, y := a.(float64), b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
}

// parseFilterValue reads a filter value per the filter type.
func parseFilterValue(typ string, v any) (any, bool) {
	switch x := v.(type) {
	case string:
		return parseTyped(typ, x)
	case float64:
		if typ == "TEXT" {
			return strconv.FormatFloat(x, 'f', -1, 64), true
		}
		if filterFamilies[typ][0] == "number" {
			return x, true
		}
	case bool:
		if typ == "BOOLEAN" {
			return x, true
		}
		if typ == "TEXT" {
			return strconv.FormatBool(x), true
		}
	}
	return nil, false
}

// parseCell reads a report cell per the filter type.
func parseCell(typ string, v any) (any, bool) {
	switch x := v.(type) {
	case string:
		return parseTyped(typ, x)
	case float64:
		return parseFilterValue(typ, x)
	case int:
		return parseFilterValue(typ, float64(x))
	case bool:
		return parseFilterValue(typ, x)
	}
	return nil, false
}

func parseTyped(typ, s string) (any, bool) {
	s = strings.TrimSpace(s)
	switch typ {
	case "TEXT":
		return s, true
	case "BOOLEAN":
		b, err := strconv.ParseBool(s)
		return b, err == nil
	case "DATE", "DATE_TIME":
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			t, err = time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, false
			}
		}
		t = t.UTC()
		if typ == "DATE" {
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		}
		return t, true
	default:
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
}
