package sandbox

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
)

// findByName returns the opportunities with a name.
func (e *env) findByName(name string) []map[string]any {
	e.t.Helper()
	e.srv.mu.Lock()
	var ids []string
	for _, o := range e.srv.sortedOpportunities() {
		if o.name == name {
			ids = append(ids, o.id)
		}
	}
	e.srv.mu.Unlock()
	var out []map[string]any
	for _, id := range ids {
		doc, _ := e.srv.Object(id)
		out = append(out, doc)
	}
	return out
}

func errorsOf(st map[string]any) []map[string]any {
	var out []map[string]any
	for _, x := range st["errors"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func TestBulkLoadCSV(t *testing.T) {
	e := newEnv(t, Options{})
	existing := e.opportunityIDs()[0]
	csvData := "Opportunity_ID,Name,Stage,Amount,Currency,Close_Date,Partner,Country,Account_Name,Region\n" +
		",Globex — Fabric pilot,Qualify,125000,usd,2026-12-01,Microsoft,us,Contoso,West\n" +
		existing + ",,closed won,99000,,,,,,\n" +
		",Initech — Azure VMware,Develop,,,,,,,\n" +
		",,Prospect,1000,USD,2026-10-01,,,,\n" +
		"aw00082,Hooli — Data estate,Propose,-,USD,2026-10-01,,,,\n" +
		",Umbrella — Sentinel,Propose,5000,USD,20-jan-2027,,,,\n" +
		",Stark — Copilot,Negotiate,5000,USD,2026-10-01,,,,\n" +
		",,,,,,,,,\n" +
		",Wayne — SAP on Azure,Propose,1,2,3\n"
	created, st := e.load("/bulk/v1/bulkload?integration_id=int-crm-001&data_format=csv", csvData)
	assert.Equal(t, "csv", created["data_format"])
	assert.Equal(t, "int-crm-001", created["integration_id"])
	assert.Equal(t, "2026-09-15T12:00:00.000Z", created["created_at"])
	assert.Equal(t, created["execution_id"], st["execution_id"])

	assert.Equal(t, float64(9), st["input_count"])
	assert.Equal(t, float64(3), st["succcess_count"])
	assert.Equal(t, float64(5), st["error_count"])
	assert.Equal(t, float64(1), st["skip_count"])
	assert.Equal(t, true, st["include_errors"])
	assert.Equal(t, "2026-09-15T12:00:00.000Z", st["started_at"])
	assert.NotEmpty(t, st["completed_at"])

	errs := errorsOf(st)
	require.Len(t, errs, 5)
	assert.Equal(t, map[string]any{"message": "Missing value of required field 'name'", "id": "", "data_row": ",,Prospect,1000,USD,2026-10-01,,,,"}, errs[0])
	assert.Equal(t, map[string]any{"message": "invalid value in field 'amount'", "id": "aw00082", "data_row": "aw00082,Hooli — Data estate,Propose,-,USD,2026-10-01,,,,"}, errs[1])
	assert.Equal(t, "invalid value in field 'close_date'", errs[2]["message"])
	assert.Equal(t, "invalid value in field 'stage'", errs[3]["message"])
	assert.Equal(t, "row has 6 columns, expected 10", errs[4]["message"])

	// Created with a new long id, fields set.
	globex := e.findByName("Globex — Fabric pilot")
	require.Len(t, globex, 1)
	g := globex[0]
	assert.Len(t, g["object_id"], 18)
	assert.Equal(t, "Qualify", g["stage"])
	assert.Equal(t, 125000.0, g["amount"])
	assert.Equal(t, "USD", g["currency"])
	assert.Equal(t, "2026-12-01", g["close_date"])
	assert.Equal(t, "US", g["country"])
	assert.Equal(t, "Contoso", g["account_name"])
	assert.Equal(t, map[string]any{"region": "West"}, g["custom_fields"])
	require.Len(t, e.findByName("Initech — Azure VMware"), 1)
	assert.Nil(t, e.findByName("Initech — Azure VMware")[0]["amount"])

	// Updated in place: only the given columns change.
	doc, _ := e.srv.Object(existing)
	assert.Equal(t, "Closed Won", doc["stage"])
	assert.Equal(t, 99000.0, doc["amount"])
	assert.NotEmpty(t, doc["name"])
	// An unknown id creates nothing when the row fails, and the first error limit applies.
	assert.Empty(t, e.findByName("Hooli — Data estate"))

	st = e.get("/bulk/v1/status/int-crm-001?execution_id="+created["execution_id"].(string)+"&max_errors=2").ok(t, http.StatusOK)
	assert.Len(t, st["errors"], 2)
	assert.Equal(t, float64(5), st["error_count"])
	st = e.get("/bulk/v1/status/int-crm-001?execution_id="+created["execution_id"].(string)+"&include_errors=false").ok(t, http.StatusOK)
	assert.NotContains(t, st, "errors")
	assert.Equal(t, false, st["include_errors"])
	st = e.get("/bulk/v1/status/int-crm-001?execution_id="+created["execution_id"].(string)).ok(t, http.StatusOK)
	assert.Len(t, st["errors"], 5, "default max_errors is 5")
	st = e.get("/bulk/v1/status/int-crm-001?execution_id="+created["execution_id"].(string)+"&max_errors=0").ok(t, http.StatusOK)
	assert.Equal(t, []any{}, st["errors"])
}

func TestBulkLoadSemicolonCSVOpportunityEndpoint(t *testing.T) {
	e := newEnv(t, Options{})
	data := "name;stage;amount;close_date;crm_opportunity_id\n" +
		"\"Tailspin; Azure landing zone\";Propose;1500.5;2027-01-31;006XYZ000001\n" +
		"Relecloud — AVD;Develop;abc;2027-01-31;\n"
	created, st := e.load("/bulk/v1/bulkload_opportunity?integration_id=int-crm-001&content_type=csv&column_delimiter=%3B", data)
	assert.Equal(t, "csv", created["data_format"])
	assert.Equal(t, float64(2), st["input_count"])
	assert.Equal(t, float64(1), st["succcess_count"])
	assert.Equal(t, float64(1), st["error_count"])
	assert.Equal(t, "Relecloud — AVD;Develop;abc;2027-01-31;", errorsOf(st)[0]["data_row"])

	got := e.findByName("Tailspin; Azure landing zone")
	require.Len(t, got, 1)
	assert.Equal(t, 1500.5, got[0]["amount"])
	assert.Equal(t, "006XYZ000001", got[0]["external_ids"].(map[string]any)[fieldCRMOpportunityID])

	// Loading again with the same CRM id updates rather than duplicates.
	_, st = e.load("/bulk/v1/bulkload_opportunity?integration_id=int-crm-001&column_delimiter=;",
		"crm_opportunity_id;stage\n006XYZ000001;Closed Lost\n")
	assert.Equal(t, float64(1), st["succcess_count"])
	got = e.findByName("Tailspin; Azure landing zone")
	require.Len(t, got, 1)
	assert.Equal(t, "Closed Lost", got[0]["stage"])

	// Tab delimiter and no header row.
	_, st = e.load("/bulk/v1/bulkload_opportunity?integration_id=int-crm-001&column_delimiter=%5Ct&has_header_row=false",
		"\tNo header deal\tProspect\t42\tEUR\t2027-03-01\tMicrosoft\tde\n")
	assert.Equal(t, float64(1), st["succcess_count"], "%v", st)
	got = e.findByName("No header deal")
	require.Len(t, got, 1)
	assert.Equal(t, "DE", got[0]["country"])
}

func TestBulkLoadJSON(t *testing.T) {
	e := newEnv(t, Options{})
	existing := e.opportunityIDs()[3]
	data := `[
		{"opportunity_name": "Litware — Defender XDR", "stage": "Prospect", "amount": 64000, "close_date": "2027-02-15", "won": false},
		{"id": "` + existing + `", "stage": "Propose", "amount": "12.5"},
		{"name": "Missing stage"},
		42,
		{"name": "Nested", "stage": "Prospect", "extra": {"a": 1}},
		{"name": "Null amount", "stage": "Qualify", "amount": null},
		{}
	]`
	created, st := e.load("/bulk/v1/bulkload?integration_id=int-crm-001", data, "Content-Type", "application/json")
	assert.Equal(t, "json", created["data_format"], "format follows the Content-Type")
	assert.Equal(t, float64(7), st["input_count"])
	assert.Equal(t, float64(3), st["succcess_count"])
	assert.Equal(t, float64(3), st["error_count"])
	assert.Equal(t, float64(1), st["skip_count"])
	errs := errorsOf(st)
	assert.Equal(t, "Missing value of required field 'stage'", errs[0]["message"])
	assert.Equal(t, `{"name":"Missing stage"}`, errs[0]["data_row"])
	assert.Equal(t, "row is not a JSON object", errs[1]["message"])
	assert.Equal(t, "42", errs[1]["data_row"])
	assert.Equal(t, "invalid value in field 'extra'", errs[2]["message"])

	got := e.findByName("Litware — Defender XDR")
	require.Len(t, got, 1)
	assert.Equal(t, 64000.0, got[0]["amount"])
	assert.Equal(t, map[string]any{"won": "false"}, got[0]["custom_fields"])
	doc, _ := e.srv.Object(existing)
	assert.Equal(t, "Propose", doc["stage"])
	assert.Equal(t, 12.5, doc["amount"])

	// data_format=json wins over a text/csv Content-Type.
	created, st = e.load("/bulk/v1/bulkload?integration_id=int-pc-001&data_format=json", `[{"name":"Via query","stage":"Qualify"}]`)
	assert.Equal(t, "json", created["data_format"])
	assert.Equal(t, float64(1), st["succcess_count"])
}

func TestBulkLoadMultipart(t *testing.T) {
	e := newEnv(t, Options{})

	ct, body := multipartBody(t, "deals.csv", "text/csv", []byte("name,stage\nFile deal,Qualify\n,Qualify\n"))
	created, st := e.load("/bulk/v1/bulkload/file?integration_id=int-crm-001", body, "Content-Type", ct)
	assert.Equal(t, "csv", created["data_format"])
	assert.Equal(t, float64(1), st["succcess_count"])
	assert.Equal(t, float64(1), st["error_count"])
	require.Len(t, e.findByName("File deal"), 1)

	ct, body = multipartBody(t, "deals.json", "", []byte(`[{"name":"JSON file deal","stage":"Develop"}]`))
	created, st = e.load("/bulk/v1/bulkload_opportunity?integration_id=int-crm-001", body, "Content-Type", ct)
	assert.Equal(t, "json", created["data_format"])
	assert.Equal(t, float64(1), st["succcess_count"])

	// XLSX, named by the format parameter; trailing empty cells are fine.
	f := excelize.NewFile()
	rows := [][]any{
		{"Name", "Stage", "Amount", "Close Date", "Partner"},
		{"Workbook deal", "Propose", 30000, "2027-04-01", "Microsoft"},
		{"Workbook short row", "Qualify"},
		{"Workbook bad", "Propose", "lots"},
	}
	for i, r := range rows {
		cell, err := excelize.CoordinatesToCellName(1, i+1)
		require.NoError(t, err)
		require.NoError(t, f.SetSheetRow("Sheet1", cell, &r))
	}
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	ct, body = multipartBody(t, "upload.bin", "application/octet-stream", buf.Bytes())
	created, st = e.load("/bulk/v1/bulkload_opportunity/file?integration_id=int-crm-001&content_type=xlsx", body, "Content-Type", ct)
	assert.Equal(t, "xlsx", created["data_format"])
	assert.Equal(t, float64(3), st["input_count"])
	assert.Equal(t, float64(2), st["succcess_count"])
	assert.Equal(t, float64(1), st["error_count"])
	assert.Equal(t, "Workbook bad,Propose,lots", errorsOf(st)[0]["data_row"])
	got := e.findByName("Workbook deal")
	require.Len(t, got, 1)
	assert.Equal(t, 30000.0, got[0]["amount"])
	assert.Equal(t, "2027-04-01", got[0]["close_date"])

	// A file part is required, and an xlsx must be a workbook.
	ct, body = multipartBody(t, "deals.xlsx", "", []byte("not a workbook"))
	e.call(http.MethodPost, "/bulk/v1/bulkload/file?integration_id=int-crm-001", body, "Content-Type", ct).failed(t, http.StatusBadRequest)
	e.call(http.MethodPost, "/bulk/v1/bulkload?integration_id=int-crm-001", "--x--\r\n", "Content-Type", "multipart/form-data; boundary=x").failed(t, http.StatusBadRequest)
}

func TestBulkLoadMalformedCSVRows(t *testing.T) {
	e := newEnv(t, Options{})
	data := "name,stage\nGood one,Qualify\nBad \"quote,Qualify\nGood two,Develop\n"
	_, st := e.load("/bulk/v1/bulkload?integration_id=int-crm-001", data)
	assert.Equal(t, float64(3), st["input_count"])
	assert.Equal(t, float64(2), st["succcess_count"])
	assert.Equal(t, float64(1), st["error_count"])
	assert.Contains(t, errorsOf(st)[0]["message"], "malformed CSV row")
	assert.Equal(t, `Bad "quote,Qualify`, errorsOf(st)[0]["data_row"])
}

func TestBulkLoadRejects(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(path string, body any, headers ...string) resp {
		return e.call(http.MethodPost, path, body, headers...)
	}
	ok := "name,stage\nA,Qualify\n"
	assert.Contains(t, post("/bulk/v1/bulkload", ok).failed(t, http.StatusBadRequest), "integration_id")
	assert.Contains(t, post("/bulk/v1/bulkload?integration_id=int-nope", ok).failed(t, http.StatusBadRequest), "int-nope")
	post("/bulk/v1/bulkload?integration_id=int-crm-001&data_format=xml", ok).failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001", "").failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001&column_delimiter=%3B%3B", ok).failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001&column_delimiter=%22", ok).failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload_opportunity?integration_id=int-crm-001&has_header_row=maybe", ok).failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001&data_format=json", `{"name":"not an array"}`).failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001&data_format=json", `[{"name":`).failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001", "name,,stage\nA,,B\n").failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001", "name,Name\nA,B\n").failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001", "\"name,stage\nA,B\n").failed(t, http.StatusBadRequest)
	post("/bulk/v1/bulkload?integration_id=int-crm-001&data_format=xlsx", "name,stage\n").failed(t, http.StatusBadRequest)
	big := strings.Repeat("x", maxBulkBody+1)
	post("/bulk/v1/bulkload?integration_id=int-crm-001", big).failed(t, http.StatusRequestEntityTooLarge)
	assert.Empty(t, e.srv.executions, "rejected loads start no execution")
	assert.Empty(t, e.srv.Executions())
}

