package partnercenter_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

const rowsReferral = `{"id":"r1","name":"Contoso","status":"New","substatus":"Pending","direction":"Incoming",
"createdDateTime":"2026-09-01T10:00:00Z","expirationDateTime":"2026-10-01T10:00:00Z","eTag":"\"e1\"",
"inviteContext":{"invitedBy":{"organizationId":"org-1","organizationName":"Fabrikam"}},
"customerProfile":{"name":"Contoso","ids":["DUNS-123",{"type":"TPID","id":"42"},7],"address":{"country":"US"}},
"details":{"dealValue":1000,"currency":"USD","requirements":{"solutions":["SOL-1",{"id":"SOL-2"},null],"offers":[3,"offer-x"]}}}`

// Full output keeps customerProfile.ids and requirement items whatever
// their JSON type; rows carry the sender and the expiry.
func TestReferralRowsAndFullOutput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/referrals") {
			_, _ = w.Write([]byte(`{"value":[` + rowsReferral + `]}`))
			return
		}
		_, _ = w.Write([]byte(rowsReferral))
	}))
	t.Cleanup(srv.Close)
	client := pc.New(pc.StaticToken("t"), pc.WithBaseURL(srv.URL+"/v1.0/engagements"))
	reg := tools.NewRegistry()
	reg.Add(pctools.Tools(pctools.Static(client))...)
	h := toolstest.New(t, reg, tools.Policy{}, throttle.NewRegistry(throttle.Config{Limit: 100}))

	var rows pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{}, &rows)
	require.Len(t, rows.Referrals, 1)
	row := rows.Referrals[0]
	assert.Equal(t, "Fabrikam", row.InvitedBy)
	assert.Equal(t, "2026-10-01T10:00:00Z", row.Expires)
	assert.Equal(t, "New", row.Status)
	assert.Equal(t, "US", row.Country)
	assert.Equal(t, "Contoso", row.CustomerName)
	assert.Equal(t, 1000.0, row.DealValue)
	assert.False(t, rows.HasMore)

	var full pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"full": true}, &full)
	require.Len(t, full.Full, 1)
	var got pctools.ReferralResult
	h.Call("partnercenter_get_referral", map[string]any{"id": "r1"}, &got)
	for _, r := range []pctools.FullReferral{full.Full[0], got.Referral} {
		assert.JSONEq(t, `["DUNS-123",{"type":"TPID","id":"42"},7]`, string(r.CustomerProfile.IDs))
		b, err := json.Marshal(r.Details.Requirements)
		require.NoError(t, err)
		assert.JSONEq(t, `{"solutions":["SOL-1",{"id":"SOL-2"},null],"offers":[3,"offer-x"]}`, string(b))
		assert.Equal(t, "Fabrikam", r.InviteContext.InvitedBy.OrganizationName)
	}

	// The id stands in for a sender without a name.
	r := pctools.RowOf(pc.Referral{ID: "x", InviteContext: &pc.InviteContext{InvitedBy: &pc.Organization{OrganizationID: "org-2"}}})
	assert.Equal(t, "org-2", r.InvitedBy)
}
