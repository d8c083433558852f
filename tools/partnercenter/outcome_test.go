package partnercenter_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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

// The faults and the marker are toolstest's.
type fault = toolstest.Fault

const (
	noFault    = toolstest.NoFault
	garbage    = toolstest.Garbage
	emptyBody  = toolstest.EmptyBody
	badGateway = toolstest.BadGateway
	hang       = toolstest.Hang
	marker     = toolstest.Marker
)

var guidRE = `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`

// faultHarness runs the Partner Center tools against a faulty upstream;
// direct reads the sandbox with no fault and no budget.
type faultHarness struct {
	*toolstest.Client
	direct  *pc.Client
	budget  *throttle.Budget
	url     string
	timeout time.Duration
}

func newFaultHarness(t *testing.T, f fault, method, prefix string) *faultHarness {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Clock: clock.NewFake(testNow)})
	below := sb.APIBase("") + prefix
	up := &toolstest.FaultyUpstream{T: t, Sandbox: sb, Fault: f, Release: make(chan struct{}),
		Match:       func(r *http.Request) bool { return r.Method == method && strings.HasPrefix(r.URL.Path, below) },
		GarbageBody: `{"id":"`}
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(up.Release) }) // runs before ts.Close
	h := &faultHarness{direct: pc.New(pc.StaticToken(sandbox.DefaultToken), pc.WithBaseURL(sb.APIBase(ts.URL))), url: sb.APIBase(ts.URL)}
	if f == hang {
		h.timeout = time.Second
	}
	h.Client, h.budget = h.tools(t)
	return h
}

// tools connects a new MCP client to new Partner Center tools (their own
// caches, as on another replica) over the same upstream. Interactive calls
// never wait for budget: an exhausted one refuses at once.
func (h *faultHarness) tools(t *testing.T) (*toolstest.Client, *throttle.Budget) {
	budgets := throttle.NewRegistry(throttle.Config{Limit: 100, MaxWait: -1})
	hc := &http.Client{Transport: httpx.Chain(budgets.Budget(pctools.Toolset), http.DefaultTransport), Timeout: h.timeout}
	client := pc.New(pc.StaticToken(sandbox.DefaultToken), pc.WithBaseURL(h.url), pc.WithHTTPClient(hc))
	reg := tools.NewRegistry()
	reg.Add(pctools.Tools(pctools.Static(client))...)
	return toolstest.New(t, reg, tools.Policy{}, budgets), budgets.Budget(pctools.Toolset)
}

// exhaust spends the whole budget, so that the next call is refused before
// anything is sent.
func (h *faultHarness) exhaust(t *testing.T) {
	t.Helper()
	ctx := throttle.WithPriority(context.Background(), throttle.Interactive)
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "the budget never ran out")
		if h.budget.Acquire(ctx) != nil {
			return
		}
	}
}

// referralsNamed returns the ids of the sandbox's referrals with this name.
func (h *faultHarness) referralsNamed(t *testing.T, name string) []string {
	t.Helper()
	var ids []string
	for r, err := range h.direct.Referrals(context.Background(), pc.ListParams{Filter: "name eq '" + name + "'"}) {
		require.NoError(t, err)
		ids = append(ids, r.ID)
	}
	return ids
}

func referralArgs(name string) map[string]any {
	return map[string]any{"name": name, "type": "Shared", "customer": map[string]any{"name": "Contoso " + name, "country": "US"},
		"details": map[string]any{"value": 50000, "currency": "USD"}}
}

// issue finding: duplicate creates — partnercenter_create_referral whose
// request reached Partner Center without a trustworthy answer is
// outcome_unknown and carries the request id it sent; a retry with that
// request_id returns the same referral and creates no second one. A 5xx is
// retried by the transport with the same MS-RequestId and needs no retry
// at all. A create refused before sending is not outcome_unknown.
func TestCreateReferralWithUnknownOutcome(t *testing.T) {
	cases := []struct {
		fault   fault
		refused bool
		code    string // "" for success
		records int
	}{
		{fault: garbage, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: emptyBody, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: hang, code: tools.CodeOutcomeUnknown, records: 1},
		{fault: badGateway, code: "", records: 1},
		{fault: noFault, refused: true, code: tools.CodeThrottled, records: 0},
	}
	for _, c := range cases {
		name := string(c.fault)
		if c.refused {
			name = "refused by the budget before sending"
		}
		for _, given := range []string{"", "0b2f6c1e-4a7d-4c3b-9e21-5d8f7a6b4c3d"} {
			t.Run(name+map[bool]string{true: "/given request_id", false: "/new request_id"}[given != ""], func(t *testing.T) {
				h := newFaultHarness(t, c.fault, http.MethodPost, "/referrals")
				if c.refused {
					h.exhaust(t)
				}
				title := marker + " " + name
				args := referralArgs(title)
				if given != "" {
					args["request_id"] = given
				}
				if c.code == "" {
					var res pctools.CreateResult
					h.Call("partnercenter_create_referral", args, &res)
					assert.Equal(t, []string{res.Referral.ID}, h.referralsNamed(t, title))
					if given != "" {
						assert.Equal(t, given, res.RequestID)
					}
					return
				}
				e := h.CallErr("partnercenter_create_referral", args)
				t.Logf("%s: %s", e.Code, e.Message)
				assert.Equal(t, c.code, e.Code, e.Message)
				assert.NotContains(t, e.Message, "try again")
				assert.Regexp(t, guidRE, e.RequestID, "the error carries the request id it sent")
				if given != "" {
					assert.Equal(t, given, e.RequestID)
				}
				ids := h.referralsNamed(t, title)
				require.Len(t, ids, c.records, "records upstream")
				if c.code != tools.CodeOutcomeUnknown {
					return
				}
				assert.Contains(t, e.Message, "same request_id")
				assert.Contains(t, e.Message, "partnercenter_list_referrals")

				// The agent retries as told: same arguments, same request_id.
				args["request_id"] = e.RequestID
				var res pctools.CreateResult
				h.Call("partnercenter_create_referral", args, &res)
				assert.Equal(t, e.RequestID, res.RequestID)
				assert.Equal(t, ids[0], res.Referral.ID, "the retry returns the referral the first attempt created")
				assert.Equal(t, ids, h.referralsNamed(t, title), "no second referral")
			})
		}
	}
}

