package workspan_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/connectors/workspan/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
	wstools "github.com/cosell-mcp/cosell-mcp/tools/workspan"
)

const integration = "int-crm-001"

type harness struct {
	*toolstest.Client
	sandbox *sandbox.Server
	clock   *clock.Fake // shared by the sandbox and the tools; waits take no real time
	dir     string
	budget  *throttle.Budget
}

// harnessConfig varies the harness; the zero value is the default.
type harnessConfig struct {
	rowsPerUpload int           // default 5000
	rowDelay      time.Duration // the sandbox's processing time per row
	clientOpts    []client.ClientOption
	clientRoots   bool // a local (stdio) server: honour the client's MCP roots, default to home and the working directory
	noAllowedDirs bool // configure no allowed folder (by default the harness's dir)
	// upstream, when set, serves the API in front of the sandbox (a
	// faulty proxy); transport, when set, wraps the client's base
	// transport (below the budget and the retries).
	upstream  func(http.Handler) http.Handler
	transport func(http.RoundTripper) http.RoundTripper
	maxWait   time.Duration // the budget's MaxWait for interactive calls (negative: never wait)
	limit     int           // the budget's calls per window; default 100
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, harnessConfig{}) }

func newHarnessWith(t *testing.T, cfg harnessConfig) *harness {
	t.Helper()
	fc := clock.NewFake(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	t.Cleanup(fc.AutoAdvance(context.Background()))
	sb := sandbox.New(sandbox.Options{Clock: fc, RowDelay: cfg.rowDelay})
	t.Cleanup(sb.Close)
	var api http.Handler = sb
	if cfg.upstream != nil {
		api = cfg.upstream(sb)
	}
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	if cfg.limit == 0 {
		cfg.limit = 100
	}
	budgets := throttle.NewRegistry(throttle.Config{Limit: cfg.limit, MaxWait: cfg.maxWait})
	budget := budgets.Budget(wstools.Toolset)
	var base http.RoundTripper = http.DefaultTransport
	if cfg.transport != nil {
		base = cfg.transport(base)
	}
	client := ws.New(ws.Config{
		BaseURL: ts.URL, HostName: sandbox.DefaultHostName, AppUserID: sandbox.DefaultAppUserID, AppUserSecret: sandbox.DefaultAppUserSecret,
		HTTPClient: &http.Client{Transport: httpx.Chain(budget, base)},
	})
	dir := t.TempDir()
	allowed := []string{dir}
	if cfg.noAllowedDirs {
		allowed = nil
	}
	reg := tools.NewRegistry()
	reg.Add(wstools.Tools(client, wstools.Options{AllowedDirs: allowed, RowsPerUpload: cfg.rowsPerUpload, Budget: budget, Clock: fc, ClientRoots: cfg.clientRoots})...)
	return &harness{Client: toolstest.New(t, reg, tools.Policy{}, budgets, cfg.clientOpts...), sandbox: sb, clock: fc, dir: dir, budget: budget}
}

// writeXLSX writes an opportunities workbook of n rows; every 500th row has a bad amount.
func writeXLSX(t *testing.T, path string, n int) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	require.NoError(t, err)
	require.NoError(t, sw.SetRow("A1", []any{"name", "stage", "amount", "currency", "close_date", "crm_opportunity_id"}))
	for i := 1; i <= n; i++ {
		amount := any(1000 + i)
		if i%500 == 0 {
			amount = "lots"
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		require.NoError(t, sw.SetRow(cell, []any{fmt.Sprintf("Bulk Opp %05d", i), "Qualify", amount, "USD", "2027-03-31", fmt.Sprintf("PD-%05d", i)}))
	}
	require.NoError(t, sw.Flush())
	require.NoError(t, f.SaveAs(path))
}

// The story of the issue: a 10,000-row xlsx from an allowed folder, followed
// to completion, errors read back, one opportunity linked and audited — in a
// handful of upstream calls.
func TestBulkLoadXLSXToAuditedLink(t *testing.T) {
	began := time.Now()
	const rows = 10000
	h := newHarnessWith(t, harnessConfig{rowsPerUpload: rows / 2})
	path := filepath.Join(h.dir, "opportunities.xlsx")
	writeXLSX(t, path, rows)

	var up wstools.UploadResult
	h.Call("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": path}, &up)
	assert.Equal(t, rows, up.Rows)
	require.Len(t, up.Executions, 2, "split at %d rows per upload", rows/2)
	assert.Equal(t, 2, up.Executions[0].FirstRow)
	assert.Equal(t, rows/2+2, up.Executions[1].FirstRow, "file row numbers, header = row 1")

	ids := []any{up.Executions[0].ExecutionID, up.Executions[1].ExecutionID}
	var st wstools.StatusResult
	h.Call("workspan_get_bulk_load_status", map[string]any{"integration_id": integration, "execution_ids": ids, "wait": true, "wait_seconds": 600, "max_errors": 3}, &st)
	require.True(t, st.AllCompleted)
	assert.Equal(t, rows, st.Totals.Input)
	assert.Equal(t, rows/500, st.Totals.Errors, "every 500th row has a bad amount")
	assert.Equal(t, rows-rows/500, st.Totals.Success)
	require.NotEmpty(t, st.Executions[0].Errors)
	assert.Contains(t, st.Executions[0].Errors[0].Message, "amount")
	assert.Contains(t, st.Executions[0].Errors[0].DataRow, "lots")

	var reports wstools.ReportList
	h.Call("workspan_list_reports", nil, &reports)
	var open int64
	for _, r := range reports.Reports {
		if r.Name == "Open pipeline" {
			open = r.ID
		}
	}
	require.NotZero(t, open)
	var found wstools.ReportRows
	h.Call("workspan_read_report_data", map[string]any{"report_id": open, "filters": []any{
		map[string]any{"col_id": "name", "type": "TEXT", "op": "EQUAL_TO", "values": []any{"Bulk Opp 00042"}},
	}}, &found)
	require.Len(t, found.Rows, 1)
	assert.Contains(t, string(found.Rows[0]), "PD-00042")
	var row map[string]any
	require.NoError(t, jsonUnmarshal(found.Rows[0], &row))
	objectID := fmt.Sprint(row["opportunity_id"])

	var linked wstools.Connected
	h.Call("workspan_connect_external_id", map[string]any{"object_id": objectID, "external_id": "deal-777"}, &linked)
	assert.Equal(t, "deal-777", linked.ExternalID)
	var audited wstools.Audited
	h.Call("workspan_add_audit", map[string]any{"object_id": objectID, "status_code": "LINKED", "message": "Linked to Pipedrive deal 777"}, &audited)
	assert.Equal(t, "LINKED", audited.StatusCode)
	var ext wstools.ExternalIDs
	h.Call("workspan_get_external_id", map[string]any{"object_id": objectID}, &ext)
	assert.Contains(t, fmt.Sprint(ext.ExternalIDs), "deal-777")

	// 1 token + 2 uploads + 2 polls of 2 executions (the sandbox reports a new execution
	// running once) + list reports + report data + connect + audit + read back = 12.
	assert.LessOrEqual(t, h.sandbox.RequestCount(), 12, "a handful of upstream calls (token, 2 uploads, 2 polls, report, link, audit)")
	t.Logf("%d rows: upstream requests: %d, status polls: %d, story took %s", rows, h.sandbox.RequestCount(), st.Polls, time.Since(began).Round(time.Millisecond))
}

