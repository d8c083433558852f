package partnercenter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

const basePath = "/v1.0/engagements"

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// recorded is one request as the fake server received it.
type recorded struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     string
}

// fake is an httptest server that records every request and answers with
// the handler of the test.
type fake struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFake(t *testing.T, h http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) Requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fake) base() string { return f.URL + basePath }

func (f *fake) client(opts ...partnercenter.Option) *partnercenter.Client {
	return partnercenter.New(partnercenter.StaticToken("test-token"),
		append([]partnercenter.Option{partnercenter.WithBaseURL(f.base())}, opts...)...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func sampleReferral(id string) map[string]any {
	return map[string]any{
		"id":           id,
		"engagementId": "eng-" + id,
		"name":         "Contoso Azure migration",
		"status":       "New",
		"substatus":    "Pending",
		"type":         "Independent",
		"eTag":         `"etag-` + id + `"`,
	}
}

func asUpstream(t *testing.T, err error) *upstream.Error {
	t.Helper()
	var ue *upstream.Error
	require.ErrorAs(t, err, &ue)
	return ue
}

func TestReadHeaders(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, sampleReferral("r1"))
	})
	c := f.client(partnercenter.WithUserAgent("cosell-test/1"))

	_, err := c.GetReferral(ctx(t), "r1")
	require.NoError(t, err)
	_, err = c.GetReferral(partnercenter.WithCorrelationID(ctx(t), "corr-fixed"), "r1")
	require.NoError(t, err)

	reqs := f.Requests()
	require.Len(t, reqs, 2)
	h := reqs[0].Header
	assert.Equal(t, http.MethodGet, reqs[0].Method)
	assert.Equal(t, basePath+"/referrals/r1", reqs[0].Path)
	assert.Equal(t, partnercenter.CallerID, h.Get("X-Caller-Id"))
	assert.Equal(t, "60858c1b-2062-40ad-b42c-996b6b5b047d", h.Get("X-Caller-Id"))
	assert.Equal(t, "Bearer test-token", h.Get("Authorization"))
	assert.Equal(t, "application/json", h.Get("Accept"))
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.Equal(t, "cosell-test/1", h.Get("User-Agent"))
	assert.Regexp(t, guidRE, h.Get("MS-CorrelationId"))
	assert.Empty(t, h.Values("MS-RequestId"), "reads carry no MS-RequestId")
	assert.Empty(t, h.Values("If-Match"))
	assert.Equal(t, "corr-fixed", reqs[1].Header.Get("MS-CorrelationId"))
}

func TestCorrelationIDIsNewPerCall(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []any{}})
	})
	c := f.client()
	for range 3 {
		_, err := c.ListReferrals(ctx(t), partnercenter.ListParams{})
		require.NoError(t, err)
	}
	seen := map[string]bool{}
	for _, r := range f.Requests() {
		seen[r.Header.Get("MS-CorrelationId")] = true
	}
	assert.Len(t, seen, 3)
}

