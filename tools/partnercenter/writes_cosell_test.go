package partnercenter_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// sent records the requests that reached the sandbox.
type sent struct {
	mu   sync.Mutex
	reqs []sentReq
}

type sentReq struct{ method, path, correlationID, body string }

func (s *sent) all() []sentReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sentReq(nil), s.reqs...)
}

// newRecordingHarness is newHarness with every request to the sandbox recorded.
func newRecordingHarness(t *testing.T) (*harness, *sent) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Clock: clock.NewFake(testNow)})
	rec := &sent{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, sentReq{r.Method, r.URL.Path, r.Header.Get("MS-CorrelationId"), string(body)})
		rec.mu.Unlock()
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	budgets := throttle.NewRegistry(throttle.Config{Limit: 1000})
	client := pc.New(pc.StaticToken(sandbox.DefaultToken), pc.WithBaseURL(sb.APIBase(ts.URL)),
		pc.WithHTTPClient(&http.Client{Transport: httpx.Chain(budgets.Budget(pctools.Toolset), http.DefaultTransport)}))
	reg := tools.NewRegistry()
	reg.Add(pctools.Tools(pctools.Static(client))...)
	return &harness{Client: toolstest.New(t, reg, tools.Policy{}, budgets), sandbox: sb, url: ts.URL}, rec
}

const solutionID = "SOL-1234-5678-9012"

