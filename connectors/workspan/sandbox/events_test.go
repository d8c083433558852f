package sandbox

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventMetadata(t *testing.T) {
	e := newEnv(t, Options{})
	ints := e.get("/event/v1/metadata/integration").ok(t, http.StatusOK)["integrations"].([]any)
	require.Len(t, ints, 3)
	assert.Equal(t, map[string]any{
		"integration_id": "int-crm-001", "integration_type": "CRM", "name": "Salesforce CRM",
		"description": "Opportunities and accounts synchronised with the CRM",
	}, ints[0])
	var ids []string
	for _, in := range ints {
		ids = append(ids, in.(map[string]any)["integration_id"].(string))
	}
	assert.Equal(t, []string{"int-crm-001", "int-pc-001", "int-mkt-001"}, ids)

	schema := e.get("/event/v1/metadata/integration/int-pc-001").ok(t, http.StatusOK)["schema"].(map[string]any)
	assert.Equal(t, "object", schema["type"])
	assert.Contains(t, schema["properties"], "partner_center_referral_id")
	assert.Contains(t, schema["properties"], "object_id")
	e.get("/event/v1/metadata/integration/int-nope").failed(t, http.StatusNotFound)

	events := e.get("/event/v1/metadata/event").ok(t, http.StatusOK)["events"].([]any)
	var names []string
	for _, ev := range events {
		m := ev.(map[string]any)
		assert.NotEmpty(t, m["description"])
		names = append(names, m["name"].(string))
	}
	for _, want := range []string{"object.all", "object.create", "object.update", "object.delete", "object.stage_change",
		"object.partner_center_referral_submit", "report.submit", "task.create", "comment.create"} {
		assert.Contains(t, names, want)
	}
	for _, name := range names {
		s := e.get("/event/v1/metadata/event/"+name).ok(t, http.StatusOK)["schema"].(map[string]any)
		assert.Equal(t, "object", s["type"], name)
		assert.NotEmpty(t, s["properties"], name)
	}
	e.get("/event/v1/metadata/event/object.explode").failed(t, http.StatusNotFound)
}

func validSubscriber() map[string]any {
	return map[string]any{
		"integration_id":   "int-crm-001",
		"event":            []any{"object.create", "object.stage_change"},
		"name":             "Stage changes to Teams",
		"subscriber_type":  "webhook",
		"webhook_settings": map[string]any{"callback_url": "https://flows.example.test/hook?sig=abc"},
		"filters":          `(stage in [ "closed", "won", "lost" ]) AND (sales_details.partner = "P1")`,
	}
}

func TestSubscriberLifecycle(t *testing.T) {
	e := newEnv(t, Options{})
	opp := e.opportunityIDs()[0]
	body := validSubscriber()
	body["object_ids"] = []any{opp}
	r := e.call(http.MethodPost, "/event/v1/subscriber", body)
	created := r.ok(t, http.StatusOK)
	id := created["subscriber_id"].(string)
	require.NotEmpty(t, id)
	assert.Equal(t, e.ts.URL+"/event/v1/subscriber/"+id, r.header.Get("Location"))

	got := e.get("/event/v1/subscriber/"+id).ok(t, http.StatusOK)
	assert.Equal(t, map[string]any{
		"subscriber_id":   id,
		"name":            "Stage changes to Teams",
		"objectids":       []any{opp},
		"event":           []any{"object.create", "object.stage_change"},
		"filters":         body["filters"],
		"integraion_id":   "int-crm-001",
		"subscriber_type": "webhook",
	}, got)

	// A collaboration event as a plain string, without an integration, on the connector alias.
	r = e.call(http.MethodPost, "/event/v1/subscriber", map[string]any{
		"event": "task.create", "name": "Tasks", "subscriber_type": "webhook",
		"webhook_settings": map[string]any{"callback_url": "http://localhost:8080/cb"},
	})
	second := r.ok(t, http.StatusOK)["subscriber_id"].(string)
	got = e.get("/event/v1/subscriber/"+second).ok(t, http.StatusOK)
	assert.Equal(t, []any{"task.create"}, got["event"])
	assert.Equal(t, []any{}, got["objectids"])
	assert.Equal(t, "", got["integraion_id"])

	pc := validSubscriber()
	pc["event"] = "object.partner_center_referral_submit"
	third := e.call(http.MethodPost, "/event/v1/subscriber/submit_to_partner_center", pc).ok(t, http.StatusOK)["subscriber_id"].(string)

	subs := e.srv.Subscribers()
	require.Len(t, subs, 3)
	assert.Equal(t, id, subs[0].ID)
	assert.Equal(t, "https://flows.example.test/hook?sig=abc", subs[0].CallbackURL)
	assert.Equal(t, testNow, subs[0].CreatedAt)
	assert.Equal(t, []string{opp}, subs[0].ObjectIDs)
	assert.Equal(t, third, subs[2].ID)
	subs[0].Events[0] = "mutated"
	assert.Equal(t, "object.create", e.srv.Subscribers()[0].Events[0], "Subscribers returns copies")

	// Delete: 200 with an empty body, then 404.
	del := e.call(http.MethodDelete, "/event/v1/subscriber/"+id, nil)
	require.Equal(t, http.StatusOK, del.status)
	assert.Empty(t, del.raw)
	e.get("/event/v1/subscriber/"+id).failed(t, http.StatusNotFound)
	e.call(http.MethodDelete, "/event/v1/subscriber/"+id, nil).failed(t, http.StatusNotFound)
	assert.Len(t, e.srv.Subscribers(), 2)
	e.call(http.MethodPut, "/event/v1/subscriber/"+second, nil).failed(t, http.StatusMethodNotAllowed)
}

