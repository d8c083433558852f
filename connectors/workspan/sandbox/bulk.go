package sandbox

// # Bulk loads
//
// POST /bulk/v1/bulkload and POST /bulk/v1/bulkload_opportunity (and the connector aliases
// …/file) load opportunities. Query parameters: integration_id (required, a known integration,
// else 400), the format (data_format on /bulkload, content_type on /bulkload_opportunity; each
// endpoint also accepts the other name): csv, json or xlsx; column_delimiter (CSV only,
// default ","; one character other than a quote or line break, or "\t"/"tab" for a tab) and
// has_header_row (CSV and XLSX, default true).
//
// The data is either the raw request body, or, when the Content-Type is multipart/form-data,
// the part named "file". Without a format parameter the format is inferred: for a raw body,
// json when the Content-Type is application/json and csv otherwise; for a file, from its name
// (.csv, .json, .xlsx) or its part Content-Type, and xlsx otherwise (the connector's default).
//
//   - CSV is read with encoding/csv and the delimiter. The first record is the header unless
//     has_header_row=false, in which case the columns are, in order: opportunity_id, name,
//     stage, amount, currency, close_date, partner, country. Empty lines are ignored. A record
//     with a quoting error or with another number of fields than the header becomes an error
//     row; an empty or unreadable header is 400.
//   - JSON must be an array; each element is a row and must be an object of scalar values
//     (otherwise the row is an error). Anything that is not a JSON array is 400.
//   - XLSX (Office Open XML workbook) is read from its first sheet like CSV; a body that is not
//     a workbook is 400.
//
// Column names are matched case-insensitively, with spaces read as underscores. An empty body
// or file is 400; an unknown format is 400.
//
// The reply comes at once: 200 {integration_id, execution_id, data_format, created_at}. The
// execution processes its rows in order, one every Options.RowDelay on Options.Clock: row i
// (from 1) is processed at created_at + i·RowDelay, and its events carry that time. The
// sandbox brings executions up to date with the clock before it serves any request, so what a
// client sees is a function of the time alone (no background goroutine, no real sleeping).
// With RowDelay 0 every row is processed before the reply. Applying a row costs O(1): objects
// are found through indexes by id, CRM id and account name. Each row is one of:
//
//   - skipped, when every value is empty;
//   - an update, when its id or opportunity_id column names a known opportunity, or when its
//     crm_opportunity_id (or external_id) column matches the CRM id of one;
//   - a create, otherwise, with a new long id (a crm_opportunity_id value is stored as the
//     opportunity's sales_details.crm_opportunity_id);
//   - an error {message, id, data_row}: a create without a name (or opportunity_name) or a
//     stage ("Missing value of required field 'name'"), or an invalid value ("invalid value in
//     field 'amount'"): stage must be one of the six stages (any case), amount a non-negative
//     number, close_date YYYY-MM-DD, currency three letters. id is the row's id, opportunity_id
//     or CRM id value ("" when it has none); data_row is the row as uploaded (the CSV line, the
//     compact JSON object, or the XLSX cells joined by the delimiter).
//
// Columns name, stage, amount, currency, close_date, partner (or partner_name), country and
// account_name (linked to a seeded account of that name when there is one) set those
// properties; any other column is kept as a custom field. An update changes only the
// properties whose column is present and not empty.
//
// Each created opportunity raises object.create, each changed one object.update (and
// object.stage_change), for the execution's integration: see deliver.go.
//
// GET /bulk/v1/status/{integration_id}?execution_id=… (required, else 400; an unknown
// integration or execution, or one of another integration, is 404) answers {integration_id,
// execution_id, status, succcess_count (sic), error_count, input_count, skip_count,
// started_at, completed_at, include_errors, errors}. input_count is the number of data rows;
// the other counts grow as rows are processed. status is running until every row has been
// processed and the execution has been reported running at least once, so a client always
// sees running on its first poll; completed_at is present once completed. errors holds the
// first max_errors errors (default 5, 0 for none) when include_errors is true (the default)
// and is absent otherwise; a max_errors that is not a non-negative number or an
// include_errors that is not a boolean is 400.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

var headerlessColumns = []string{"opportunity_id", "name", "stage", "amount", "currency", "close_date", "partner", "country"}