// Microsoft's documented shared-referral (co-sell) procedure: create your
// own referral, targeted at your solution profile; then create a second,
// connected referral for Microsoft with the first one's engagementId,
// target msft and the solution, and an invite context saying what help
// you ask for. Every member sent is read back.
func TestSharedReferralProcedure(t *testing.T) {
	h, rec := newRecordingHarness(t)
	customer := map[string]any{
		"type": "Shared",
		"customer": map[string]any{"name": "Contoso Pharmaceuticals", "country": "us",
			"address": map[string]any{"line1": "1 Microsoft Way", "line2": "Building 92",
				"city": "Redmond", "state": "WA", "postal_code": "98052", "region": "NA"},
			"size": "1000to9999employees", "ids": map[string]any{"CRMId": "crm-0042"},
			"contacts": []any{map[string]any{"first_name": "Ana", "last_name": "Silva", "email": "ana@contoso.example",
				"phone": "+1 425 555 0100", "locale": "en-US", "disable_notifications": false}}},
		"team": []any{map[string]any{"first_name": "Sam", "last_name": "Seller", "email": "sam@fabrikam.example", "locale": "en-GB", "disable_notifications": true}},
		"details": map[string]any{"value": 0, "currency": "USD", "closing_date": "2027-03-31", "notes": "Lift and shift of 40 VMs.",
			"customer_action": "Migrate", "customer_requested_contact": true,
			"requirements": map[string]any{
				"industries": []any{"Healthcare"}, "products": []any{"Azure"}, "services": []any{"Migration"},
				"solutions":  []any{map[string]any{"id": solutionID, "name": "Fabrikam Migrate"}},
				"offers":     []any{map[string]any{"id": "offer-1"}},
				"attributes": []any{map[string]any{"id": "GxP", "type": "Compliance"}},
			}},
		"qualification": "None", "sales_stage": "Qualify", "referral_program": "Azure Migrate and Modernize",
		"status_reason":         "Opened from CRM",
		"consent":               map[string]any{"contact": true, "share_with_microsoft_sellers": true, "share_info_with_others": false},
		"external_reference_id": "crm-opp-7", "campaign_id": "FY27-AMM",
	}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range customer {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	var own pctools.CreateResult
	h.Call("partnercenter_create_referral", with(map[string]any{
		"name":   "Contoso — Azure migration",
		"target": []any{map[string]any{"type": pc.TargetSolutionProfile, "id": solutionID}},
	}), &own)
	require.NotEmpty(t, own.Referral.EngagementID)
	require.NotEmpty(t, own.CorrelationID, "a correlation id is generated and returned")

	corr := "0b7c9a52-5e0f-4c57-9d3e-6a1f2b3c4d5e"
	var msft pctools.CreateResult
	h.Call("partnercenter_create_referral", with(map[string]any{
		"name":          "Contoso — Azure migration (Microsoft)",
		"engagement_id": own.Referral.EngagementID,
		"target":        []any{map[string]any{"type": pc.TargetBusinessProfileLocation, "id": pc.TargetMicrosoft}},
		"invite_context": map[string]any{"notes": "Need a PoC with the Azure FastTrack team.",
			"invited_by":              map[string]any{"organization_id": "9c5f1b3e-6a3d-4f7b-9a1e-2b3c4d5e6f70", "organization_name": "Fabrikam"},
			"assistance_request_code": "ProofOfConceptOrDemo"},
		"correlation_id": corr,
	}), &msft)
	assert.Equal(t, corr, msft.CorrelationID)
	last := rec.all()[len(rec.all())-1]
	assert.Equal(t, http.MethodPost, last.method)
	assert.Equal(t, corr, last.correlationID, "the caller's correlation id is sent as MS-CorrelationId")

	var got pctools.ReferralResult
	h.Call("partnercenter_get_referral", map[string]any{"id": msft.Referral.ID}, &got)
	r := pc.Referral(got.Referral)
	assert.Equal(t, own.Referral.EngagementID, r.EngagementID, "connected to the partner's referral")
	assert.Equal(t, []pc.Target{{ID: "msft", Type: "BusinessProfileLocation"}}, r.Target)
	require.NotNil(t, r.InviteContext)
	assert.Equal(t, "Need a PoC with the Azure FastTrack team.", r.InviteContext.Notes)
	assert.Equal(t, "ProofOfConceptOrDemo", r.InviteContext.AssistanceRequestCode)
	assert.Equal(t, &pc.Organization{OrganizationID: "9c5f1b3e-6a3d-4f7b-9a1e-2b3c4d5e6f70", OrganizationName: "Fabrikam"}, r.InviteContext.InvitedBy)
	assert.Equal(t, "Shared", r.Type)
	assert.Equal(t, "Active", r.Status, "sent New/Pending, answered Active/Accepted as in the create-a-referral example")
	assert.Equal(t, "Accepted", r.Substatus)
	assert.Equal(t, "None", r.Qualification, "qualification None is sent")
	assert.Equal(t, "Qualify", r.SalesStage)
	assert.Equal(t, "Azure Migrate and Modernize", r.ReferralProgram)
	assert.Equal(t, "Opened from CRM", r.StatusReason)
	assert.Equal(t, "crm-opp-7", r.ExternalReferenceID)
	assert.Equal(t, "FY27-AMM", r.CampaignID)

	cp := r.CustomerProfile
	require.NotNil(t, cp)
	assert.Equal(t, "Contoso Pharmaceuticals", cp.Name)
	assert.Equal(t, "1000to9999employees", cp.Size)
	assert.JSONEq(t, `{"CRMId":"crm-0042"}`, string(cp.IDs))
	assert.Equal(t, &pc.Address{AddressLine1: "1 Microsoft Way", AddressLine2: "Building 92", City: "Redmond", State: "WA",
		PostalCode: "98052", Country: "US", Region: "NA"}, cp.Address)
	f := false
	tr := true
	assert.Equal(t, []pc.Member{{FirstName: "Ana", LastName: "Silva", Email: "ana@contoso.example", PhoneNumber: "+1 425 555 0100",
		ContactPreference: &pc.ContactPreference{Locale: "en-US", DisableNotifications: &f}}}, cp.Team)
	assert.Equal(t, []pc.Member{{FirstName: "Sam", LastName: "Seller", Email: "sam@fabrikam.example",
		ContactPreference: &pc.ContactPreference{Locale: "en-GB", DisableNotifications: &tr}}}, r.Team)

	require.NotNil(t, r.Consent)
	assert.Equal(t, &pc.Consent{ConsentToContact: &tr, ConsentToShareInfoWithOthers: &f, ConsentToShareReferralWithMicrosoftSellers: &tr}, r.Consent)

	d := r.Details
	require.NotNil(t, d)
	require.NotNil(t, d.DealValue, "a deal value of 0 is sent and stored")
	assert.Zero(t, *d.DealValue)
	assert.Equal(t, "USD", d.Currency)
	assert.Equal(t, "Lift and shift of 40 VMs.", d.Notes)
	assert.Contains(t, d.ClosingDateTime, "2027-03-31T00:00:00")
	assert.Equal(t, "Migrate", d.CustomerAction)
	assert.Equal(t, &tr, d.CustomerRequestedContact)
	rq := d.Requirements
	require.NotNil(t, rq)
	assert.Equal(t, []pc.IDRef{{ID: "Healthcare"}}, rq.Industries)
	assert.Equal(t, []pc.IDRef{{ID: "Azure"}}, rq.Products)
	assert.Equal(t, []pc.IDRef{{ID: "Migration"}}, rq.Services)
	require.Len(t, rq.Solutions, 1)
	assert.JSONEq(t, `{"id":"`+solutionID+`","name":"Fabrikam Migrate"}`, string(rq.Solutions[0]))
	require.Len(t, rq.Offers, 1)
	assert.JSONEq(t, `{"id":"offer-1"}`, string(rq.Offers[0]))
	assert.Equal(t, &pc.AdditionalRequirements{Attributes: []pc.Attribute{{ID: "GxP", Type: "Compliance"}}}, rq.AdditionalRequirements)

	// The engagement holds both referrals.
	var list pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"filter": "engagementId eq '" + own.Referral.EngagementID + "'"}, &list)
	var ids []string
	for _, row := range list.Referrals {
		ids = append(ids, row.ID)
	}
	assert.ElementsMatch(t, []string{own.Referral.ID, msft.Referral.ID}, ids)
}

