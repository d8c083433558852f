package partnercenter_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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

// testNow is the sandbox's fixed time: its seed data is relative to it.
var testNow = time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC)

type harness struct {
	*toolstest.Client
	sandbox *sandbox.Server
	url     string
}

func newHarness(t *testing.T, policy tools.Policy) *harness {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Clock: clock.NewFake(testNow)})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	budgets := throttle.NewRegistry(throttle.Config{Limit: 100})
	client := pc.New(pc.StaticToken(sandbox.DefaultToken), pc.WithBaseURL(sb.APIBase(ts.URL)),
		pc.WithHTTPClient(&http.Client{Transport: httpx.Chain(budgets.Budget(pctools.Toolset), http.DefaultTransport)}))
	reg := tools.NewRegistry()
	reg.Add(pctools.Tools(pctools.Static(client))...)
	return &harness{Client: toolstest.New(t, reg, policy, budgets), sandbox: sb, url: ts.URL}
}

// The story of the issue: triage this week's incoming shared referrals for
// a country, accept one, register the deal, close it as won; an illegal
// move afterwards costs no upstream call.
func TestReferralLifecycle(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	weekAgo := testNow.AddDate(0, 0, -7).Format(time.DateOnly)

	var list pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{
		"status": "New", "direction": "Incoming", "type": "Shared", "country": "US", "created_since": weekAgo,
	}, &list)
	require.NotEmpty(t, list.Referrals, "the seed has new incoming shared US referrals this week (filter %s)", list.Filter)
	for _, r := range list.Referrals {
		assert.Equal(t, "New", r.Status)
		assert.Equal(t, "Incoming", r.Direction)
		assert.Equal(t, "US", r.Country)
		assert.GreaterOrEqual(t, r.CreatedDateTime, weekAgo)
	}
	assert.Contains(t, list.Filter, "customerProfile/address/country eq 'US'")

	var got pctools.ReferralResult
	h.Call("partnercenter_get_referral", map[string]any{"id": list.Referrals[0].ID}, &got)
	ref := got.Referral
	require.NotEmpty(t, ref.ETag)

	var accepted pctools.ReferralResult
	h.Call("partnercenter_update_referral_fields", map[string]any{
		"id": ref.ID, "etag": ref.ETag, "status": "Active", "substatus": "Accepted", "sales_stage": "Develop",
	}, &accepted)
	assert.Equal(t, "Active", accepted.Referral.Status)
	assert.Equal(t, "Accepted", accepted.Referral.Substatus)
	assert.NotEqual(t, ref.ETag, accepted.Referral.ETag, "a change yields a new eTag")

	var registered pctools.ReferralResult
	h.Call("partnercenter_create_deal_registration", map[string]any{
		"id": ref.ID, "etag": accepted.Referral.ETag,
		"contract": map[string]any{"value": 250000, "currency": "USD", "term": "Finite", "start_date": "2027-01-01", "end_date": "2029-12-31", "sign_date": "2026-12-15"},
		"solutions": []any{map[string]any{"id": "SOL-1234-5678", "value": 250000, "currency": "USD", "is_deployed_on_azure": true,
			"primary_deployment_on": "Customer", "pricing_model": "PayAsYouGo"}},
	}, &registered)
	require.Len(t, registered.Referral.Registrations, 1)
	reg := registered.Referral.Registrations[0]
	require.Len(t, reg.SolutionDetails, 1)
	assert.Equal(t, "SOL-1234-5678", reg.SolutionDetails[0].ID)
	require.NotNil(t, reg.Contract)
	assert.Equal(t, 250000.0, *reg.Contract.Value)

	var updatedReg pctools.ReferralResult
	h.Call("partnercenter_update_deal_registration", map[string]any{
		"id": ref.ID, "etag": registered.Referral.ETag, "contract_value": 300000, "pricing_model": "Other",
	}, &updatedReg)
	assert.Equal(t, 300000.0, *updatedReg.Referral.Registrations[0].Contract.Value)

	var won pctools.ReferralResult
	h.Call("partnercenter_update_referral_fields", map[string]any{
		"id": ref.ID, "etag": updatedReg.Referral.ETag, "status": "Closed", "substatus": "Won", "status_reason": "Signed",
	}, &won)
	assert.Equal(t, "Closed", won.Referral.Status)
	assert.Equal(t, "Won", won.Referral.Substatus)

	before := h.sandbox.RequestCount()
	e := h.CallErr("partnercenter_update_referral_fields", map[string]any{
		"id": ref.ID, "etag": won.Referral.ETag, "status": "Active", "substatus": "Accepted",
	})
	assert.Equal(t, tools.CodeInvalidArgument, e.Code)
	assert.Contains(t, e.Message, "Closed")
	assert.Equal(t, before, h.sandbox.RequestCount(), "an illegal move costs no upstream call")
}