type rowError struct {
	Message string `json:"message"`
	ID      string `json:"id"`
	DataRow string `json:"data_row"`
}

// bulkRow is one uploaded row.
type bulkRow struct {
	fields map[string]string // normalised column name → value
	raw    string            // the row as uploaded
	err    string            // a parse error, making the row an error row
}

type execution struct {
	id            string
	integrationID string
	format        string
	createdAt     time.Time
	completedAt   time.Time
	rows          []bulkRow // read-only once the execution exists
	processed     int
	success       int
	skipped       int
	errors        []rowError
	done          bool
	reported      bool // reported running at least once
}

// Execution describes a stored bulk load execution.
type Execution struct {
	ID            string
	IntegrationID string
	Format        string // csv, json or xlsx
	CreatedAt     time.Time
	// Rows are its data rows as uploaded (see the errors' data_row).
	Rows []string
}

// Executions returns every bulk load execution the sandbox accepted, in
// creation order. The API has no call that lists them; tests use this to
// count what was carried out.
func (s *Server) Executions() []Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Execution, 0, len(s.execOrder))
	for _, ex := range s.execOrder {
		rows := make([]string, len(ex.rows))
		for i, r := range ex.rows {
			rows[i] = r.raw
		}
		out = append(out, Execution{ID: ex.id, IntegrationID: ex.integrationID, Format: ex.format, CreatedAt: ex.createdAt, Rows: rows})
	}
	return out
}

func (s *Server) bulkLoadData(req *request) (*reply, *apiError) {
	return s.bulkLoad(req, "data_format", "content_type")
}

func (s *Server) bulkLoadOpportunity(req *request) (*reply, *apiError) {
	return s.bulkLoad(req, "content_type", "data_format")
}

func (s *Server) bulkLoad(req *request, formatParam, altParam string) (*reply, *apiError) {
	q := queryOf(req.r)
	integrationID := strings.TrimSpace(q.Get("integration_id"))
	if integrationID == "" {
		return nil, badRequest("Missing required query parameter integration_id")
	}
	if s.findIntegration(integrationID) == nil {
		return nil, badRequest("Unknown integration_id %q", integrationID)
	}
	format := strings.ToLower(strings.TrimSpace(q.Get(formatParam)))
	if format == "" {
		format = strings.ToLower(strings.TrimSpace(q.Get(altParam)))
	}
	if format != "" && format != "csv" && format != "json" && format != "xlsx" {
		return nil, badRequest("Invalid %s %q: must be csv, json or xlsx", formatParam, format)
	}

	data, inferred, err := uploadedData(req)
	if err != nil {
		return nil, err
	}
	if format == "" {
		format = inferred
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, badRequest("The uploaded data is empty")
	}

	delim, err := parseDelimiter(q.Get("column_delimiter"))
	if err != nil {
		return nil, err
	}
	header := true
	if v := q.Get("has_header_row"); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return nil, badRequest("Invalid has_header_row %q: must be true or false", v)
		}
		header = b
	}

	var rows []bulkRow
	switch format {
	case "csv":
		rows, err = parseCSV(data, delim, header)
	case "json":
		rows, err = parseJSONRows(data)
	case "xlsx":
		rows, err = parseXLSX(data, delim, header)
	}
	if err != nil {
		return nil, err
	}

	id := newHex(s.rng, 12)
	for s.executions[id] != nil {
		id = newHex(s.rng, 12)
	}
	ex := &execution{id: id, integrationID: integrationID, format: format, createdAt: req.now, rows: rows}
	s.executions[id] = ex
	s.execOrder = append(s.execOrder, ex)
	s.running = append(s.running, ex)
	s.progress(req.now)
	return ok(map[string]string{
		"integration_id": integrationID,
		"execution_id":   id,
		"data_format":    format,
		"created_at":     formatTime(req.now),
	})
}

