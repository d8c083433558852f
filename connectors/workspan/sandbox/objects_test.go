package sandbox

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExternalID(t *testing.T) {
	e := newEnv(t, Options{})
	opp := e.opportunityIDs()[1] // odd index: seeded without a CRM id
	path := "/app/v1/object/" + opp + "/external_id"

	got := e.get(path).ok(t, http.StatusOK)
	assert.Equal(t, opp, got["object_id"])
	before := 0
	for _, x := range got["external_ids"].([]any) {
		if x.(map[string]any)["field_name"] != fieldCRMOpportunityID {
			before++
		}
	}

	r := e.call(http.MethodPatch, path, map[string]any{"external_id": "006000000000123"}).ok(t, http.StatusOK)
	assert.Equal(t, map[string]any{"external_id": "006000000000123", "object_id": opp, "field_name": fieldCRMOpportunityID}, r)

	got = e.get(path).ok(t, http.StatusOK)
	ids := got["external_ids"].([]any)
	require.Len(t, ids, before+1)
	assert.Contains(t, ids, map[string]any{"field_name": fieldCRMOpportunityID, "external_id": "006000000000123"})

	// Another field, then replacing the default one.
	e.call(http.MethodPatch, path, map[string]any{"external_id": "X-1", "field_name": "custom.erp_id"}).ok(t, http.StatusOK)
	e.call(http.MethodPatch, path, map[string]any{"external_id": "006000000000999", "field_name": ""}).ok(t, http.StatusOK)
	doc, found := e.srv.Object(opp)
	require.True(t, found)
	ext := doc["external_ids"].(map[string]any)
	assert.Equal(t, "006000000000999", ext[fieldCRMOpportunityID])
	assert.Equal(t, "X-1", ext["custom.erp_id"])

	// Accounts default to account_info.external_account_id.
	acct := e.accountID()
	r = e.call(http.MethodPatch, "/app/v1/object/"+acct+"/external_id", map[string]any{"external_id": "001ACME"}).ok(t, http.StatusOK)
	assert.Equal(t, fieldExternalAccountID, r["field_name"])

	// Errors.
	e.get("/app/v1/object/123456789012345678/external_id").failed(t, http.StatusNotFound)
	e.call(http.MethodPatch, "/app/v1/object/123456789012345678/external_id", map[string]any{"external_id": "x"}).failed(t, http.StatusNotFound)
	assert.Contains(t, e.call(http.MethodPatch, path, map[string]any{"field_name": fieldCRMOpportunityID}).failed(t, http.StatusBadRequest), "external_id")
	e.call(http.MethodPatch, path, map[string]any{"external_id": "  "}).failed(t, http.StatusBadRequest)
	e.call(http.MethodPatch, path, map[string]any{"external_id": 42}).failed(t, http.StatusBadRequest)
	e.call(http.MethodPatch, path, map[string]any{"external_id": "x", "field_name": "bad field!"}).failed(t, http.StatusBadRequest)
	e.call(http.MethodPatch, path, "not json", "Content-Type", "application/json").failed(t, http.StatusBadRequest)
	e.call(http.MethodPatch, path, nil).failed(t, http.StatusBadRequest)
}

func TestAudit(t *testing.T) {
	e := newEnv(t, Options{})
	opp := e.opportunityIDs()[1]
	path := "/app/v1/object/" + opp + "/audit"
	valid := func() map[string]any {
		return map[string]any{
			"field_name": fieldIntegrationStatus, "status_code": "SCHEDULED", "message": "Queued for Partner Center",
			"integration_id": "int-pc-001",
		}
	}

	r := e.call(http.MethodPatch, path, valid()).ok(t, http.StatusOK)
	assert.Equal(t, map[string]any{"object_id": opp, "field_name": fieldIntegrationStatus, "status_code": "SCHEDULED"}, r)

	linked := valid()
	linked["status_code"], linked["message"], linked["external_id"] = "LINKED", "Referral created", "a1b2c3d4-0000-0000-0000-000000000001"
	e.clock.Advance(60_000_000_000)
	e.call(http.MethodPatch, path, linked).ok(t, http.StatusOK)

	doc, _ := e.srv.Object(opp)
	audit := doc["audit"].([]any)
	require.Len(t, audit, 2)
	assert.Equal(t, "SCHEDULED", audit[0].(map[string]any)["status_code"])
	last := audit[1].(map[string]any)
	assert.Equal(t, "LINKED", last["status_code"])
	assert.Equal(t, "Referral created", last["message"])
	assert.Equal(t, "int-pc-001", last["integration_id"])
	assert.Equal(t, "2026-09-15T12:01:00.000Z", last["created_at"])
	assert.Equal(t, map[string]any{"integration_status": "LINKED"}, doc["partner_center"])
	assert.Equal(t, "a1b2c3d4-0000-0000-0000-000000000001", doc["external_ids"].(map[string]any)[fieldReferralID])

	bad := []struct {
		name string
		mod  func(m map[string]any)
		want string
	}{
		{"no field_name", func(m map[string]any) { delete(m, "field_name") }, "field_name"},
		{"other field_name", func(m map[string]any) { m["field_name"] = "stage" }, "field_name"},
		{"no status_code", func(m map[string]any) { delete(m, "status_code") }, "status_code"},
		{"bad status_code", func(m map[string]any) { m["status_code"] = "DONE" }, "status_code"},
		{"lower-case status_code", func(m map[string]any) { m["status_code"] = "linked" }, "status_code"},
		{"no message", func(m map[string]any) { delete(m, "message") }, "message"},
		{"empty message", func(m map[string]any) { m["message"] = "" }, "message"},
		{"numeric integration_id", func(m map[string]any) { m["integration_id"] = 7 }, "integration_id"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			body := valid()
			c.mod(body)
			assert.Contains(t, e.call(http.MethodPatch, path, body).failed(t, http.StatusBadRequest), c.want)
		})
	}
	doc, _ = e.srv.Object(opp)
	assert.Len(t, doc["audit"].([]any), 2, "failed requests store nothing")

	e.call(http.MethodPatch, "/app/v1/object/999/audit", valid()).failed(t, http.StatusNotFound)
	e.call(http.MethodGet, path, nil).failed(t, http.StatusMethodNotAllowed)
}