func TestWritesCarryRequestID(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, sampleReferral("r1"))
	})
	c := f.client()
	in := partnercenter.Referral{Name: "x", Type: partnercenter.TypeIndependent}

	_, err := c.CreateReferral(ctx(t), in, "11111111-2222-4333-8444-555555555555")
	require.NoError(t, err)
	_, err = c.CreateReferral(ctx(t), in, "")
	require.NoError(t, err)
	_, err = c.CreateReferral(ctx(t), in, "")
	require.NoError(t, err)
	_, err = c.PatchReferral(partnercenter.WithRequestID(ctx(t), "from-ctx"), "r1",
		[]partnercenter.PatchOp{{Op: "replace", Path: "/details/notes", Value: "n"}}, "")
	require.NoError(t, err)
	_, err = c.UpdateReferral(ctx(t), "r1", in, `"e1"`)
	require.NoError(t, err)

	reqs := f.Requests()
	require.Len(t, reqs, 5)
	assert.Equal(t, "11111111-2222-4333-8444-555555555555", reqs[0].Header.Get("MS-RequestId"))
	assert.Regexp(t, guidRE, reqs[1].Header.Get("MS-RequestId"))
	assert.Regexp(t, guidRE, reqs[2].Header.Get("MS-RequestId"))
	assert.NotEqual(t, reqs[1].Header.Get("MS-RequestId"), reqs[2].Header.Get("MS-RequestId"), "one per logical call")
	assert.Equal(t, "from-ctx", reqs[3].Header.Get("MS-RequestId"))
	assert.Equal(t, http.MethodPut, reqs[4].Method)
	assert.Regexp(t, guidRE, reqs[4].Header.Get("MS-RequestId"))
	for _, r := range reqs {
		assert.Equal(t, partnercenter.CallerID, r.Header.Get("X-Caller-Id"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	}
	var sent map[string]any
	require.NoError(t, json.Unmarshal([]byte(reqs[0].Body), &sent))
	assert.Equal(t, map[string]any{"name": "x", "type": "Independent"}, sent, "unset fields are not sent")
}

// TestCreateRetriedWithSameRequestID sends a create through the transport
// chain; the fake creates the referral, loses the reply (503), and
// de-duplicates the replay by MS-RequestId.
func TestCreateRetriedWithSameRequestID(t *testing.T) {
	var (
		mu      sync.Mutex
		byReqID = map[string]map[string]any{}
		creates int
		hits    int
	)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != basePath+"/referrals" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		hits++
		key := r.Header.Get("MS-RequestId")
		if prev, ok := byReqID[key]; ok && key != "" {
			writeJSON(w, 201, prev)
			return
		}
		creates++
		ref := sampleReferral("created-1")
		byReqID[key] = ref
		if hits == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, 201, ref)
	})
	hc := &http.Client{Transport: httpx.Chain(throttle.New("pc", throttle.Config{}), http.DefaultTransport)}
	c := f.client(partnercenter.WithHTTPClient(hc))

	got, err := c.CreateReferral(ctx(t), partnercenter.Referral{Name: "Contoso", Type: partnercenter.TypeShared}, "")
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "created-1", got.ID)

	reqs := f.Requests()
	require.Len(t, reqs, 2, "the 503 was retried once")
	assert.Equal(t, 1, creates, "the fake created exactly one referral")
	id := reqs[0].Header.Get("MS-RequestId")
	assert.Regexp(t, guidRE, id)
	assert.Equal(t, id, reqs[1].Header.Get("MS-RequestId"), "the retry carries the same MS-RequestId")
	assert.Equal(t, reqs[0].Header.Get("MS-CorrelationId"), reqs[1].Header.Get("MS-CorrelationId"))
	assert.Equal(t, reqs[0].Body, reqs[1].Body, "the body is replayed")
	assert.NotEmpty(t, reqs[1].Body)
}

func TestListODataQueryEncoding(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"@odata.context": "https://api.partner.microsoft.com/v1.0/engagements/$metadata#referrals",
			"@odata.count":   42,
			"value":          []any{sampleReferral("a"), sampleReferral("b")},
		})
	})
	c := f.client()
	p := partnercenter.ListParams{
		Filter:  "status eq 'New' and customerProfile/address/country eq 'US'",
		OrderBy: "createdDateTime desc",
		Select:  "id,status,customerProfile",
		Expand:  "team",
		Top:     50,
		Skip:    10,
		Count:   true,
	}
	page, err := c.ListReferrals(ctx(t), p)
	require.NoError(t, err)
	require.NotNil(t, page.Count)
	assert.Equal(t, 42, *page.Count)
	assert.Contains(t, page.Context, "$metadata#referrals")
	require.Len(t, page.Value, 2)
	assert.Equal(t, "b", page.Value[1].ID)
	assert.Empty(t, page.NextLink)

	reqs := f.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, basePath+"/referrals", reqs[0].Path)
	raw := reqs[0].RawQuery
	assert.Equal(t,
		"$filter=status%20eq%20%27New%27%20and%20customerProfile%2Faddress%2Fcountry%20eq%20%27US%27"+
			"&$orderby=createdDateTime%20desc&$select=id%2Cstatus%2CcustomerProfile&$expand=team"+
			"&$top=50&$skip=10&$count=true", raw)
	assert.NotContains(t, raw, "+")
	q, err := url.ParseQuery(raw)
	require.NoError(t, err)
	assert.Equal(t, p.Filter, q.Get("$filter"))
	assert.Equal(t, p.OrderBy, q.Get("$orderby"))
	assert.Equal(t, p.Select, q.Get("$select"))
	assert.Equal(t, "50", q.Get("$top"))
	assert.Equal(t, "true", q.Get("$count"))

	_, err = c.ListReferrals(ctx(t), partnercenter.ListParams{})
	require.NoError(t, err)
	assert.Empty(t, f.Requests()[1].RawQuery, "zero params are not sent")
}