// uploadedData returns the uploaded bytes and the format they suggest.
func uploadedData(req *request) ([]byte, string, *apiError) {
	ct := req.r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	if mt != "multipart/form-data" {
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return req.body, "json", nil
		}
		return req.body, "csv", nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, "", badRequest("Invalid multipart/form-data body: missing boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(req.body), boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", badRequest("Missing required form field 'file'")
		}
		if err != nil {
			return nil, "", badRequest("Invalid multipart/form-data body: %v", err)
		}
		if part.FormName() != "file" {
			continue
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, "", badRequest("Invalid multipart/form-data body: %v", err)
		}
		format := "xlsx"
		switch ext := strings.ToLower(path.Ext(part.FileName())); {
		case ext == ".csv" || ext == ".txt":
			format = "csv"
		case ext == ".json":
			format = "json"
		case ext == ".xlsx":
		default:
			pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
			switch {
			case pt == "text/csv" || pt == "text/plain":
				format = "csv"
			case pt == "application/json":
				format = "json"
			}
		}
		return data, format, nil
	}
}

func parseDelimiter(v string) (rune, *apiError) {
	switch v {
	case "":
		return ',', nil
	case `\t`, "tab", "TAB":
		return '\t', nil
	}
	r, size := utf8.DecodeRuneInString(v)
	if size != len(v) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' {
		return 0, badRequest("Invalid column_delimiter %q: must be a single character other than a quote or a line break", v)
	}
	return r, nil
}

func normalizeColumn(c string) string {
	c = strings.TrimPrefix(c, "\ufeff")
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(c)), " ", "_")
}

func headerOf(cells []string) ([]string, *apiError) {
	cols := make([]string, len(cells))
	seen := map[string]bool{}
	for i, c := range cells {
		c = normalizeColumn(c)
		if c == "" {
			return nil, badRequest("Invalid header row: column %d has no name", i+1)
		}
		if seen[c] {
			return nil, badRequest("Invalid header row: duplicate column %q", c)
		}
		seen[c] = true
		cols[i] = c
	}
	return cols, nil
}

// rowOf pairs cells with columns; short rows are padded when pad is true (XLSX drops
// trailing empty cells).
func rowOf(cols, cells []string, raw string, pad bool) bulkRow {
	row := bulkRow{raw: raw}
	if len(cells) > len(cols) || (!pad && len(cells) < len(cols)) {
		row.err = fmt.Sprintf("row has %d columns, expected %d", len(cells), len(cols))
		return row
	}
	row.fields = make(map[string]string, len(cols))
	for i, c := range cols {
		if i < len(cells) {
			row.fields[c] = cells[i]
		}
	}
	return row
}

func parseCSV(data []byte, delim rune, hasHeader bool) ([]bulkRow, *apiError) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = delim
	r.FieldsPerRecord = -1
	cols := headerlessColumns
	if hasHeader {
		rec, err := r.Read()
		if err != nil {
			return nil, badRequest("Unreadable CSV header row: %v", err)
		}
		var aerr *apiError
		if cols, aerr = headerOf(rec); aerr != nil {
			return nil, aerr
		}
	}
	var rows []bulkRow
	for {
		start := r.InputOffset()
		rec, err := r.Read()
		end := r.InputOffset()
		if errors.Is(err, io.EOF) {
			break
		}
		raw := strings.TrimRight(string(data[start:end]), "\r\n")
		raw = strings.TrimLeft(raw, "\r\n") // empty lines before the record
		if err != nil {
			rows = append(rows, bulkRow{raw: raw, err: fmt.Sprintf("malformed CSV row: %v", err)})
			if end <= start {
				break
			}
			continue
		}
		rows = append(rows, rowOf(cols, rec, raw, false))
	}
	return rows, nil
}