// Executions lists every accepted load, in creation order, with its rows
// as uploaded.
func TestExecutionsInCreationOrder(t *testing.T) {
	e := newEnv(t, Options{})
	first, _ := e.load("/bulk/v1/bulkload?integration_id=int-crm-001", "name,stage\nA,Qualify\nB,Develop\n")
	second, _ := e.load("/bulk/v1/bulkload_opportunity?integration_id=int-crm-001&content_type=json", `[{"name":"C","stage":"Qualify"}]`)
	got := e.srv.Executions()
	require.Len(t, got, 2)
	assert.Equal(t, first["execution_id"], got[0].ID)
	assert.Equal(t, []string{"A,Qualify", "B,Develop"}, got[0].Rows)
	assert.Equal(t, "csv", got[0].Format)
	assert.Equal(t, second["execution_id"], got[1].ID)
	assert.Equal(t, "int-crm-001", got[1].IntegrationID)
	assert.Equal(t, []string{`{"name":"C","stage":"Qualify"}`}, got[1].Rows)
	assert.Equal(t, testNow, got[1].CreatedAt)
}

func TestBulkStatusErrors(t *testing.T) {
	e := newEnv(t, Options{})
	created := e.call(http.MethodPost, "/bulk/v1/bulkload?integration_id=int-crm-001", "name,stage\nA,Qualify\n").ok(t, http.StatusOK)
	exec := created["execution_id"].(string)
	e.get("/bulk/v1/status/int-crm-001").failed(t, http.StatusBadRequest)
	e.get("/bulk/v1/status/int-crm-001?execution_id=nope").failed(t, http.StatusNotFound)
	e.get("/bulk/v1/status/int-pc-001?execution_id="+exec).failed(t, http.StatusNotFound)
	e.get("/bulk/v1/status/int-nope?execution_id="+exec).failed(t, http.StatusNotFound)
	e.get("/bulk/v1/status/int-crm-001?execution_id="+exec+"&max_errors=-1").failed(t, http.StatusBadRequest)
	e.get("/bulk/v1/status/int-crm-001?execution_id="+exec+"&max_errors=many").failed(t, http.StatusBadRequest)
	e.get("/bulk/v1/status/int-crm-001?execution_id="+exec+"&include_errors=perhaps").failed(t, http.StatusBadRequest)
}