// pagedFake serves 3 pages of 2 referrals; nextLink is absolute (as Partner
// Center sends it) or relative.
func pagedFake(t *testing.T, relative bool) *fake {
	var f *fake
	f = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("$skiptoken")
		n := map[string]int{"": 0, "p2": 1, "p3": 2}[tok]
		body := map[string]any{"value": []any{sampleReferral(string(rune('a' + 2*n))), sampleReferral(string(rune('b' + 2*n)))}}
		if n < 2 {
			next := basePath + "/referrals?$filter=status%20eq%20%27New%27&$skiptoken=p" + string(rune('2'+n))
			if !relative {
				next = f.URL + next
			}
			body["@odata.nextLink"] = next
		}
		writeJSON(w, 200, body)
	})
	return f
}

func TestReferralsIteratorFollowsNextLinks(t *testing.T) {
	for _, relative := range []bool{false, true} {
		f := pagedFake(t, relative)
		c := f.client()
		var ids []string
		for r, err := range c.Referrals(ctx(t), partnercenter.ListParams{Filter: "status eq 'New'", Top: 2}) {
			require.NoError(t, err)
			ids = append(ids, r.ID)
		}
		assert.Equal(t, []string{"a", "b", "c", "d", "e", "f"}, ids)
		reqs := f.Requests()
		require.Len(t, reqs, 3)
		assert.Equal(t, "$filter=status%20eq%20%27New%27&$top=2", reqs[0].RawQuery)
		assert.Equal(t, "$filter=status%20eq%20%27New%27&$skiptoken=p2", reqs[1].RawQuery)
		assert.Equal(t, "$filter=status%20eq%20%27New%27&$skiptoken=p3", reqs[2].RawQuery)
		for _, r := range reqs {
			assert.Equal(t, "Bearer test-token", r.Header.Get("Authorization"))
		}
	}
}

func TestReferralsIteratorStopsEarly(t *testing.T) {
	f := pagedFake(t, false)
	n := 0
	for _, err := range f.client().Referrals(ctx(t), partnercenter.ListParams{}) {
		require.NoError(t, err)
		if n++; n == 3 {
			break
		}
	}
	assert.Len(t, f.Requests(), 2, "no page is fetched after the consumer stops")
}

func TestNextLinkOnOtherHostRefused(t *testing.T) {
	other := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []any{}})
	})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"value":           []any{sampleReferral("a")},
			"@odata.nextLink": other.URL + basePath + "/referrals?$skiptoken=x",
		})
	})
	c := f.client()

	var ids []string
	var iterErr error
	for r, err := range c.Referrals(ctx(t), partnercenter.ListParams{}) {
		if err != nil {
			iterErr = err
			continue
		}
		ids = append(ids, r.ID)
	}
	assert.Equal(t, []string{"a"}, ids)
	require.Error(t, iterErr)
	assert.ErrorIs(t, iterErr, partnercenter.ErrInvalidArgument)
	assert.NotContains(t, iterErr.Error(), "test-token")
	assert.Empty(t, other.Requests(), "the token never goes to another host")

	u, _ := url.Parse(f.URL)
	for _, link := range []string{
		"https://" + u.Host + basePath + "/referrals?$skiptoken=x", // scheme change
		"http://user:pw@" + u.Host + basePath + "/referrals",
		"//elsewhere.example/referrals",
		"",
	} {
		_, err := c.NextPage(ctx(t), link)
		assert.ErrorIs(t, err, partnercenter.ErrInvalidArgument, link)
	}
	assert.Len(t, f.Requests(), 1)

	page, err := c.NextPage(ctx(t), strings.ToUpper("http://"+u.Host)+basePath+"/referrals?$skiptoken=y")
	require.NoError(t, err, "host compares case-insensitively")
	assert.Len(t, page.Value, 1)
}