// Waiting for a slow job polls on a backoff that follows the job's age, so
// its cost grows like log(T) up to wstools.MaxPollPause, then one poll per
// MaxPollPause — on the fake clock, whatever the machine's speed. A job of 30
// simulated minutes, waited for in calls of 600 s (the longest wait allowed):
//
//	call 1 (job age 0–600 s): polls at 0, 3, 6, 12, 24, 48, 96, 192, 384, 600  = 10
//	call 2 (600–1200 s):      polls at 600, 900, 1200                          =  3
//	call 3 (1200–1800 s):     polls at 1200, 1500, 1800 (completed)            =  3
//
// 3 s is the floor for one execution (a fifth of a 100/60 s budget), 300 s the cap.
// A fixed 3 s interval would have cost 600 polls.
func TestBulkStatusWaitBacksOffWithTheJobsAge(t *testing.T) {
	const rows, rowDelay = 360, 5 * time.Second // 30 simulated minutes
	h := newHarnessWith(t, harnessConfig{rowDelay: rowDelay})
	var csv strings.Builder
	csv.WriteString("name,stage\n")
	for i := range rows {
		fmt.Fprintf(&csv, "Slow Opp %03d,Qualify\n", i)
	}
	var up wstools.UploadResult
	h.Call("workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "data": csv.String()}, &up)
	require.Len(t, up.Executions, 1)
	started := h.clock.Now()
	before := h.sandbox.RequestCount()

	const maxStatusCalls = 10 + 3 + 3
	polls, calls := 0, 0
	var st wstools.StatusResult
	for !st.AllCompleted {
		require.Less(t, calls, 10, "the job completes within a few waits")
		st = wstools.StatusResult{}
		h.Call("workspan_get_bulk_load_status", map[string]any{"integration_id": integration,
			"execution_ids": []any{up.Executions[0].ExecutionID}, "wait": true, "wait_seconds": 600}, &st)
		calls++
		polls += st.Polls
		if !st.AllCompleted {
			assert.Contains(t, st.Next, "workspan_get_bulk_load_status", "a wait that ends early says how to go on")
		}
	}
	statusCalls := h.sandbox.RequestCount() - before
	assert.Equal(t, rows, st.Totals.Success)
	assert.Equal(t, 30*time.Minute, h.clock.Now().Sub(started), "the wait ended when the job did")
	assert.Equal(t, polls, statusCalls, "one upstream call per poll of one execution")
	assert.LessOrEqual(t, statusCalls, maxStatusCalls)
	assert.Equal(t, 3, calls)
	t.Logf("a %s job cost %d status calls in %d tool calls", h.clock.Now().Sub(started), statusCalls, calls)
}

// A wait never outlasts wait_seconds, and says how to go on.
func TestBulkStatusWaitStopsAtItsDeadline(t *testing.T) {
	h := newHarnessWith(t, harnessConfig{rowDelay: time.Hour})
	var up wstools.UploadResult
	h.Call("workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "data": "name,stage\nA,Qualify\n"}, &up)
	began := h.clock.Now()
	var st wstools.StatusResult
	h.Call("workspan_get_bulk_load_status", map[string]any{"integration_id": integration,
		"execution_ids": []any{up.Executions[0].ExecutionID}, "wait": true, "wait_seconds": 45}, &st)
	assert.False(t, st.AllCompleted)
	assert.Equal(t, 45*time.Second, h.clock.Now().Sub(began))
	assert.Contains(t, st.Next, "execution_ids")
	assert.Equal(t, 6, st.Polls, "polls at 0, 3, 6, 12, 24 and 45 s")
}

// Malformed inputs are refused precisely and spend nothing.
func TestMalformedInputsCostNothing(t *testing.T) {
	h := newHarness(t)
	notXLSX := filepath.Join(h.dir, "fake.xlsx")
	require.NoError(t, os.WriteFile(notXLSX, []byte("name,stage\nA,Qualify\n"), 0o600))
	outside := filepath.Join(t.TempDir(), "elsewhere.csv")
	require.NoError(t, os.WriteFile(outside, []byte("name,stage\nA,Qualify\n"), 0o600))

	cases := []struct {
		tool string
		args map[string]any
		want []string
	}{
		{"workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "data": "name,stage,amount\nA,Qualify,1\nB,Qualify\n"}, []string{"row 3", "expected 3"}},
		{"workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "data": "\nA,Qualify\n"}, []string{"header"}},
		{"workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "data": "name;stage;amount\nA;Qualify;1\n"}, []string{"delimiter"}},
		{"workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "data": "name,name\nA,B\n"}, []string{"duplicate"}},
		{"workspan_bulk_load_data", map[string]any{"integration_id": integration, "format": "json", "data": `[{"a":1},{"a":{"b":2}}]`}, []string{"row 2"}},
		{"workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": notXLSX}, []string{"not an xlsx"}},
		{"workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": outside}, []string{"allowed"}},
		{"workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": filepath.Join(h.dir, "..", filepath.Base(filepath.Dir(outside)), "x.csv")}, []string{}},
		{"workspan_bulk_load_data_file", map[string]any{"integration_id": integration, "content_base64": "%%%"}, []string{"base64"}},
		{"workspan_read_report_data", map[string]any{"report_id": 1, "filters": []any{map[string]any{"col_id": "amount", "type": "NUMBER", "op": "BETWEEN", "values": []any{"1"}}}}, []string{"BETWEEN"}},
	}
	for _, c := range cases {
		e := h.CallErr(c.tool, c.args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%s %v: %s", c.tool, c.args, e.Message)
		for _, w := range c.want {
			assert.Contains(t, e.Message, w, "%s %v", c.tool, c.args)
		}
	}
	assert.Zero(t, h.sandbox.RequestCount(), "no upstream call for any malformed input")
}

func TestInlineAndBase64Loads(t *testing.T) {
	h := newHarness(t)
	var up wstools.UploadResult
	h.Call("workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "column_delimiter": ";",
		"data": "name;stage;amount\nAlpha;Qualify;10\nBeta;Develop;20\n"}, &up)
	require.Len(t, up.Executions, 1)
	assert.Equal(t, []string{"name", "stage", "amount"}, up.Columns)

	csv := base64.StdEncoding.EncodeToString([]byte("name,stage\nGamma,Propose\n"))
	h.Call("workspan_bulk_load_data_file", map[string]any{"integration_id": integration, "content_base64": csv, "filename": "g.csv"}, &up)
	assert.Equal(t, "csv", up.Format)

	var st wstools.StatusResult
	h.Call("workspan_get_bulk_load_status", map[string]any{"integration_id": integration, "execution_ids": []any{up.Executions[0].ExecutionID}, "wait": true}, &st)
	assert.True(t, st.AllCompleted)
	assert.Equal(t, 1, st.Totals.Success)
	assert.True(t, strings.HasPrefix(st.Executions[0].Status, "completed"))
}

// rootsHandler offers one folder as an MCP root.
type rootsHandler struct{ dir string }

func (r rootsHandler) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file://" + filepath.ToSlash(r.dir), Name: "project"}}}, nil
}

// On stdio (Options.ClientRoots), a folder the client offers as an MCP root
// is allowed like a configured one.
func TestClientRootsAreAllowedFolders(t *testing.T) {
	rootDir := t.TempDir()
	path := filepath.Join(rootDir, "opps.csv")
	require.NoError(t, os.WriteFile(path, []byte("name,stage\nDelta,Qualify\n"), 0o600))

	without := newHarness(t)
	e := without.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": path})
	assert.Contains(t, e.Message, "allowed")

	with := newHarnessWith(t, harnessConfig{clientRoots: true, clientOpts: []client.ClientOption{client.WithRootsHandler(rootsHandler{dir: rootDir})}})
	var up wstools.UploadResult
	with.Call("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": path}, &up)
	assert.Equal(t, 1, up.Rows)
}