// registrationArgs registers a deal on referral id, read at etag.
func registrationArgs(id, etag string) map[string]any {
	return map[string]any{
		"id": id, "etag": etag,
		"contract": map[string]any{"value": 120000, "currency": "USD", "term": "Perpetual", "start_date": "2027-01-01"},
		"solutions": []any{map[string]any{"id": "SOL-" + marker + "-1", "value": 120000, "currency": "USD",
			"primary_deployment_on": "Customer", "pricing_model": "PayAsYouGo"}},
	}
}

// issue finding: duplicate creates — partnercenter_create_deal_registration
// likewise: outcome_unknown with its request id, exactly one registration
// upstream, and a retry with that request_id (from this replica, whose
// cache knows the version read, or another, which finds the referral
// moved on) returns the registration the first attempt made.
func TestCreateDealRegistrationWithUnknownOutcome(t *testing.T) {
	cases := []struct {
		fault   fault
		refused bool
		code    string // "" for success
	}{
		{fault: garbage, code: tools.CodeOutcomeUnknown},
		{fault: emptyBody, code: ""}, // a PATCH may answer 204: the tool reads the referral back
		{fault: hang, code: tools.CodeOutcomeUnknown},
		{fault: badGateway, code: ""}, // retried with the same MS-RequestId
		{fault: noFault, refused: true, code: tools.CodeThrottled},
	}
	for _, c := range cases {
		name := string(c.fault)
		if c.refused {
			name = "refused by the budget before sending"
		}
		t.Run(name, func(t *testing.T) {
			h := newFaultHarness(t, c.fault, http.MethodPatch, "/referrals/")
			var list pctools.ReferralList
			h.Call("partnercenter_list_referrals", map[string]any{"status": "Active", "limit": 50}, &list)
			var target pctools.Row
			for _, r := range list.Referrals {
				if r.Substatus == "Accepted" && r.Registrations == 0 {
					target = r
					break
				}
			}
			require.NotEmpty(t, target.ID, "the seed has an accepted referral without a registration")
			var read pctools.ReferralResult
			h.Call("partnercenter_get_referral", map[string]any{"id": target.ID}, &read)
			registrations := func() int {
				r, err := h.direct.GetReferral(context.Background(), target.ID)
				require.NoError(t, err)
				return len(r.Registrations)
			}
			if c.refused {
				h.exhaust(t)
			}

			args := registrationArgs(target.ID, read.Referral.ETag)
			if c.code == "" {
				var res pctools.CreateResult
				h.Call("partnercenter_create_deal_registration", args, &res)
				assert.Regexp(t, guidRE, res.RequestID)
				assert.Len(t, res.Referral.Registrations, 1)
				assert.Equal(t, 1, registrations())
				return
			}
			e := h.CallErr("partnercenter_create_deal_registration", args)
			t.Logf("%s: %s", e.Code, e.Message)
			assert.Equal(t, c.code, e.Code, e.Message)
			assert.NotContains(t, e.Message, "try again")
			assert.Regexp(t, guidRE, e.RequestID, "the error carries the request id it sent")
			if c.code != tools.CodeOutcomeUnknown {
				assert.Equal(t, 0, registrations())
				return
			}
			assert.Equal(t, 1, registrations(), "the first attempt registered the deal")
			assert.Contains(t, e.Message, "same request_id")
			assert.Contains(t, e.Message, "partnercenter_get_referral")

			// Another replica (a cold version cache) without the request id
			// finds the referral moved on: a conflict, no second attempt.
			other, _ := h.tools(t)
			conflict := other.CallErr("partnercenter_create_deal_registration", args)
			assert.Equal(t, tools.CodeConflict, conflict.Code, conflict.Message)

			// With it, from either replica, the retry is the same request.
			args["request_id"] = e.RequestID
			for _, cl := range []*toolstest.Client{other, h.Client} {
				var res pctools.CreateResult
				cl.Call("partnercenter_create_deal_registration", args, &res)
				assert.Equal(t, e.RequestID, res.RequestID)
				require.Len(t, res.Referral.Registrations, 1)
				assert.Equal(t, "SOL-"+marker+"-1", res.Referral.Registrations[0].SolutionDetails[0].ID)
				assert.Equal(t, 1, registrations(), "no second registration")
			}
		})
	}
}