func TestGetReferralETag(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		ref := sampleReferral("r1")
		if strings.HasSuffix(r.URL.Path, "/no-body-etag") {
			delete(ref, "eTag")
		}
		w.Header().Set("ETag", `W/"from-header"`)
		writeJSON(w, 200, ref)
	})
	c := f.client()

	got, err := c.GetReferral(ctx(t), "no-body-etag")
	require.NoError(t, err)
	assert.Equal(t, `W/"from-header"`, got.ETag)

	got, err = c.GetReferral(ctx(t), "r1")
	require.NoError(t, err)
	assert.Equal(t, `"etag-r1"`, got.ETag, "the body's eTag wins")
	assert.Equal(t, "eng-r1", got.EngagementID)
}

func TestGetReferralEscapesIDAndRejectsEmpty(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, sampleReferral("x"))
	})
	c := f.client()
	_, err := c.GetReferral(ctx(t), "a/b c")
	require.NoError(t, err)
	_, err = c.GetReferral(ctx(t), " ")
	assert.ErrorIs(t, err, partnercenter.ErrInvalidArgument)
	reqs := f.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, basePath+"/referrals/a/b c", reqs[0].Path)
}

func TestPatchReferral(t *testing.T) {
	var mode atomic.Value
	mode.Store("200")
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "200":
			ref := sampleReferral("r1")
			ref["status"], ref["substatus"] = "Closed", "Won"
			writeJSON(w, 200, ref)
		case "204":
			w.WriteHeader(http.StatusNoContent)
		case "412":
			writeJSON(w, 412, map[string]any{"code": 412, "description": "The eTag does not match.", "data": []any{}, "source": "PartnerFD"})
		}
	})
	c := f.client()
	ops := []partnercenter.PatchOp{
		{Op: "replace", Path: "/status", Value: "Closed"},
		{Op: "replace", Path: "/substatus", Value: "Won"},
	}

	got, err := c.PatchReferral(ctx(t), "r1", ops, `"etag-r1"`)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "Won", got.Substatus)

	mode.Store("204")
	got, err = c.PatchReferral(ctx(t), "r1", ops, "")
	require.NoError(t, err)
	assert.Nil(t, got, "204 No Content returns no referral")

	mode.Store("412")
	_, err = c.PatchReferral(ctx(t), "r1", ops, `"stale"`)
	ue := asUpstream(t, err)
	assert.Equal(t, http.StatusPreconditionFailed, ue.Status)
	assert.Equal(t, "partnercenter", ue.Connector)
	assert.Equal(t, "The eTag does not match.", ue.Message)

	_, err = c.PatchReferral(ctx(t), "r1", nil, "")
	assert.ErrorIs(t, err, partnercenter.ErrInvalidArgument)

	reqs := f.Requests()
	require.Len(t, reqs, 3)
	r0 := reqs[0]
	assert.Equal(t, http.MethodPatch, r0.Method)
	assert.Equal(t, basePath+"/referrals/r1", r0.Path)
	assert.Equal(t, `"etag-r1"`, r0.Header.Get("If-Match"))
	assert.Equal(t, "return=representation", r0.Header.Get("Prefer"))
	assert.Equal(t, "application/json", r0.Header.Get("Content-Type"))
	assert.Regexp(t, guidRE, r0.Header.Get("MS-RequestId"))
	assert.JSONEq(t, `[{"op":"replace","path":"/status","value":"Closed"},{"op":"replace","path":"/substatus","value":"Won"}]`, r0.Body)
	assert.Empty(t, reqs[1].Header.Values("If-Match"), "no If-Match when none is given")
	assert.Equal(t, `"stale"`, reqs[2].Header.Get("If-Match"))
}

func TestUpdateReferralNeedsETag(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, sampleReferral("r1"))
	})
	c := f.client()
	_, err := c.UpdateReferral(ctx(t), "r1", partnercenter.Referral{Name: "x"}, "")
	assert.ErrorIs(t, err, partnercenter.ErrInvalidArgument)
	assert.Empty(t, f.Requests(), "nothing is sent without an eTag")

	got, err := c.UpdateReferral(ctx(t), "r1", partnercenter.Referral{Name: "x"}, `"etag-r1"`)
	require.NoError(t, err)
	assert.Equal(t, "r1", got.ID)
	reqs := f.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.MethodPut, reqs[0].Method)
	assert.Equal(t, `"etag-r1"`, reqs[0].Header.Get("If-Match"))
	assert.JSONEq(t, `{"name":"x"}`, reqs[0].Body)
}

