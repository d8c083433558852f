package workspan_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/tools"
	wstools "github.com/cosell-mcp/cosell-mcp/tools/workspan"
)

func columnNamed(t *testing.T, info wstools.IntegrationInfo, name string) wstools.Column {
	t.Helper()
	for _, c := range info.Columns {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("%s has no column %s: %+v", info.IntegrationID, name, info.Columns)
	return wstools.Column{}
}

// The integrations, their object type and the columns their bulk loads
// take come from the sandbox's metadata endpoints, are read once per
// catalog period, and are enough to load a row.
func TestListIntegrations(t *testing.T) {
	h := newHarness(t)
	var list wstools.IntegrationList
	h.Call("workspan_list_integrations", nil, &list)
	assert.Equal(t, 1+1+3, h.sandbox.RequestCount(), "token, the list and one schema per integration")

	var ids []string
	for _, in := range list.Integrations {
		ids = append(ids, in.IntegrationID)
		assert.Equal(t, "opportunity", in.ObjectType, in.IntegrationID)
		assert.Empty(t, in.NoColumns)
		require.GreaterOrEqual(t, len(in.Columns), 2)
		assert.Equal(t, "name", in.Columns[0].Name, "required columns first")
		assert.True(t, in.Columns[0].Required)
		assert.Equal(t, "stage", in.Columns[1].Name)
		assert.True(t, in.Columns[1].Required)
		for _, c := range in.Columns[2:] {
			assert.False(t, c.Required, c.Name)
		}
		for _, ro := range []string{"object_id", "object_type", "event", "occurred_at", "integration_id", "previous_stage", "created_at"} {
			for _, c := range in.Columns {
				assert.NotEqual(t, ro, c.Name, "a field WorkSpan sets is no column")
			}
		}
	}
	assert.Equal(t, []string{"int-crm-001", "int-pc-001", "int-mkt-001"}, ids)
	crm := list.Integrations[0]
	assert.Equal(t, "Salesforce CRM", crm.Name)
	assert.Equal(t, "CRM", crm.Type)
	assert.Equal(t, []string{"Prospect", "Qualify", "Develop", "Propose", "Closed Won", "Closed Lost"}, columnNamed(t, crm, "stage").Values)
	assert.Equal(t, "number", columnNamed(t, crm, "amount").Type)
	assert.Equal(t, "date", columnNamed(t, crm, "close_date").Format)
	assert.NotEmpty(t, columnNamed(t, crm, "currency").Pattern)
	assert.Contains(t, columnNamed(t, crm, "crm_opportunity_id").Description, "updates")
	columnNamed(t, list.Integrations[2], "offer_id")
	assert.Equal(t, ws.BulkInputs()["BulkloadData"].Layout, list.Layout)
	assert.Contains(t, list.Layout, "first row will be column headers")
	assert.Contains(t, list.Sources, "/event/v1/metadata/integration")
	assert.Contains(t, list.Sources, "connector definition")

	// Cached: again, or one of them, costs nothing.
	before := h.sandbox.RequestCount()
	var one wstools.IntegrationList
	h.Call("workspan_list_integrations", map[string]any{"integration_id": "int-pc-001"}, &one)
	require.Len(t, one.Integrations, 1)
	assert.Equal(t, list.Integrations[1], one.Integrations[0])
	h.Call("workspan_list_integrations", nil, &list)
	assert.Equal(t, before, h.sandbox.RequestCount())

	e := h.CallErr("workspan_list_integrations", map[string]any{"integration_id": "int-nope"})
	assert.Equal(t, tools.CodeNotFound, e.Code)
	assert.Equal(t, "integration_id", e.Field)
	assert.Contains(t, e.Message, `"int-nope" is not a WorkSpan integration`)
	assert.Contains(t, e.Message, "int-crm-001 (Salesforce CRM, CRM), int-pc-001 (Microsoft Partner Center, PARTNER_CENTER), int-mkt-001")
	assert.Equal(t, before, h.sandbox.RequestCount())

	// Stale after the catalog period: read again.
	h.clock.Advance(11 * time.Minute)
	h.Call("workspan_list_integrations", map[string]any{"integration_id": "int-crm-001"}, &one)
	assert.Equal(t, before+2, h.sandbox.RequestCount(), "the list and one schema")

	// What the tool says is enough to load a row: the required columns,
	// a stage from the values.
	var header, row []string
	for _, c := range crm.Columns {
		if c.Required {
			header = append(header, c.Name)
			v := "Discovered Opp"
			if len(c.Values) > 0 {
				v = c.Values[1]
			}
			row = append(row, v)
		}
	}
	var up wstools.UploadResult
	h.Call("workspan_bulk_load_opportunities", map[string]any{"integration_id": crm.IntegrationID,
		"data": strings.Join(header, ",") + "\n" + strings.Join(row, ",") + "\n"}, &up)
	var st wstools.StatusResult
	h.Call("workspan_get_bulk_load_status", map[string]any{"integration_id": crm.IntegrationID,
		"execution_ids": []any{up.Executions[0].ExecutionID}, "wait": true}, &st)
	assert.Equal(t, 1, st.Totals.Success, "%+v", st.Executions)
}

// The tool stays within the tools/list budget.
func TestListIntegrationsIsLean(t *testing.T) {
	for _, tl := range wstools.Tools(nil, wstools.Options{}) {
		raw, err := json.Marshal(tl.MCPTool())
		require.NoError(t, err)
		t.Logf("%-40s %4d bytes", tl.Name, len(raw))
		if tl.Name == "workspan_list_integrations" {
			assert.LessOrEqual(t, len(raw), 700)
		}
	}
}

// The bulk tools' format enums are the connector definition's.
func TestBulkFormatsFollowTheDefinition(t *testing.T) {
	inputs := ws.BulkInputs()
	for _, tl := range wstools.Tools(nil, wstools.Options{}) {
		in, ok := inputs[tl.Operation]
		if !ok {
			continue
		}
		var schema struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(tl.InputSchema, &schema))
		assert.ElementsMatch(t, in.Formats, schema.Properties["format"].Enum, tl.Name)
		_, header := schema.Properties["has_header_row"]
		if in.HeaderRowParam {
			assert.True(t, header, tl.Name)
		}
	}
}

