package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

var testNow = time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	clock *clock.Fake
}

// newEnv starts a sandbox over real HTTP with a fake clock at testNow, unless opts brings its
// own fake clock.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(testNow)
	}
	clk, ok := opts.Clock.(*clock.Fake)
	require.True(t, ok, "tests use a fake clock")
	srv := New(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{t: t, srv: srv, ts: ts, clock: clk}
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call is one request: headers are name/value pairs. A body that is a string or []byte is
// sent as is; anything else is JSON-encoded. The default bearer token is added unless an
// Authorization header is given ("" removes it).
func (e *env) call(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(buf)
	}
	target := path
	if !strings.HasPrefix(path, "http") {
		target = e.ts.URL + path
	}
	req, err := http.NewRequest(method, target, rd)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(e.t, json.Unmarshal(raw, &r.body), "body: %s", raw)
	}
	return r
}

func (e *env) get(path string, headers ...string) resp {
	e.t.Helper()
	return e.call(http.MethodGet, path, nil, headers...)
}

// list GETs the referrals collection with the given raw query options (unencoded values).
func (e *env) list(opts ...string) resp {
	e.t.Helper()
	return e.get(referralsPath + "?" + encodeQuery(opts...))
}

const referralsPath = "/v1.0/engagements/referrals"

// encodeQuery builds a query string from name/value pairs, escaping values.
func encodeQuery(pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, pairs[i]+"="+url.QueryEscape(pairs[i+1]))
	}
	return strings.Join(parts, "&")
}

// ok asserts the status and returns the body.
func (r resp) ok(t *testing.T, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.raw)
	return r.body
}

// failed asserts a Partner Center error reply and returns its description.
func (r resp) failed(t *testing.T, status int) string {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.raw)
	require.Equal(t, strconv.Itoa(status), r.body["code"], "body: %s", r.raw)
	require.Equal(t, "PartnerFD", r.body["source"])
	require.Equal(t, []any{}, r.body["data"])
	desc, _ := r.body["description"].(string)
	require.NotEmpty(t, desc)
	return desc
}

func (r resp) items(t *testing.T) []map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	vals, ok := r.body["value"].([]any)
	require.True(t, ok, "no value array: %s", r.raw)
	out := make([]map[string]any, 0, len(vals))
	for _, v := range vals {
		out = append(out, v.(map[string]any))
	}
	return out
}

func (r resp) nextLink() string {
	s, _ := r.body["@odata.nextLink"].(string)
	return s
}

// all walks a listing through every @odata.nextLink and returns the referrals.
func (e *env) all(opts ...string) []map[string]any {
	e.t.Helper()
	r := e.list(opts...)
	out := r.items(e.t)
	for pages := 0; r.nextLink() != ""; pages++ {
		require.Less(e.t, pages, 1000, "too many pages")
		r = e.get(r.nextLink())
		out = append(out, r.items(e.t)...)
	}
	return out
}

// find returns the first referral matching a filter.
func (e *env) find(filter string) map[string]any {
	e.t.Helper()
	items := e.list("$filter", filter, "$top", "1").items(e.t)
	require.NotEmpty(e.t, items, "no referral matches %s", filter)
	return items[0]
}

func (e *env) referral(id string) map[string]any {
	e.t.Helper()
	return e.get(referralsPath+"/"+id).ok(e.t, http.StatusOK)
}

func (e *env) patch(id string, ops any, headers ...string) resp {
	e.t.Helper()
	return e.call(http.MethodPatch, referralsPath+"/"+id, ops, headers...)
}

func op(o, path string, value any) map[string]any {
	return map[string]any{"op": o, "path": path, "value": value}
}

func ids(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = it["id"].(string)
	}
	return out
}

func str(m map[string]any, path string) string {
	v := dig(m, path)
	s, _ := v.(string)
	return s
}

func dig(m map[string]any, path string) any {
	var cur any = m
	for _, seg := range strings.Split(path, "/") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[seg]
	}
	return cur
}

// newReferral is a minimal valid create body.
func newReferral(customer string) map[string]any {
	return map[string]any{
		"name":            customer + " - Azure landing zone",
		"type":            "Independent",
		"customerProfile": map[string]any{"name": customer, "address": map[string]any{"country": "US"}},
		"consent":         map[string]any{"consentToContact": true},
		"details":         map[string]any{"dealValue": 120000, "currency": "USD", "notes": "Created by a test"},
	}
}

// create POSTs a referral and returns it.
func (e *env) create(body any, headers ...string) map[string]any {
	e.t.Helper()
	return e.call(http.MethodPost, referralsPath, body, headers...).ok(e.t, http.StatusCreated)
}

// createIn creates a referral and puts it in a given status/substatus. A create answers
// Active/Accepted unless it asks for Closed (see createReferral), so other states are set on
// the stored referral directly, the way a referral Microsoft or another partner sends
// arrives in them.
func (e *env) createIn(status, substatus string) map[string]any {
	e.t.Helper()
	b := newReferral("Contoso Ltd")
	b["status"], b["substatus"] = status, substatus
	got := e.create(b)
	if got["status"] == status && got["substatus"] == substatus {
		return got
	}
	e.srv.mu.Lock()
	ent := e.srv.referrals[strings.ToLower(got["id"].(string))]
	ref := ent.ref.clone()
	ref.Status, ref.Substatus, ref.AcceptedDateTime = status, substatus, ""
	e.srv.store(ref)
	e.srv.mu.Unlock()
	return e.referral(got["id"].(string))
}