func TestAddDealRegistration(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	c := f.client()
	val, yes := 125000.5, true
	got, err := c.AddDealRegistration(ctx(t), "r1", partnercenter.Registration{
		ID:     "ignored",
		Status: "ignored",
		SolutionDetails: []partnercenter.SolutionDetail{{
			ID: "SOL-1", Currency: "USD", Value: &val, IsDeployedOnAzure: &yes,
			PrimaryDeploymentOn: partnercenter.DeployedOnCustomer, PricingModel: partnercenter.PricingPayAsYouGo,
			MarketplaceTransactionDetails: &partnercenter.MarketplaceTransactionDetails{IsMarketplaceTransacted: &yes, MarketplaceTransactionDateTime: "2026-01-15T00:00:00Z"},
		}},
		Contract: &partnercenter.Contract{Currency: "USD", Value: &val, Term: partnercenter.TermFinite,
			StartDateTime: "2026-02-01T00:00:00Z", EndDateTime: "2027-01-31T00:00:00Z", SignDateTime: "2026-01-20T00:00:00Z"},
	}, `"e"`)
	require.NoError(t, err)
	assert.Nil(t, got)
	reqs := f.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.MethodPatch, reqs[0].Method)
	assert.Equal(t, basePath+"/referrals/r1", reqs[0].Path)
	assert.Equal(t, `"e"`, reqs[0].Header.Get("If-Match"))
	assert.JSONEq(t, `[{"op":"add","path":"/registrations/-","value":{
		"type":"AzureIPCoSell",
		"solutionDetails":[{"id":"SOL-1","currency":"USD","value":125000.5,"isDeployedOnAzure":true,
			"primaryDeploymentOn":"Customer","pricingModel":"PayAsYouGo",
			"marketplaceTransactionDetails":{"isMarketplaceTransacted":true,"marketplaceTransactionDateTime":"2026-01-15T00:00:00Z"}}],
		"contract":{"currency":"USD","value":125000.5,"term":"Finite","startDateTime":"2026-02-01T00:00:00Z",
			"endDateTime":"2027-01-31T00:00:00Z","signDateTime":"2026-01-20T00:00:00Z"}}}]`, reqs[0].Body)
}

func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		headers     map[string]string
		wantMessage string
		wantDetail  string
		wantRetry   time.Duration
	}{
		{"partner center int code", 400, "application/json",
			`{"code":600008,"description":"The referral is in a terminal state.","data":[],"source":"PartnerFD"}`, nil,
			"The referral is in a terminal state.", "code 600008; source PartnerFD", 0},
		{"partner center string code with data", 400, "application/json",
			`{"code":"InvalidInput","description":"Invalid deal value.","data":["details.dealValue"],"source":"PartnerFD"}`, nil,
			"Invalid deal value.", `code InvalidInput; source PartnerFD; data ["details.dealValue"]`, 0},
		{"rest guidelines shape", 404, "application/json",
			`{"error":{"code":"NotFound","message":"Referral not found.","target":"id"}}`, nil,
			"Referral not found.", "code NotFound; target id", 0},
		{"plain message", 401, "application/json",
			`{"statusCode":401,"message":"Access denied due to invalid token."}`, nil,
			"Access denied due to invalid token.", "", 0},
		{"text body", 502, "text/plain", "upstream connect error\nor disconnect", nil,
			"Bad Gateway", "upstream connect error or disconnect", 0},
		{"html body", 500, "text/html", "<html><body>Server Error</body></html>", nil,
			"Internal Server Error", "", 0},
		{"empty body with retry-after", 429, "", "", map[string]string{"Retry-After": "17"},
			"Too Many Requests", "", 17 * time.Second},
		{"503 retry-after", 503, "application/json", `{"code":503,"description":"Try later"}`, map[string]string{"Retry-After": "3"},
			"Try later", "code 503", 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				for k, v := range tc.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := f.client().GetReferral(ctx(t), "r1")
			ue := asUpstream(t, err)
			assert.Equal(t, "partnercenter", ue.Connector)
			assert.Equal(t, tc.status, ue.Status)
			assert.Equal(t, tc.wantMessage, ue.Message)
			assert.Equal(t, tc.wantDetail, ue.Detail)
			assert.Equal(t, tc.wantRetry, ue.RetryAfter)
		})
	}
}

