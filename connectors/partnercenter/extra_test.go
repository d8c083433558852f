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

// Deeper objects keep their undeclared members too: the documented
// create example's additionalRequirements.iot and consent flag the
// definition lacks, a contact's extra member, an invite's, a target's and
// a registration's contract and solutions.
func TestNestedObjectsKeepUndeclaredMembers(t *testing.T) {
	in := `{"id":"r2",
	  "consent":{"consentToContact":true,"ConsentToMicrosoftToContactSpecificPartners":true},
	  "customerProfile":{"name":"Contoso","address":{"city":"Redmond","county":"King"},
	    "team":[{"firstName":"Ana","title":"CTO","contactPreference":{"locale":"en-US","channel":"email"}}]},
	  "details":{"requirements":{"industries":[{"id":"Health"}],"segment":"SMB",
	    "additionalRequirements":{"iot":{},"attributes":[{"id":"HaveNotDecided","type":"CustomerMarketplaceIntent"}]}}},
	  "inviteContext":{"notes":"n","invitedBy":{"organizationId":"o1","country":"US"},"channel":"api"},
	  "target":[{"id":"msft","type":"BusinessProfileLocation","role":"Seller"}],
	  "trackingInfo":{"microsoftMsxId":"7-ABC","dealId":"D1"},
	  "registrations":[{"id":"g1","contract":{"value":1,"renewal":true},
	    "solutionDetails":[{"id":"SOL-1","publisherName":"Fabrikam","marketplaceTransactionDetails":{"isMarketplaceTransacted":false,"offerId":"x"}}],
	    "statusHistory":{"passedDateTime":"2027-01-01T00:00:00Z","escalatedDateTime":"2027-01-02T00:00:00Z"}}]}`
	var r partnercenter.Referral
	require.NoError(t, json.Unmarshal([]byte(in), &r))
	assert.Equal(t, "Redmond", r.CustomerProfile.Address.City)
	assert.JSONEq(t, `{}`, string(r.Details.Requirements.AdditionalRequirements.Extra["iot"]))
	assert.Equal(t, "CustomerMarketplaceIntent", r.Details.Requirements.AdditionalRequirements.Attributes[0].Type)
	out, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, in, string(out), "every member returned survives decode and encode")
}