// Two agents read the same version; the second writer gets a conflict.
func TestConcurrentPatchesConflict(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var list pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"status": "Active", "limit": 1}, &list)
	require.Len(t, list.Referrals, 1)
	r := list.Referrals[0]

	var first pctools.ReferralResult
	h.Call("partnercenter_update_referral_fields", map[string]any{"id": r.ID, "etag": r.ETag, "notes": "agent one"}, &first)
	e := h.CallErr("partnercenter_update_referral_fields", map[string]any{"id": r.ID, "etag": r.ETag, "notes": "agent two"})
	assert.Equal(t, tools.CodeConflict, e.Code)
	assert.Contains(t, e.Message, "partnercenter_get_referral")

	var now pctools.ReferralResult
	h.Call("partnercenter_get_referral", map[string]any{"id": r.ID}, &now)
	assert.Equal(t, "agent one", now.Referral.Details.Notes, "no silent overwrite")

	// Racing writers: exactly one wins.
	var wg sync.WaitGroup
	codes := make([]string, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := h.Call("partnercenter_update_referral_fields", map[string]any{"id": r.ID, "etag": now.Referral.ETag, "notes": "race"}, nil)
			codes[i] = "ok"
			if res.IsError {
				codes[i] = "error"
			}
		}()
	}
	wg.Wait()
	wins := 0
	for _, c := range codes {
		if c == "ok" {
			wins++
		}
	}
	assert.Equal(t, 1, wins, "exactly one of the racing writers wins: %v", codes)
}

// A create retried with the same request id yields one referral.
func TestCreateIsIdempotent(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	args := map[string]any{
		"name": "Tailspin Toys — Azure OpenAI", "type": "Independent",
		"customer": map[string]any{"name": "Tailspin Toys", "country": "gb",
			"contacts": []any{map[string]any{"first_name": "Ana", "last_name": "Silva", "email": "ana@tailspintoys.example"}}},
		"details":    map[string]any{"value": 42000, "currency": "GBP", "closing_date": "2027-02-28"},
		"consent":    map[string]any{"contact": true},
		"request_id": "2f1c7e1a-8a39-4f3e-9b7d-1c2d3e4f5a6b",
	}
	var a, b pctools.CreateResult
	h.Call("partnercenter_create_referral", args, &a)
	h.Call("partnercenter_create_referral", args, &b)
	assert.Equal(t, a.Referral.ID, b.Referral.ID)
	assert.Equal(t, "GB", a.Referral.CustomerProfile.Address.Country)
	assert.Equal(t, "Active", a.Referral.Status, "an outgoing referral is answered Active/Accepted (create-a-referral example)")

	var list pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"customer_name_contains": "Tailspin", "filter": "name eq 'Tailspin Toys — Azure OpenAI'"}, &list)
	assert.Len(t, list.Referrals, 1)
}