func TestRetryAfterDateReadOnTheClientClock(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil // without a Date the client's clock is the reference
		w.Header().Set("Retry-After", clk.Now().Add(42*time.Second).Format(http.TimeFormat))
		writeJSON(w, 429, map[string]any{"code": 429, "description": "Too many requests"})
	})
	_, err := f.client(partnercenter.WithClock(clk)).GetReferral(ctx(t), "r1")
	assert.Equal(t, 42*time.Second, asUpstream(t, err).RetryAfter)
}

func TestMalformedSuccessBody(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":`)
	})
	_, err := f.client().GetReferral(ctx(t), "r1")
	// issue finding 8: a 2xx with an unreadable body is its own error type.
	var be *upstream.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 200, be.Status)
	assert.Equal(t, upstream.BodyMalformed, be.Kind)
	assert.Contains(t, err.Error(), "malformed")
}

// countingSource hands out tokens "tok-1", "tok-2", … and records
// invalidations.
type countingSource struct {
	mu          sync.Mutex
	n           int
	invalidated []string
}

func (s *countingSource) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 || len(s.invalidated) >= s.n {
		s.n++
	}
	return "tok-" + string(rune('0'+s.n)), nil
}

func (s *countingSource) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, token)
}

func TestUnauthorizedReauthenticatesOnce(t *testing.T) {
	t.Run("fresh token succeeds", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer tok-2" {
				writeJSON(w, 401, map[string]any{"code": 401, "description": "token expired"})
				return
			}
			writeJSON(w, 201, sampleReferral("r1"))
		})
		src := &countingSource{}
		c := partnercenter.New(src, partnercenter.WithBaseURL(f.base()))
		got, err := c.CreateReferral(ctx(t), partnercenter.Referral{Name: "x"}, "")
		require.NoError(t, err)
		assert.Equal(t, "r1", got.ID)
		assert.Equal(t, []string{"tok-1"}, src.invalidated)
		reqs := f.Requests()
		require.Len(t, reqs, 2)
		assert.Equal(t, reqs[0].Header.Get("MS-RequestId"), reqs[1].Header.Get("MS-RequestId"))
		assert.Equal(t, reqs[0].Header.Get("MS-CorrelationId"), reqs[1].Header.Get("MS-CorrelationId"))
		assert.Equal(t, reqs[0].Body, reqs[1].Body)
	})
	t.Run("still unauthorized", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, map[string]any{"code": 401, "description": "not a referral user"})
		})
		src := &countingSource{}
		c := partnercenter.New(src, partnercenter.WithBaseURL(f.base()))
		_, err := c.GetReferral(ctx(t), "r1")
		ue := asUpstream(t, err)
		assert.Equal(t, 401, ue.Status)
		assert.Equal(t, "not a referral user", ue.Message)
		assert.Len(t, f.Requests(), 2, "one retry only")
		assert.Len(t, src.invalidated, 1)
	})
	t.Run("static token is not retried", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(401)
		})
		_, err := f.client().GetReferral(ctx(t), "r1")
		assert.Equal(t, 401, asUpstream(t, err).Status)
		assert.Len(t, f.Requests(), 1)
	})
}

func TestTokenErrorStopsBeforeSending(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, sampleReferral("r1"))
	})
	boom := errors.New("no token")
	c := partnercenter.New(tokenFunc(func(context.Context) (string, error) { return "", boom }), partnercenter.WithBaseURL(f.base()))
	_, err := c.GetReferral(ctx(t), "r1")
	assert.ErrorIs(t, err, boom)
	assert.Empty(t, f.Requests())

	_, err = partnercenter.New(nil, partnercenter.WithBaseURL(f.base())).GetReferral(ctx(t), "r1")
	assert.Error(t, err)
	assert.Empty(t, f.Requests())
}

type tokenFunc func(context.Context) (string, error)

func (f tokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

func TestNewGUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		g := partnercenter.NewGUID()
		assert.Regexp(t, guidRE, g)
		seen[g] = true
	}
	assert.Len(t, seen, 100)
}