func parseJSONRows(data []byte) ([]bulkRow, *apiError) {
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return nil, badRequest("Invalid JSON data: expected an array of objects: %v", err)
	}
	rows := make([]bulkRow, 0, len(elems))
	for _, el := range elems {
		var compact bytes.Buffer
		_ = json.Compact(&compact, el)
		row := bulkRow{raw: compact.String()}
		dec := json.NewDecoder(bytes.NewReader(el))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil {
			row.err = "row is not a JSON object"
			rows = append(rows, row)
			continue
		}
		row.fields = make(map[string]string, len(obj))
		for k, v := range obj {
			col := normalizeColumn(k)
			switch x := v.(type) {
			case nil:
				row.fields[col] = ""
			case string:
				row.fields[col] = x
			case json.Number:
				row.fields[col] = x.String()
			case bool:
				row.fields[col] = strconv.FormatBool(x)
			default:
				row.err = fmt.Sprintf("invalid value in field '%s'", col)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func parseXLSX(data []byte, delim rune, hasHeader bool) ([]bulkRow, *apiError) {
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		return nil, badRequest("Invalid xlsx file: %v", err)
	}
	defer func() { _ = f.Close() }()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, badRequest("Invalid xlsx file: the workbook has no sheet")
	}
	cells, err := f.GetRows(sheets[0])
	if err != nil {
		return nil, badRequest("Invalid xlsx file: %v", err)
	}
	cols := headerlessColumns
	if hasHeader {
		if len(cells) == 0 {
			return nil, badRequest("Invalid xlsx file: the first sheet has no header row")
		}
		var aerr *apiError
		if cols, aerr = headerOf(cells[0]); aerr != nil {
			return nil, aerr
		}
		cells = cells[1:]
	}
	rows := make([]bulkRow, 0, len(cells))
	for _, rec := range cells {
		rows = append(rows, rowOf(cols, rec, strings.Join(rec, string(delim)), true))
	}
	return rows, nil
}

// progress processes the rows of the running executions that are due by now, oldest
// execution first; the store is locked.
func (s *Server) progress(now time.Time) {
	kept := s.running[:0]
	for _, ex := range s.running {
		due := len(ex.rows)
		if s.rowDelay > 0 {
			due = int(min(int64(now.Sub(ex.createdAt)/s.rowDelay), int64(len(ex.rows))))
		}
		for ; ex.processed < due; ex.processed++ {
			s.applyRow(ex, &ex.rows[ex.processed], ex.rowTime(ex.processed, s.rowDelay))
		}
		if ex.processed < len(ex.rows) {
			kept = append(kept, ex)
			continue
		}
		ex.done = true
		ex.completedAt = ex.rowTime(len(ex.rows)-1, s.rowDelay)
	}
	clear(s.running[len(kept):])
	s.running = kept
}

// rowTime is when the i-th row (from 0) of the execution is processed.
func (ex *execution) rowTime(i int, rowDelay time.Duration) time.Time {
	return ex.createdAt.Add(time.Duration(i+1) * rowDelay)
}

func first(fields map[string]string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(fields[n]); v != "" {
			return v
		}
	}
	return ""
}

// knownColumns are the bulk columns with a meaning; the others become custom fields.
var knownColumns = []string{"id", "opportunity_id", "name", "opportunity_name", "stage", "amount", "currency",
	"close_date", "partner", "partner_name", "country", "account_name", "crm_opportunity_id", "external_id",
	fieldCRMOpportunityID}

