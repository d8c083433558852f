package workspan_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// fault is how the upstream answers one write after (or instead of)
// carrying it out.
type fault string

const (
	noFault fault = ""
	// After the sandbox carried the write out:
	garbage    fault = "2xx with garbage"
	noID       fault = "2xx without execution_id"
	badGateway fault = "502 after carrying it out"
	dropped    fault = "connection dropped after carrying it out"
	timedOut   fault = "timeout after carrying it out"
	// Instead of carrying it out:
	refused fault = "429 without carrying it out"
)

// faults picks the nth write (a POST or PATCH whose path contains path)
// and fails it: dropped, timedOut and refused without the sandbox's answer,
// the others with it replaced. timedOut is played by the client's
// transport (forward, then a read timeout), every other fault by a proxy
// in front of the sandbox.
type faults struct {
	t     testing.TB
	fault fault
	path  string
	nth   int

	mu     sync.Mutex
	writes int // writes to path seen so far
}

// hit counts r if it is a write to the path, and reports whether it is the
// one to fail.
func (f *faults) hit(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPatch || !strings.Contains(r.URL.Path, f.path) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	return f.fault != noFault && f.writes == f.nth
}

// sent returns how many writes to the path were sent.
func (f *faults) sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// proxy serves the sandbox, failing the chosen write (all faults but timedOut).
func (f *faults) proxy(sandbox http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.fault == timedOut || !f.hit(r) {
			sandbox.ServeHTTP(w, r)
			return
		}
		if f.fault == refused {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"message":"Too many requests","code":"TOO_MANY_REQUESTS"}`)
			return
		}
		rec := httptest.NewRecorder()
		sandbox.ServeHTTP(rec, r)
		if rec.Code/100 != 2 {
			f.t.Errorf("the sandbox refused the write: %d %s", rec.Code, rec.Body)
		}
		switch f.fault {
		case garbage:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rec.Code)
			_, _ = io.WriteString(w, `{"integration_id":"int-crm-001","execution_id":`)
		case noID:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rec.Code)
			_, _ = io.WriteString(w, `{"integration_id":"int-crm-001","data_format":"csv"}`)
		case badGateway:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>502 Bad Gateway</html>")
		case dropped:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				f.t.Errorf("hijack: %v", err)
				return
			}
			_ = conn.Close()
		}
	})
}

// roundTrip plays timedOut: the chosen write goes out and is carried out,
// then its reply is lost to a read timeout.
func (f *faults) roundTrip(base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if f.fault != timedOut || !f.hit(req) {
			return base.RoundTrip(req)
		}
		resp, err := base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			f.t.Errorf("the sandbox refused the write: %d", resp.StatusCode)
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// newFaultHarness runs the WorkSpan tools against the sandbox behind f;
// interactive calls never wait for budget.
// The budget is large enough for every test's calls: none waits for it.
func newFaultHarness(t *testing.T, f *faults, rowsPerUpload int) *harness {
	t.Helper()
	f.t = t
	return newHarnessWith(t, harnessConfig{rowsPerUpload: rowsPerUpload, upstream: f.proxy, transport: f.roundTrip, maxWait: -1, limit: 1000})
}

// exhaust spends the whole budget, so that the next interactive call is
// refused before anything is sent.
func (h *harness) exhaust(t *testing.T) {
	t.Helper()
	ctx := throttle.WithPriority(context.Background(), throttle.Interactive)
	for i := 0; ; i++ {
		require.LessOrEqual(t, i, h.budget.Config().Limit, "the budget never ran out")
		if h.budget.Acquire(ctx) != nil {
			return
		}
	}
}

// anOpportunity returns the long id of a seeded opportunity, read through
// the tools.
func (h *harness) anOpportunity(t *testing.T) string {
	t.Helper()
	var reports struct {
		Reports []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"reports"`
	}
	h.Call("workspan_list_reports", nil, &reports)
	for _, r := range reports.Reports {
		if r.Name != "Open pipeline" {
			continue
		}
		var rows struct {
			Rows []map[string]any `json:"rows"`
		}
		h.Call("workspan_read_report_data", map[string]any{"report_id": r.ID, "page_size": 1}, &rows)
		require.NotEmpty(t, rows.Rows)
		return fmt.Sprint(rows.Rows[0]["opportunity_id"])
	}
	t.Fatal("no Open pipeline report")
	return ""
}