// createOne creates a small referral and returns it.
func createOne(t *testing.T, h *harness, extra map[string]any) pctools.FullReferral {
	t.Helper()
	args := map[string]any{"name": "Ops test", "type": "Independent", "customer": map[string]any{"name": "Litware", "country": "DE"},
		"details": map[string]any{"notes": "first note", "value": 10, "currency": "EUR"}}
	for k, v := range extra {
		args[k] = v
	}
	var res pctools.CreateResult
	h.Call("partnercenter_create_referral", args, &res)
	return res.Referral
}

func TestUpdateOpsAddReplaceAndClear(t *testing.T) {
	h, rec := newRecordingHarness(t)
	ref := createOne(t, h, map[string]any{
		"team": []any{map[string]any{"first_name": "A", "last_name": "One", "email": "a@fabrikam.example"}},
		"details": map[string]any{"notes": "first note", "value": 10, "currency": "EUR",
			"requirements": map[string]any{"solutions": []any{map[string]any{"id": "SOL-1"}}}},
	})

	// add: appends to each list; notes cleared; 0 is a value.
	var upd pctools.WriteResult
	h.Call("partnercenter_update_referral_fields", map[string]any{
		"id": ref.ID, "etag": ref.ETag, "notes": "", "deal_value": 0, "status_reason": "", "referral_program": "CSP",
		"team":              map[string]any{"op": "add", "members": []any{map[string]any{"first_name": "B", "last_name": "Two", "email": "b@fabrikam.example", "locale": "de-DE"}}},
		"customer_contacts": map[string]any{"op": "add", "members": []any{map[string]any{"first_name": "C", "last_name": "Three", "email": "c@litware.example"}}},
		"solutions":         map[string]any{"op": "add", "items": []any{map[string]any{"id": "SOL-2"}}},
	}, &upd)
	r := pc.Referral(upd.Referral)
	assert.Empty(t, r.Details.Notes, "notes cleared")
	require.NotNil(t, r.Details.DealValue)
	assert.Zero(t, *r.Details.DealValue, "deal value 0 sent")
	assert.Equal(t, "CSP", r.ReferralProgram)
	require.Len(t, r.Team, 2)
	assert.Equal(t, "de-DE", r.Team[1].ContactPreference.Locale)
	require.Len(t, r.CustomerProfile.Team, 1)
	require.Len(t, r.Details.Requirements.Solutions, 2)
	assert.JSONEq(t, `{"id":"SOL-2"}`, string(r.Details.Requirements.Solutions[1]))
	require.NotEmpty(t, upd.CorrelationID)
	last := rec.all()[len(rec.all())-1]
	assert.Equal(t, http.MethodPatch, last.method)
	assert.Equal(t, upd.CorrelationID, last.correlationID)

	// replace: sets whole lists; an empty list clears.
	var rep pctools.WriteResult
	h.Call("partnercenter_update_referral_fields", map[string]any{
		"id": r.ID, "etag": r.ETag, "sales_stage": "Develop", "share_with_microsoft_sellers": true,
		"team":              map[string]any{"op": "replace", "members": []any{map[string]any{"first_name": "Z", "last_name": "Last", "email": "z@fabrikam.example"}}},
		"customer_contacts": map[string]any{"op": "replace", "members": []any{}},
		"solutions":         map[string]any{"op": "replace", "items": []any{map[string]any{"id": "SOL-9", "name": "Nine"}}},
	}, &rep)
	r = pc.Referral(rep.Referral)
	require.Len(t, r.Team, 1)
	assert.Equal(t, "Z", r.Team[0].FirstName)
	assert.Empty(t, r.CustomerProfile.Team)
	require.Len(t, r.Details.Requirements.Solutions, 1)
	assert.JSONEq(t, `{"id":"SOL-9","name":"Nine"}`, string(r.Details.Requirements.Solutions[0]))
	assert.Equal(t, "Develop", r.SalesStage)
	require.NotNil(t, r.Consent.ConsentToShareReferralWithMicrosoftSellers)
	assert.True(t, *r.Consent.ConsentToShareReferralWithMicrosoftSellers)

	// The old single-member argument still works.
	var old pctools.WriteResult
	h.Call("partnercenter_update_referral_fields", map[string]any{"id": r.ID, "etag": r.ETag,
		"add_team_member": map[string]any{"first_name": "Y", "last_name": "Old", "email": "y@fabrikam.example"}}, &old)
	assert.Len(t, old.Referral.Team, 2)

	// A caller's correlation id goes out on the write.
	corr := "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
	var c pctools.WriteResult
	h.Call("partnercenter_update_referral_fields", map[string]any{"id": r.ID, "etag": old.Referral.ETag, "campaign_id": "", "correlation_id": corr}, &c)
	assert.Equal(t, corr, c.CorrelationID)
	last = rec.all()[len(rec.all())-1]
	assert.Equal(t, corr, last.correlationID)
}

