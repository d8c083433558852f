package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryToolResultMatchesItsFullSchema calls every listed tool on the
// sandboxes, in a co-sell story whose ids come from earlier results, and
// validates each structured result against the tool's full output schema
// (schemas/<tool>.json) — tools/list carries only a compact one, so this
// is what keeps the published shapes honest.
func TestEveryToolResultMatchesItsFullSchema(t *testing.T) {
	reg := staticRegistry()
	c := sandboxClient(t, nil, nil)
	called := map[string]bool{}
	call := func(name string, args map[string]any) map[string]any {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		res, err := c.CallTool(context.Background(), req)
		require.NoError(t, err, name)
		require.False(t, res.IsError, "%s: %v", name, res.Content)
		tl, ok := reg.Lookup(name)
		require.True(t, ok, name)
		require.NoError(t, tl.CheckResult(res.StructuredContent))
		called[name] = true
		raw, err := json.Marshal(res.StructuredContent)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(raw, &out))
		return out
	}
	first := func(v any) map[string]any {
		t.Helper()
		list, ok := v.([]any)
		require.True(t, ok && len(list) > 0, "empty list: %v", v)
		return list[0].(map[string]any)
	}

	call("connection_status", nil)
	call("throttle_status", nil)

	// Pipedrive: a deal from creation to a won status, with an activity.
	pipeline := first(call("pipedrive_list_pipelines", nil)["pipelines"])
	stages := pipeline["stages"].([]any)
	require.GreaterOrEqual(t, len(stages), 2)
	second := stages[1].(map[string]any)
	call("pipedrive_get_stage", map[string]any{"stage_id": second["id"]})
	deal := call("pipedrive_add_deal", map[string]any{"title": "Contoso — Azure migration", "pipeline_id": pipeline["id"], "value": 50000, "currency": "USD"})
	call("pipedrive_get_deal", map[string]any{"deal_id": deal["id"]})
	call("pipedrive_update_deal", map[string]any{"deal_id": deal["id"], "value": 0, "expected_close_date": "2027-03-31", "probability": 60,
		"label_ids": []any{1}, "custom_fields": map[string]any{"Partner Center referral ID": "7c1e0e4a-55b1-4d8e-9a7e-3f1f0c2d9b10"}})
	call("pipedrive_list_deals", map[string]any{"pipeline_id": pipeline["id"], "limit": 5})
	call("pipedrive_list_deals", map[string]any{"pipeline_id": pipeline["id"], "limit": 5, "full": true})
	call("pipedrive_search_deals", map[string]any{"term": "Contoso"})
	call("pipedrive_update_deal_stage", map[string]any{"deal_id": deal["id"], "pipeline_id": pipeline["id"], "stage_id": second["id"]})
	act := call("pipedrive_add_activity", map[string]any{"type": "call", "subject": "Qualify", "deal_id": deal["id"], "due_date": "2027-01-15"})
	call("pipedrive_list_activities", map[string]any{"deal_id": deal["id"], "full": true})
	call("pipedrive_update_activity", map[string]any{"activity_id": act["id"], "done": true, "note": "Qualified: budget confirmed"})
	call("pipedrive_get_deal", map[string]any{"deal_id": deal["id"], "full": true})
	call("pipedrive_update_deal_status", map[string]any{"deal_id": deal["id"], "status": "won"})

	// Pipedrive: the customer's organization and contact, and a note on the deal.
	org := call("pipedrive_add_organization", map[string]any{"name": "Contoso Pharma", "address": "1 Microsoft Way, Redmond, WA 98052", "website": "https://contoso.example"})
	call("pipedrive_search_organizations", map[string]any{"term": "Contoso Pharma", "exact_match": true})
	call("pipedrive_get_organization", map[string]any{"org_id": org["id"], "full": true})
	call("pipedrive_update_organization", map[string]any{"org_id": org["id"], "owner_id": 2})
	person := call("pipedrive_add_person", map[string]any{"name": "Ana Silva", "org_id": org["id"], "emails": []any{"ana@contoso.example"}, "phones": []any{"+1 425 555 0100"}})
	call("pipedrive_search_persons", map[string]any{"term": "ana@contoso.example"})
	call("pipedrive_get_person", map[string]any{"person_id": person["id"], "full": true})
	call("pipedrive_update_person", map[string]any{"person_id": person["id"], "phones": []any{"+1 425 555 0199"}})
	call("pipedrive_add_note", map[string]any{"content": "Referral customer; Ana sponsors the migration.", "deal_id": deal["id"],
		"org_id": org["id"], "person_id": person["id"], "pin_to": []any{"deal"}})
	call("pipedrive_list_notes", map[string]any{"deal_id": deal["id"]})

	// Partner Center: accept an incoming referral, register and amend the deal.
	call("partnercenter_create_referral", map[string]any{"name": "Fabrikam — data estate", "type": "Independent", "customer": map[string]any{"name": "Fabrikam", "country": "US"}})
	row := first(call("partnercenter_list_referrals", map[string]any{"direction": "Incoming", "status": "New", "limit": 1})["referrals"])
	ref := call("partnercenter_get_referral", map[string]any{"id": row["id"]})["referral"].(map[string]any)
	ref = call("partnercenter_update_referral_fields", map[string]any{"id": ref["id"], "etag": ref["eTag"], "status": "Active", "substatus": "Accepted"})["referral"].(map[string]any)
	ref = call("partnercenter_create_deal_registration", map[string]any{"id": ref["id"], "etag": ref["eTag"],
		"contract":  map[string]any{"value": 120000, "currency": "USD", "term": "Perpetual", "start_date": "2027-01-01"},
		"solutions": []any{map[string]any{"id": "SOL-1001"}}})["referral"].(map[string]any)
	call("partnercenter_update_deal_registration", map[string]any{"id": ref["id"], "etag": ref["eTag"], "contract_value": 150000})

	// WorkSpan: discover, load, follow, find, link and audit.
	const integration = "int-crm-001"
	require.Equal(t, integration, first(call("workspan_list_integrations", nil)["integrations"])["integration_id"])
	up := call("workspan_bulk_load_opportunities", map[string]any{"integration_id": integration, "data": "name,stage,amount\nOutputs Opp,Qualify,10\n"})
	call("workspan_bulk_load_data", map[string]any{"integration_id": integration, "format": "json", "data": `[{"name":"Outputs row"}]`})
	call("workspan_bulk_load_data_file", map[string]any{"integration_id": integration, "filename": "rows.csv", "content_base64": "bmFtZQpPdXRwdXRzIGZpbGUK"})
	call("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "filename": "opps.csv", "content_base64": "bmFtZSxzdGFnZQpGaWxlIE9wcCxRdWFsaWZ5Cg=="})
	call("workspan_get_bulk_load_status", map[string]any{"integration_id": integration, "execution_ids": []any{first(up["executions"])["execution_id"]}})
	var report any
	for _, r := range call("workspan_list_reports", nil)["reports"].([]any) {
		if r.(map[string]any)["name"] == "Open pipeline" {
			report = r.(map[string]any)["id"]
		}
	}
	require.NotNil(t, report)
	object := fmt.Sprint(first(call("workspan_read_report_data", map[string]any{"report_id": report, "page_size": 5})["rows"])["opportunity_id"])
	call("workspan_connect_external_id", map[string]any{"object_id": object, "external_id": fmt.Sprint(deal["id"])})
	call("workspan_add_audit", map[string]any{"object_id": object, "status_code": "LINKED", "message": "Linked to the Pipedrive deal"})
	call("workspan_get_external_id", map[string]any{"object_id": object})

	// Triggers.
	call("trigger_start", map[string]any{"uri": "pipedrive://triggers/new-deals"})
	call("trigger_list", nil)
	call("trigger_read_events", map[string]any{"uri": "pipedrive://triggers/new-deals"})
	call("trigger_stop", map[string]any{"uri": "pipedrive://triggers/new-deals"})

	for _, name := range listedNames(t, c) {
		assert.True(t, called[name], "%s is listed but not exercised here: add it to the story", name)
	}
}

// listedNames are the names tools/list shows.
func listedNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}