// auditEntries returns how many audit entries the object has with this message.
func (h *harness) auditEntries(t *testing.T, objectID, message string) int {
	t.Helper()
	doc, ok := h.sandbox.Object(objectID)
	require.True(t, ok, objectID)
	n := 0
	for _, a := range doc["audit"].([]any) {
		if strings.Contains(fmt.Sprint(a), message) {
			n++
		}
	}
	return n
}

// executionsWith returns how many executions hold a row containing marker.
func (h *harness) executionsWith(marker string) int {
	n := 0
	for _, e := range h.sandbox.Executions() {
		if strings.Contains(strings.Join(e.Rows, "\n"), marker) {
			n++
		}
	}
	return n
}

// issue finding: duplicate creates — every WorkSpan create whose request
// reached WorkSpan without a trustworthy answer is outcome_unknown (never
// "try again") and says how to check; exactly one execution or audit entry
// exists upstream (the request was carried out once: neither the transport
// nor the tool repeated it). A create refused before it was sent, or by
// WorkSpan, keeps its own code, and nothing exists.
func TestCreatesWithUnknownOutcome(t *testing.T) {
	type createTool struct {
		name string
		path string // of the write
		// args of a create marked with marker.
		args func(t *testing.T, h *harness, marker string) map[string]any
		// count returns how many records the create marked with marker made.
		count func(t *testing.T, h *harness, args map[string]any, marker string) int
		check string // what the outcome_unknown message tells to do
		bulk  bool
	}
	countExecutions := func(_ *testing.T, h *harness, _ map[string]any, marker string) int { return h.executionsWith(marker) }
	createTools := []createTool{
		{name: "workspan_bulk_load_data", path: "/bulk/v1/bulkload", bulk: true, count: countExecutions, check: "workspan_read_report_data",
			args: func(_ *testing.T, _ *harness, marker string) map[string]any {
				return map[string]any{"integration_id": integration, "data": "name,stage\n" + marker + " A,Qualify\n" + marker + " B,Develop\n"}
			}},
		{name: "workspan_bulk_load_opportunities", path: "/bulk/v1/bulkload_opportunity", bulk: true, count: countExecutions, check: "workspan_read_report_data",
			args: func(_ *testing.T, _ *harness, marker string) map[string]any {
				return map[string]any{"integration_id": integration, "format": "json", "data": `[{"name":"` + marker + `","stage":"Qualify"}]`}
			}},
		{name: "workspan_bulk_load_data_file", path: "/bulk/v1/bulkload", bulk: true, count: countExecutions, check: "workspan_read_report_data",
			args: func(_ *testing.T, _ *harness, marker string) map[string]any {
				csv := base64.StdEncoding.EncodeToString([]byte("name,stage\n" + marker + ",Propose\n"))
				return map[string]any{"integration_id": integration, "content_base64": csv, "filename": "opps.csv"}
			}},
		{name: "workspan_bulk_load_opportunities_file", path: "/bulk/v1/bulkload_opportunity", bulk: true, count: countExecutions, check: "workspan_read_report_data",
			args: func(t *testing.T, h *harness, marker string) map[string]any {
				path := filepath.Join(h.dir, "opps.csv")
				require.NoError(t, os.WriteFile(path, []byte("name;stage\n"+marker+";Qualify\n"), 0o600))
				return map[string]any{"integration_id": integration, "path": path, "column_delimiter": ";"}
			}},
		{name: "workspan_add_audit", path: "/audit", check: "integration status",
			args: func(t *testing.T, h *harness, marker string) map[string]any {
				return map[string]any{"object_id": h.anOpportunity(t), "status_code": "SCHEDULED", "message": marker}
			},
			count: func(t *testing.T, h *harness, args map[string]any, marker string) int {
				return h.auditEntries(t, args["object_id"].(string), marker)
			}},
	}
	cases := []struct {
		fault   fault
		budget  bool // refused by the exhausted budget before sending
		bulk    bool // bulk loads only
		code    string
		records int
	}{
		{fault: garbage, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: noID, bulk: true, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: badGateway, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: dropped, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: timedOut, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: refused, code: tools.CodeThrottled, records: 0},
		{budget: true, code: tools.CodeThrottled, records: 0},
	}
	for _, tool := range createTools {
		for _, c := range cases {
			if c.bulk && !tool.bulk {
				continue
			}
			name := string(c.fault)
			if c.budget {
				name = "refused by the budget before sending"
			}
			t.Run(tool.name+"/"+name, func(t *testing.T) {
				f := &faults{fault: c.fault, path: tool.path, nth: 1}
				h := newFaultHarness(t, f, 0)
				marker := fmt.Sprintf("FAULTY %s %s", tool.name, name)
				args := tool.args(t, h, marker)
				if c.budget {
					h.exhaust(t)
				}
				e := h.CallErr(tool.name, args)
				t.Logf("%s: %s", e.Code, e.Message)
				assert.Equal(t, c.code, e.Code, e.Message)
				assert.Equal(t, c.records, tool.count(t, h, args, marker), "records upstream")
				assert.LessOrEqual(t, f.sent(), 1, "the write was sent at most once")
				assert.NotContains(t, e.Message, "try again")
				if c.code == tools.CodeOutcomeUnknown {
					assert.Contains(t, e.Message, "Do not retry blindly")
					assert.Contains(t, e.Message, tool.check)
				} else {
					assert.NotContains(t, strings.ToLower(e.Message), "may or may not")
				}
			})
		}
	}
}