func TestWriteRefusalsSendNothing(t *testing.T) {
	h, _ := newRecordingHarness(t)
	ref := createOne(t, h, nil)
	before := h.sandbox.RequestCount()
	updates := []map[string]any{
		{"team": map[string]any{"op": "remove", "members": []any{}}},
		{"solutions": map[string]any{"op": "remove", "items": []any{map[string]any{"id": "SOL-1"}}}},
		{"team": map[string]any{"op": "add", "members": []any{}}},
		{"solutions": map[string]any{"op": "add", "items": []any{map[string]any{}}}},
		{"team": map[string]any{"op": "replace", "members": []any{}}, "add_team_member": map[string]any{"first_name": "a", "last_name": "b", "email": "a@b.example"}},
		{"closing_date": "2027-02-30"},
		{"deal_value": -1},
		{"sales_stage": "Won"},
		{"status": "Closed", "substatus": "Accepted"},
		{"correlation_id": "not-a-guid", "notes": "x"},
		{},
	}
	for _, u := range updates {
		args := map[string]any{"id": ref.ID, "etag": ref.ETag}
		for k, v := range u {
			args[k] = v
		}
		e := h.CallErr("partnercenter_update_referral_fields", args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%v: %s", u, e.Message)
	}
	assert.Equal(t, before, h.sandbox.RequestCount(), "nothing is sent on a bad update")
	creates := []map[string]any{
		{"status": "Active"},                            // needs a substatus
		{"status": "New", "substatus": "Won"},           // not a New substatus
		{"qualification": "Hot"},                        // not an enum value
		{"engagement_id": "not-a-guid"},                 // not a GUID
		{"target": []any{map[string]any{"id": "msft"}}}, // no type
		{"invite_context": map[string]any{"assistance_request_code": "Help"}},
		{"details": map[string]any{"requirements": map[string]any{"solutions": []any{map[string]any{}}}}},
		{"details": map[string]any{"value": -5}},
		{"customer": map[string]any{"name": "Nobody", "country": "USA"}},
		{"customer": map[string]any{"name": "Nobody", "country": "US", "address": map[string]any{"street": "1 Main St"}}},
	}
	base := func() map[string]any {
		return map[string]any{"name": "Refused", "type": "Shared", "customer": map[string]any{"name": "Nobody", "country": "US"}}
	}
	// The base arguments alone are valid (so each case is refused for its own change).
	var ok pctools.CreateResult
	h.Call("partnercenter_create_referral", base(), &ok)
	before = h.sandbox.RequestCount()
	for _, c := range creates {
		args := base()
		for k, v := range c {
			args[k] = v
		}
		e := h.CallErr("partnercenter_create_referral", args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%v: %s", c, e.Message)
	}
	assert.Equal(t, before, h.sandbox.RequestCount(), "nothing is sent on a bad argument")
}

func TestCreateWithStatusAndDealValues(t *testing.T) {
	h, _ := newRecordingHarness(t)
	ref := createOne(t, h, map[string]any{"status": "Active", "substatus": "Accepted", "details": map[string]any{"value": 0}, "qualification": "None"})
	assert.Equal(t, "Active", ref.Status)
	assert.Equal(t, "Accepted", ref.Substatus)
	require.NotNil(t, ref.Details.DealValue)
	assert.Zero(t, *ref.Details.DealValue)

	var reg pctools.CreateResult
	h.Call("partnercenter_create_deal_registration", map[string]any{"id": ref.ID, "etag": ref.ETag,
		"contract":  map[string]any{"value": 0, "currency": "EUR", "term": "Perpetual", "start_date": "2027-01-01"},
		"solutions": []any{map[string]any{"id": "SOL-1", "value": 0}}}, &reg)
	require.Len(t, reg.Referral.Registrations, 1)
	require.NotNil(t, reg.Referral.Registrations[0].SolutionDetails[0].Value, "a solution value of 0 is sent")
	assert.NotEmpty(t, reg.CorrelationID)

	var upd pctools.WriteResult
	h.Call("partnercenter_update_deal_registration", map[string]any{"id": ref.ID, "etag": reg.Referral.ETag,
		"contract_value": 0, "solution_value": 0}, &upd)
	assert.Zero(t, *upd.Referral.Registrations[0].Contract.Value)
	assert.Zero(t, *upd.Referral.Registrations[0].SolutionDetails[0].Value)
	assert.NotEmpty(t, upd.CorrelationID)
}

// Every Partner Center tool takes the caller's correlation_id, sends it as
// MS-CorrelationId on each of its requests, and returns it — in the result,
// and in the error when the call fails; without one, a new id is generated
// and returned.
func TestCorrelationIDOnEveryTool(t *testing.T) {
	h, rec := newRecordingHarness(t)
	ref := createOne(t, h, nil)
	sentSince := func(n int) []sentReq { return rec.all()[n:] }

	corr := "5d9c1f0e-2b7a-4c3d-8e9f-0a1b2c3d4e5f"
	n := len(rec.all())
	var list pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"limit": 1, "correlation_id": corr}, &list)
	assert.Equal(t, corr, list.CorrelationID)
	for _, r := range sentSince(n) {
		assert.Equal(t, corr, r.correlationID, "%s %s", r.method, r.path)
	}

	n = len(rec.all())
	var got pctools.GetResult
	h.Call("partnercenter_get_referral", map[string]any{"id": ref.ID, "correlation_id": corr}, &got)
	assert.Equal(t, corr, got.CorrelationID)
	assert.Equal(t, ref.ID, got.Referral.ID)
	require.Len(t, sentSince(n), 1)
	assert.Equal(t, corr, sentSince(n)[0].correlationID)

	// Generated when not given: a GUID, the same on every request of the call.
	n = len(rec.all())
	h.Call("partnercenter_get_referral", map[string]any{"id": ref.ID}, &got)
	assert.Regexp(t, `^[0-9a-f-]{36}$`, got.CorrelationID)
	assert.Equal(t, got.CorrelationID, sentSince(n)[0].correlationID)

	// A failing call's error carries it, for a support case.
	e := h.CallErr("partnercenter_get_referral", map[string]any{"id": "00000000-0000-0000-0000-000000000000", "correlation_id": corr})
	assert.Equal(t, tools.CodeNotFound, e.Code, e.Message)
	assert.Contains(t, e.Message, "referral 00000000-0000-0000-0000-000000000000 not found; find referrals with partnercenter_list_referrals")
	assert.Equal(t, corr, e.CorrelationID)
	e = h.CallErr("partnercenter_update_referral_fields", map[string]any{"id": ref.ID, "etag": "stale", "notes": "x", "correlation_id": corr})
	assert.Equal(t, tools.CodeConflict, e.Code, e.Message)
	assert.Equal(t, corr, e.CorrelationID)

	// Every Partner Center tool declares the argument.
	for _, tl := range pctools.Tools(nil) {
		var s struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(tl.InputSchema, &s))
		assert.Contains(t, s.Properties, "correlation_id", tl.Name)
	}
}