// applyRow processes one row; the store is locked.
func (s *Server) applyRow(ex *execution, row *bulkRow, now time.Time) {
	key := ""
	if row.fields != nil {
		key = first(row.fields, "id", "opportunity_id")
	}
	crmID := first(row.fields, "crm_opportunity_id", fieldCRMOpportunityID, "external_id")
	fail := func(msg string) {
		id := key
		if id == "" {
			id = crmID
		}
		ex.errors = append(ex.errors, rowError{Message: msg, ID: id, DataRow: row.raw})
	}
	if row.err != "" {
		fail(row.err)
		return
	}
	blank := true
	for _, v := range row.fields {
		if strings.TrimSpace(v) != "" {
			blank = false
			break
		}
	}
	if blank {
		ex.skipped++
		return
	}

	var target *object
	if o := s.objects[key]; key != "" && o != nil && o.kind == kindOpportunity {
		target = o
	} else if crmID != "" {
		target = s.crmIndex[crmID]
	}

	name := first(row.fields, "name", "opportunity_name")
	stage := first(row.fields, "stage")
	if target == nil && name == "" {
		fail("Missing value of required field 'name'")
		return
	}
	if target == nil && stage == "" {
		fail("Missing value of required field 'stage'")
		return
	}
	if stage != "" {
		canon, valid := canonicalStage(stage)
		if !valid {
			fail("invalid value in field 'stage'")
			return
		}
		stage = canon
	}
	var amount *float64
	if v := first(row.fields, "amount"); v != "" {
		f, err := strconv.ParseFloat(strings.ReplaceAll(v, " ", ""), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			fail("invalid value in field 'amount'")
			return
		}
		amount = &f
	}
	closeDate := first(row.fields, "close_date")
	if closeDate != "" {
		if _, err := time.Parse(dateLayout, closeDate); err != nil {
			fail("invalid value in field 'close_date'")
			return
		}
	}
	currency := strings.ToUpper(first(row.fields, "currency"))
	if currency != "" && !isCurrencyCode(currency) {
		fail("invalid value in field 'currency'")
		return
	}

	created := target == nil
	before, previousStage := "", ""
	if !created {
		before, previousStage = s.changeKey(target), target.stage
	}
	if target == nil {
		target = &object{
			id:          s.newObjectID(),
			kind:        kindOpportunity,
			custom:      map[string]string{},
			externalIDs: map[string]string{},
			createdAt:   now,
		}
		s.objects[target.id] = target
		if crmID != "" {
			s.setExternalID(target, fieldCRMOpportunityID, crmID)
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&target.name, name)
	set(&target.stage, stage)
	if amount != nil {
		target.amount = amount
	}
	set(&target.currency, currency)
	set(&target.closeDate, closeDate)
	set(&target.partner, first(row.fields, "partner", "partner_name"))
	set(&target.country, strings.ToUpper(first(row.fields, "country")))
	if acct := first(row.fields, "account_name"); acct != "" {
		delete(target.custom, "account_name")
		target.accountID = s.accountNames[strings.ToLower(acct)]
		if target.accountID == "" {
			target.custom["account_name"] = acct
		}
	}
	for col, v := range row.fields {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(knownColumns, col) {
			target.custom[col] = v
		}
	}
	s.touch(target, now)
	ex.success++
	if created {
		s.emit([]string{"object.create"}, target, ex.integrationID, "", now)
	} else {
		s.emitChange(target, before, previousStage, ex.integrationID, now)
	}
}

func isCurrencyCode(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

type statusResponse struct {
	IntegrationID string      `json:"integration_id"`
	ExecutionID   string      `json:"execution_id"`
	Status        string      `json:"status"`
	SuccessCount  int         `json:"succcess_count"`
	ErrorCount    int         `json:"error_count"`
	InputCount    int         `json:"input_count"`
	SkipCount     int         `json:"skip_count"`
	StartedAt     string      `json:"started_at"`
	CompletedAt   string      `json:"completed_at,omitempty"`
	IncludeErrors bool        `json:"include_errors"`
	Errors        *[]rowError `json:"errors,omitempty"`
}

func (s *Server) bulkStatus(req *request) (*reply, *apiError) {
	q := queryOf(req.r)
	integrationID := req.segs[3]
	execID := strings.TrimSpace(q.Get("execution_id"))
	if execID == "" {
		return nil, badRequest("Missing required query parameter execution_id")
	}
	include := true
	if v := q.Get("include_errors"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("Invalid include_errors %q: must be true or false", v)
		}
		include = b
	}
	maxErrors := 5
	if v := q.Get("max_errors"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsNaN(f) {
			return nil, badRequest("Invalid max_errors %q: must be a number, 0 or more", v)
		}
		maxErrors = int(min(f, 1e6))
	}
	ex := s.executions[execID]
	if s.findIntegration(integrationID) == nil || ex == nil || ex.integrationID != integrationID {
		return nil, notFound("Integration or execution id is not available")
	}
	resp := statusResponse{
		IntegrationID: integrationID,
		ExecutionID:   ex.id,
		Status:        "running",
		SuccessCount:  ex.success,
		ErrorCount:    len(ex.errors),
		InputCount:    len(ex.rows),
		SkipCount:     ex.skipped,
		StartedAt:     formatTime(ex.createdAt),
		IncludeErrors: include,
	}
	if ex.done && ex.reported {
		resp.Status = "completed"
		resp.CompletedAt = formatTime(ex.completedAt)
	}
	ex.reported = true
	if include {
		errs := append([]rowError{}, ex.errors[:min(maxErrors, len(ex.errors))]...)
		resp.Errors = &errs
	}
	return ok(resp)
}