// chunkedLoad is an inline CSV of 6 rows (file rows 2–7), loaded 2 rows
// per execution: chunk 1 is rows 2–3, chunk 2 rows 4–5, chunk 3 rows 6–7.
const chunkedLoad = "name,stage\nOpp 1,Qualify\nOpp 2,Qualify\nOpp 3,Develop\nOpp 4,Develop\nOpp 5,Propose\nOpp 6,Propose\n"

func chunkRows(from, to int) []string {
	stages := []string{"", "Qualify", "Qualify", "Develop", "Develop", "Propose", "Propose"}
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("Opp %d,%s", i, stages[i]))
	}
	return out
}

// issue finding: a split bulk load whose chunk 2 of 3 has an unknown
// outcome stops there: outcome_unknown names chunk 1's execution and rows
// as landed, chunk 2's rows as unknown, and chunk 3's rows as never sent,
// and says which rows to load to resume. Chunk 3 is never sent, and no
// chunk is sent twice: the sandbox holds exactly chunks 1 and 2.
func TestChunkedLoadStopsAtAnUnknownChunk(t *testing.T) {
	for _, ft := range []fault{garbage, noID, badGateway, dropped, timedOut} {
		t.Run(string(ft), func(t *testing.T) {
			f := &faults{fault: ft, path: "/bulk/v1/bulkload", nth: 2}
			h := newFaultHarness(t, f, 2)
			e := h.CallErr("workspan_bulk_load_data", map[string]any{"integration_id": integration, "data": chunkedLoad})
			t.Logf("%s: %s", e.Code, e.Message)

			execs := h.sandbox.Executions()
			require.Len(t, execs, 2, "chunks 1 and 2 were carried out, once each; chunk 3 never")
			assert.Equal(t, chunkRows(1, 2), execs[0].Rows)
			assert.Equal(t, chunkRows(3, 4), execs[1].Rows)
			assert.Equal(t, 2, f.sent(), "chunk 3 was never sent")

			assert.Equal(t, tools.CodeOutcomeUnknown, e.Code)
			assert.LessOrEqual(t, len(e.Message), tools.MaxErrorMessage)
			assert.Contains(t, e.Message, "chunk 2 of 3 (rows 4-5, 2 data rows)")
			assert.Contains(t, e.Message, "Landed, never re-send: rows 2-3 in 1 execution(s): ["+execs[0].ID+" rows 2-3]")
			assert.NotContains(t, e.Message, execs[1].ID, "chunk 2's execution is not known")
			assert.Contains(t, e.Message, "Never sent: rows 6 on (2 data rows)")
			assert.Contains(t, e.Message, "Do not retry blindly: first check whether rows 4-5 were loaded")
			assert.Contains(t, e.Message, "workspan_read_report_data")
			assert.Contains(t, e.Message, "workspan_get_bulk_load_status")
			assert.Contains(t, e.Message, "Then load only rows 6 on if they were, or rows 4 on if not.")
			assert.NotContains(t, e.Message, "try again")
		})
	}
}