func TestSubscriberValidation(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		name string
		mod  func(m map[string]any)
		want string
	}{
		{"no name", func(m map[string]any) { delete(m, "name") }, "name"},
		{"blank name", func(m map[string]any) { m["name"] = " " }, "name"},
		{"no event", func(m map[string]any) { delete(m, "event") }, "event"},
		{"empty event list", func(m map[string]any) { m["event"] = []any{} }, "event"},
		{"unknown event", func(m map[string]any) { m["event"] = "object.explode" }, "object.explode"},
		{"unknown event in list", func(m map[string]any) { m["event"] = []any{"object.all", "deal.won"} }, "deal.won"},
		{"non-string event", func(m map[string]any) { m["event"] = []any{1} }, "event"},
		{"event object", func(m map[string]any) { m["event"] = map[string]any{} }, "event"},
		{"no subscriber_type", func(m map[string]any) { delete(m, "subscriber_type") }, "subscriber_type"},
		{"other subscriber_type", func(m map[string]any) { m["subscriber_type"] = "email" }, "subscriber_type"},
		{"no webhook_settings", func(m map[string]any) { delete(m, "webhook_settings") }, "webhook_settings"},
		{"webhook_settings not an object", func(m map[string]any) { m["webhook_settings"] = "https://x.test" }, "webhook_settings"},
		{"no callback_url", func(m map[string]any) { m["webhook_settings"] = map[string]any{} }, "callback_url"},
		{"relative callback_url", func(m map[string]any) { m["webhook_settings"] = map[string]any{"callback_url": "/hook"} }, "callback_url"},
		{"ftp callback_url", func(m map[string]any) { m["webhook_settings"] = map[string]any{"callback_url": "ftp://x.test/hook"} }, "callback_url"},
		{"callback_url without host", func(m map[string]any) { m["webhook_settings"] = map[string]any{"callback_url": "https:///hook"} }, "callback_url"},
		{"unknown integration", func(m map[string]any) { m["integration_id"] = "int-nope" }, "int-nope"},
		{"object event without integration", func(m map[string]any) { delete(m, "integration_id") }, "integration_id"},
		{"unknown object id", func(m map[string]any) { m["object_ids"] = []any{"111111111111111111"} }, "111111111111111111"},
		{"object_ids not strings", func(m map[string]any) { m["object_ids"] = []any{7} }, "object_ids"},
		{"filters not a string", func(m map[string]any) { m["filters"] = map[string]any{"stage": "won"} }, "filters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := validSubscriber()
			c.mod(body)
			assert.Contains(t, e.call(http.MethodPost, "/event/v1/subscriber", body).failed(t, http.StatusBadRequest), c.want)
		})
	}
	e.call(http.MethodPost, "/event/v1/subscriber", "[]", "Content-Type", "application/json").failed(t, http.StatusBadRequest)
	e.call(http.MethodPost, "/event/v1/subscriber", nil).failed(t, http.StatusBadRequest)
	assert.Empty(t, e.srv.Subscribers())
}

// The integration schema tells the truth about bulk loads: a row with a
// value for each field that is not readOnly loads, one without a required
// field or with a stage outside the enum is a row error.
func TestIntegrationSchemaDescribesBulkRows(t *testing.T) {
	e := newEnv(t, Options{})
	schema := e.get("/event/v1/metadata/integration/int-crm-001").ok(t, http.StatusOK)["schema"].(map[string]any)
	props := schema["properties"].(map[string]any)
	assert.Equal(t, []any{"opportunity"}, props["object_type"].(map[string]any)["enum"])
	var stageEnum []string
	for _, v := range props["stage"].(map[string]any)["enum"].([]any) {
		stageEnum = append(stageEnum, v.(string))
	}
	assert.Equal(t, []string{"Prospect", "Qualify", "Develop", "Propose", "Closed Won", "Closed Lost"}, stageEnum)

	row := map[string]any{}
	for name, p := range props {
		p := p.(map[string]any)
		if p["readOnly"] == true {
			continue
		}
		switch {
		case p["enum"] != nil:
			row[name] = p["enum"].([]any)[0]
		case p["type"] == "number":
			row[name] = 10
		case p["format"] == "date":
			row[name] = "2027-01-31"
		case p["pattern"] != nil:
			row[name] = "EUR"
		default:
			row[name] = "Schema row " + name
		}
	}
	var required []string
	for _, r := range schema["required"].([]any) {
		if props[r.(string)].(map[string]any)["readOnly"] != true {
			required = append(required, r.(string))
		}
	}
	assert.Equal(t, []string{"name", "stage"}, required)

	rows := []any{row}
	for _, r := range required {
		without := map[string]any{}
		for k, v := range row {
			if k != r && k != "crm_opportunity_id" {
				without[k] = v
			}
		}
		rows = append(rows, without)
	}
	badStage := map[string]any{"name": "Bad stage", "stage": "Negotiate"}
	rows = append(rows, badStage)
	_, st := e.load("/bulk/v1/bulkload?integration_id=int-crm-001&data_format=json", rows)
	assert.EqualValues(t, 1, st["succcess_count"], "%v", st["errors"])
	errs := errorsOf(st)
	require.Len(t, errs, 3)
	assert.Equal(t, "Missing value of required field 'name'", errs[0]["message"])
	assert.Equal(t, "Missing value of required field 'stage'", errs[1]["message"])
	assert.Equal(t, "invalid value in field 'stage'", errs[2]["message"])
}
