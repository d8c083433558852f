package partnercenter_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
)

// Members the model does not declare survive a decode and encode, at the top level and in
// nested objects, without duplicating declared ones.
func TestReferralKeepsUndeclaredMembers(t *testing.T) {
	in := `{"id":"r1","status":"Active","solutionArea":"AI","partnerRole":{"name":"Services"},
	  "customerProfile":{"name":"Contoso","crmAccountId":"A-1"},
	  "details":{"dealValue":5,"estimatedSeats":40},
	  "registrations":[{"id":"g1","reviewer":"msft"}]}`
	var r partnercenter.Referral
	require.NoError(t, json.Unmarshal([]byte(in), &r))
	assert.Equal(t, "r1", r.ID)
	assert.Equal(t, "Active", r.Status)
	assert.Equal(t, "Contoso", r.CustomerProfile.Name)
	assert.Equal(t, 5.0, *r.Details.DealValue)
	assert.JSONEq(t, `"AI"`, string(r.Extra["solutionArea"]))
	assert.Len(t, r.Extra, 2, "declared members are not in Extra")
	assert.JSONEq(t, `"A-1"`, string(r.CustomerProfile.Extra["crmAccountId"]))
	assert.JSONEq(t, `40`, string(r.Details.Extra["estimatedSeats"]))
	assert.JSONEq(t, `"msft"`, string(r.Registrations[0].Extra["reviewer"]))

	out, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, in, string(out))
	assert.Equal(t, 1, strings.Count(string(out), `"id":"r1"`))

	// An Extra entry that shadows a declared member is not written twice.
	r.Extra["status"] = json.RawMessage(`"New"`)
	out, err = json.Marshal(r)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(out), `"status"`))
	assert.Contains(t, string(out), `"status":"Active"`)

	// An empty model with extras is still a valid object.
	out, err = json.Marshal(partnercenter.Referral{Extra: partnercenter.Extra{"x": json.RawMessage(`1`)}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"x":1}`, string(out))
}