func TestListPagingAndValidation(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	seen := map[string]bool{}
	cursor := ""
	for range 100 {
		args := map[string]any{"limit": 7}
		if cursor != "" {
			args = map[string]any{"cursor": cursor, "limit": 7}
		}
		var page pctools.ReferralList
		h.Call("partnercenter_list_referrals", args, &page)
		for _, r := range page.Referrals {
			assert.False(t, seen[r.ID], "referral %s twice", r.ID)
			seen[r.ID] = true
		}
		if !page.HasMore {
			break
		}
		cursor = page.NextCursor
	}
	assert.Greater(t, len(seen), 20)

	var full pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"full": true, "limit": 2}, &full)
	assert.Len(t, full.Full, 2)
	assert.Empty(t, full.Referrals)

	before := h.sandbox.RequestCount()
	for _, c := range []struct {
		args  map[string]any
		field string
	}{
		{map[string]any{"status": "Closed", "substatus": "Accepted"}, "substatus"},
		{map[string]any{"updated_since": "last week"}, "updated_since"},
		{map[string]any{"cursor": "not-a-cursor"}, "cursor"},
		{map[string]any{"country": "USA"}, "country"},
	} {
		e := h.CallErr("partnercenter_list_referrals", c.args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%v", c.args)
		assert.Equal(t, c.field, e.Field, "%v: %s", c.args, e.Message)
	}
	assert.Equal(t, before, h.sandbox.RequestCount())

	e := h.CallErr("partnercenter_list_referrals", map[string]any{"filter": "status eq"})
	assert.Equal(t, tools.CodeInvalidArgument, e.Code, "an OData syntax error from upstream is the caller's to fix: %s", e.Message)
}

func TestWriteValidationCostsNothing(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var list pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"status": "New", "limit": 1}, &list)
	require.Len(t, list.Referrals, 1)
	r := list.Referrals[0]
	before := h.sandbox.RequestCount()

	cases := []map[string]any{
		{"id": r.ID, "etag": r.ETag, "status": "Closed", "substatus": "Accepted"},
		{"id": r.ID, "etag": r.ETag},
		{"id": r.ID, "etag": r.ETag, "closing_date": "2027-13-01"},
	}
	for _, args := range cases {
		e := h.CallErr("partnercenter_update_referral_fields", args)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%v: %s", args, e.Message)
	}
	e := h.CallErr("partnercenter_create_deal_registration", map[string]any{
		"id": r.ID, "etag": r.ETag,
		"contract":  map[string]any{"value": 1, "currency": "USD", "term": "Perpetual", "start_date": "2027-01-01"},
		"solutions": []any{map[string]any{"id": "SOL-1"}},
	})
	assert.Contains(t, e.Message, "accepted (Active/Accepted) or won (Closed/Won) referral")
	e = h.CallErr("partnercenter_create_deal_registration", map[string]any{
		"id": r.ID, "etag": r.ETag,
		"contract":  map[string]any{"value": 1, "currency": "USD", "term": "Finite", "start_date": "2027-01-01"},
		"solutions": []any{map[string]any{"id": "SOL-1"}},
	})
	assert.Equal(t, "contract.end_date", e.Field)
	assert.Equal(t, before, h.sandbox.RequestCount(), "refused before any upstream call")
}

func TestDeprecatedPutIsHiddenButCallable(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	assert.NotContains(t, h.ListNames(), "partnercenter_update_referral_deprecated")
	var list pctools.ReferralList
	h.Call("partnercenter_list_referrals", map[string]any{"status": "Active", "limit": 1, "full": true}, &list)
	require.Len(t, list.Full, 1)
	r := list.Full[0]
	r.Details.Notes = "replaced by PUT"
	var out pctools.ReferralResult
	h.Call("partnercenter_update_referral_deprecated", map[string]any{"id": r.ID, "etag": r.ETag, "referral": r}, &out)
	assert.Equal(t, "replaced by PUT", out.Referral.Details.Notes)
}