// The first or the last chunk with an unknown outcome: what landed and
// what is left are told as such.
func TestChunkedLoadUnknownAtTheEdges(t *testing.T) {
	t.Run("first chunk", func(t *testing.T) {
		f := &faults{fault: garbage, path: "/bulk/v1/bulkload", nth: 1}
		h := newFaultHarness(t, f, 2)
		e := h.CallErr("workspan_bulk_load_data", map[string]any{"integration_id": integration, "data": chunkedLoad})
		assert.Equal(t, tools.CodeOutcomeUnknown, e.Code)
		assert.Contains(t, e.Message, "chunk 1 of 3 (rows 2-3, 2 data rows)")
		assert.Contains(t, e.Message, "Nothing landed before it")
		assert.Contains(t, e.Message, "Never sent: rows 4 on (4 data rows)")
		assert.Contains(t, e.Message, "load only rows 4 on if they were, or rows 2 on if not")
		assert.Len(t, h.sandbox.Executions(), 1)
		assert.Equal(t, 1, f.sent())
	})
	t.Run("last chunk", func(t *testing.T) {
		f := &faults{fault: dropped, path: "/bulk/v1/bulkload", nth: 3}
		h := newFaultHarness(t, f, 2)
		e := h.CallErr("workspan_bulk_load_data", map[string]any{"integration_id": integration, "data": chunkedLoad})
		assert.Equal(t, tools.CodeOutcomeUnknown, e.Code)
		execs := h.sandbox.Executions()
		require.Len(t, execs, 3)
		assert.Contains(t, e.Message, "chunk 3 of 3 (rows 6 on, 2 data rows)")
		assert.Contains(t, e.Message, "["+execs[0].ID+" rows 2-3, "+execs[1].ID+" rows 4-5]")
		assert.Contains(t, e.Message, "It was the last chunk: if they were not loaded, load rows 6 on; if they were, nothing is left.")
		assert.NotContains(t, e.Message, "Never sent")
	})
}

// A chunk refused by WorkSpan (429) was not carried out: the load stops
// with the refusal's own code, lists what landed and where to resume, and
// sends nothing more.
func TestChunkedLoadRefusedChunk(t *testing.T) {
	f := &faults{fault: refused, path: "/bulk/v1/bulkload", nth: 2}
	h := newFaultHarness(t, f, 2)
	e := h.CallErr("workspan_bulk_load_data", map[string]any{"integration_id": integration, "data": chunkedLoad})
	t.Logf("%s: %s", e.Code, e.Message)
	assert.Equal(t, tools.CodeThrottled, e.Code)
	assert.Positive(t, e.RetryAfterSeconds)
	execs := h.sandbox.Executions()
	require.Len(t, execs, 1)
	assert.Equal(t, 2, f.sent())
	assert.Contains(t, e.Message, "Chunk 2 of 3 (rows 4 on) was not loaded")
	assert.Contains(t, e.Message, "["+execs[0].ID+" rows 2-3]")
	assert.Contains(t, e.Message, "Load only rows 4 on")
	assert.NotContains(t, strings.ToLower(e.Message), "may or may not")
}

// Many landed chunks: the message stays within tools.MaxErrorMessage, and
// says which rows landed even when not every execution id fits.
func TestChunkedLoadUnknownAfterManyChunks(t *testing.T) {
	const rows, at = 120, 100
	var data bytes.Buffer
	data.WriteString("name,stage\n")
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&data, "Opp %d,Qualify\n", i)
	}
	f := &faults{fault: garbage, path: "/bulk/v1/bulkload", nth: at}
	h := newFaultHarness(t, f, 1)
	e := h.CallErr("workspan_bulk_load_data", map[string]any{"integration_id": integration, "data": data.String()})
	assert.Equal(t, tools.CodeOutcomeUnknown, e.Code)
	assert.LessOrEqual(t, len(e.Message), tools.MaxErrorMessage)
	execs := h.sandbox.Executions()
	require.Len(t, execs, at)
	assert.Equal(t, at, f.sent())
	assert.Contains(t, e.Message, fmt.Sprintf("Landed, never re-send: rows 2-%d in %d execution(s): [%s rows 2-2", at, at-1, execs[0].ID))
	assert.Regexp(t, `… and \d+ more\]`, e.Message)
	assert.Contains(t, e.Message, fmt.Sprintf("chunk %d of %d (rows %d-%d, 1 data rows)", at, rows, at+1, at+1))
	assert.Contains(t, e.Message, fmt.Sprintf("Never sent: rows %d on (%d data rows)", at+2, rows-at))
	assert.True(t, strings.HasSuffix(e.Message, "if not."), "nothing was cut: %s", e.Message)
}