// A call naming an integration that does not exist says so and names the
// valid ones, for one more upstream call at most (none while the catalog
// is fresh); other 404s name what was not found and where to find a
// valid one.
func TestNotFoundErrorsNameWhatIsValid(t *testing.T) {
	h := newHarness(t)
	e := h.CallErr("workspan_bulk_load_opportunities", map[string]any{"integration_id": "int-nope", "data": "name,stage\nA,Qualify\n"})
	assert.Equal(t, tools.CodeInvalidArgument, e.Code, "WorkSpan refuses it with a 400: %s", e.Message)
	assert.Equal(t, "integration_id", e.Field)
	assert.Contains(t, e.Message, `integration_id "int-nope" is not a WorkSpan integration`)
	assert.Contains(t, e.Message, "Valid: int-crm-001 (Salesforce CRM, CRM)")
	assert.Contains(t, e.Message, "workspan_list_integrations")
	assert.Contains(t, e.Message, "HTTP 400")
	assert.Equal(t, 3, h.sandbox.RequestCount(), "token, the refused upload, the list")

	e = h.CallErr("workspan_get_bulk_load_status", map[string]any{"integration_id": "int-gone", "execution_ids": []any{"abc"}})
	assert.Equal(t, tools.CodeNotFound, e.Code)
	assert.Equal(t, "integration_id", e.Field)
	assert.Contains(t, e.Message, `"int-gone" is not a WorkSpan integration`)
	assert.Contains(t, e.Message, "int-mkt-001 (Azure Marketplace, MARKETPLACE)")
	assert.Equal(t, 4, h.sandbox.RequestCount(), "the list came from the catalog")

	e = h.CallErr("workspan_get_bulk_load_status", map[string]any{"integration_id": integration, "execution_ids": []any{"feedface"}})
	assert.Equal(t, tools.CodeNotFound, e.Code)
	assert.Equal(t, "execution_ids", e.Field)
	assert.Contains(t, e.Message, `execution "feedface" of integration "int-crm-001" not found`)
	assert.Contains(t, e.Message, "bulk load into that same integration")

	for tool, args := range map[string]map[string]any{
		"workspan_get_external_id":     {"object_id": "123456789012345678"},
		"workspan_connect_external_id": {"object_id": "123456789012345678", "external_id": "deal-1"},
	} {
		e = h.CallErr(tool, args)
		assert.Equal(t, tools.CodeNotFound, e.Code, tool)
		assert.Equal(t, "object_id", e.Field, tool)
		assert.Contains(t, e.Message, `WorkSpan object "123456789012345678" not found`, tool)
		assert.Contains(t, e.Message, "workspan_read_report_data", tool)
	}
	e = h.CallErr("workspan_add_audit", map[string]any{"object_id": "123456789012345678", "status_code": "LINKED", "message": "x", "integration_id": "int-pc-001"})
	assert.Equal(t, tools.CodeNotFound, e.Code)
	assert.Contains(t, e.Message, `WorkSpan object "123456789012345678" not found`)

	e = h.CallErr("workspan_read_report_data", map[string]any{"report_id": 987654})
	assert.Equal(t, tools.CodeNotFound, e.Code)
	assert.Equal(t, "report_id", e.Field)
	assert.Contains(t, e.Message, "report 987654 not found")
	assert.Contains(t, e.Message, "workspan_list_reports")
}

// When the integrations cannot be read, the refusal points to the
// discovery tool instead.
func TestUnknownIntegrationWhenTheListFails(t *testing.T) {
	h := newHarnessWith(t, harnessConfig{upstream: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/event/v1/metadata/integration" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"message":"not allowed","code":"FORBIDDEN"}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	e := h.CallErr("workspan_get_bulk_load_status", map[string]any{"integration_id": "int-gone", "execution_ids": []any{"abc"}})
	assert.Equal(t, tools.CodeNotFound, e.Code)
	assert.Contains(t, e.Message, "HTTP 404")
	assert.Contains(t, e.Message, "workspan_list_integrations lists the valid integration ids")
}