// Members newer than the connector definition (the REST docs' services
// co-sell fields) are sent as given; one the tool sends from its own
// argument is refused before any call.
func TestCreateSendsExtraMembers(t *testing.T) {
	h, rec := newRecordingHarness(t)
	createOne(t, h, map[string]any{"extra": map[string]any{
		"partnerRole": "ServicesPartner", "solutionArea": "AI Business Solutions", "solutionPlay": map[string]any{"id": "Copilot"}}})
	var post sentReq
	for _, r := range rec.all() {
		if r.method == http.MethodPost {
			post = r
		}
	}
	var sentBody map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(post.body), &sentBody))
	assert.JSONEq(t, `"ServicesPartner"`, string(sentBody["partnerRole"]))
	assert.JSONEq(t, `"AI Business Solutions"`, string(sentBody["solutionArea"]))
	assert.JSONEq(t, `{"id":"Copilot"}`, string(sentBody["solutionPlay"]))
	assert.JSONEq(t, `"Ops test"`, string(sentBody["name"]))

	before := h.sandbox.RequestCount()
	e := h.CallErr("partnercenter_create_referral", map[string]any{"name": "X", "type": "Shared",
		"customer": map[string]any{"name": "Y", "country": "US"}, "extra": map[string]any{"name": "Z"}})
	assert.Equal(t, tools.CodeInvalidArgument, e.Code)
	assert.Contains(t, e.Message, "extra.name")
	assert.Equal(t, before, h.sandbox.RequestCount())
}