func TestReferralModelRoundTrip(t *testing.T) {
	in := `{
	  "@odata.context": "ctx", "id": "r1", "engagementId": "e1", "name": "n", "organizationId": "o",
	  "organizationName": "Fabrikam", "externalReferenceId": "crm-1", "campaignId": "c",
	  "createdDateTime": "2026-01-01T00:00:00Z", "updatedDateTime": "2026-01-02T00:00:00Z",
	  "expirationDateTime": "2026-03-01T00:00:00Z", "acceptedDateTime": "2026-01-01T01:00:00Z",
	  "closedDateTime": "2026-02-01T00:00:00Z", "status": "Closed", "substatus": "Won", "statusReason": "r",
	  "type": "Shared", "qualification": "SalesQualified", "referralProgram": "p", "salesStage": "Close",
	  "eTag": "\"e\"", "favorite": false, "lastModifiedVia": "api", "lastRunId": "run", "mpnId": "123",
	  "registrationStatus": "Approved", "callToAction": "ContactMe", "referralSource": "Marketplace",
	  "quality": "High", "isSpam": false, "direction": "Outgoing",
	  "tags": [{"tag": "t1"}, "t2"],
	  "consent": {"consentToContact": true, "consentToToShareInfoWithOthers": false, "consentToShareReferralWithMicrosoftSellers": true},
	  "customerProfile": {"name": "Contoso", "size": "10to50employees", "ids": {"crm": "1"},
	    "address": {"addressLine1": "1 Way", "addressLine2": "Suite 2", "city": "Redmond", "state": "WA",
	      "postalCode": "98052", "country": "US", "region": "NA"},
	    "team": [{"firstName": "A", "lastName": "B", "email": "a@contoso.com", "phoneNumber": "1",
	      "contactPreference": {"locale": "en-US", "disableNotifications": false}}]},
	  "details": {"notes": "n", "dealValue": 0, "currency": "USD", "closingDateTime": "2026-06-30T00:00:00Z",
	    "customerAction": "a", "customerRequestedContact": true,
	    "requirements": {"industries": [{"id": "i"}], "products": [{"id": "p"}], "services": [{"id": "s"}],
	      "solutions": [{"id": "SOL-1", "name": "x"}], "offers": ["o1"],
	      "additionalRequirements": {"attributes": [{"id": "a", "type": "t"}]}}},
	  "team": [{"firstName": "P", "email": "p@fabrikam.com"}],
	  "inviteContext": {"notes": "n", "invitedBy": {"organizationId": "o", "organizationName": "Fabrikam"},
	    "assistanceRequestCode": "ProofOfConceptOrDemo"},
	  "target": [{"id": "msft", "type": "BusinessProfileLocation"}],
	  "trackingInfo": {"microsoftMsxId": "msx"},
	  "links": {"self": {"uri": "u", "method": "GET"}, "relatedReferrals": {"uri": "u2", "method": "GET"}},
	  "registrations": [{"id": "reg", "type": "AzureIPCoSell", "registrationDateTime": "d", "status": "Approved",
	    "statusReason": "ok",
	    "contract": {"value": 0, "currency": "USD", "startDateTime": "s", "endDateTime": "e", "signDateTime": "g", "term": "Perpetual"},
	    "solutionDetails": [{"id": "SOL-1", "name": "x", "value": 10, "currency": "USD", "isDeployedOnAzure": false,
	      "primaryDeploymentOn": "Partner", "pricingModel": "Other",
	      "marketplaceTransactionDetails": {"isMarketplaceTransacted": false, "marketplaceTransactionDateTime": "m"}}],
	    "statusHistory": {"reviewPendingDateTime": "1", "actionRequiredDateTime": "2", "passedDateTime": "3",
	      "failedDateTime": "4", "approvedDateTime": "5"}}]
	}`
	var r partnercenter.Referral
	require.NoError(t, json.Unmarshal([]byte(in), &r))
	assert.Equal(t, []partnercenter.Tag{{Tag: "t1"}, {Tag: "t2"}}, r.Tags)
	require.NotNil(t, r.Consent.ConsentToShareInfoWithOthers)
	assert.False(t, *r.Consent.ConsentToShareInfoWithOthers)
	require.NotNil(t, r.Details.DealValue)
	assert.Zero(t, *r.Details.DealValue, "a zero deal value is kept")

	out, err := json.Marshal(r)
	require.NoError(t, err)
	// Every field survives a round trip, except that tags are written in
	// their object form.
	want := strings.Replace(in, `"t2"]`, `{"tag": "t2"}]`, 1)
	assert.JSONEq(t, want, string(out))
}