func TestBulkRowDelay(t *testing.T) {
	e := newEnv(t, Options{RowDelay: 40 * time.Second})
	data := "name,stage\nA,Qualify\nB,Qualify\nC,Qualify\nD,nope\n"
	created := e.call(http.MethodPost, "/bulk/v1/bulkload?integration_id=int-crm-001", data).ok(t, http.StatusOK)
	path := "/bulk/v1/status/int-crm-001?execution_id=" + created["execution_id"].(string)
	first := e.get(path).ok(t, http.StatusOK)
	assert.Equal(t, "running", first["status"])
	assert.Equal(t, float64(4), first["input_count"])
	assert.Equal(t, 0.0, first["succcess_count"].(float64)+first["error_count"].(float64), "no row is due yet")
	assert.NotContains(t, first, "completed_at")

	// Row i is processed at created_at + i·RowDelay, exactly.
	e.clock.Advance(79 * time.Second)
	mid := e.get(path).ok(t, http.StatusOK)
	assert.Equal(t, float64(1), mid["succcess_count"], "one row due after 79 s")
	e.clock.Advance(time.Second)
	mid = e.get(path).ok(t, http.StatusOK)
	assert.Equal(t, float64(2), mid["succcess_count"], "two rows due after 80 s")
	assert.Equal(t, "running", mid["status"])

	e.clock.Advance(80 * time.Second)
	st := e.get(path).ok(t, http.StatusOK)
	assert.Equal(t, "completed", st["status"])
	assert.Equal(t, float64(3), st["succcess_count"])
	assert.Equal(t, float64(1), st["error_count"])
	assert.Equal(t, testNow.Add(160*time.Second).Format(timeLayout), st["completed_at"], "completed when the last row was processed")
}

func TestBulkConcurrentLoads(t *testing.T) {
	e := newEnv(t, Options{})
	done := make(chan string, 8)
	for i := range 8 {
		go func() {
			name := "Concurrent " + string(rune('A'+i))
			res, err := http.DefaultClient.Do(mustRequest(t, e, "/bulk/v1/bulkload?integration_id=int-crm-001", "name,stage\n"+name+",Qualify\n"))
			if err == nil {
				res.Body.Close()
			}
			done <- name
		}()
	}
	for range 8 {
		<-done
	}
	for i := range 8 {
		assert.Len(t, e.findByName("Concurrent "+string(rune('A'+i))), 1, "each load was applied once")
	}
}

func mustRequest(t *testing.T, e *env, path, body string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Error(err)
	}
	req.Header.Set("x-ws-env", DefaultHostName)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "text/csv")
	return req
}
