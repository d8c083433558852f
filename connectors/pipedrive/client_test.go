package pipedrive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// testNow is the sandbox clock: seed data and write timestamps derive from it.
var testNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

const testNowWire = "2026-03-02T12:00:00Z"

// seeded sandbox facts the tests rely on.
const (
	seededDeals      = 200
	seededActivities = 300
)

// recorded is one request as the server received it.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// env is a sandbox served over real HTTP with a client pointed at it. Every
// request is recorded before the sandbox handles it.
type env struct {
	t   *testing.T
	sb  *sandbox.Server
	ts  *httptest.Server
	c   *pipedrive.Client
	mu  sync.Mutex
	log []recorded
}

// newEnv starts a sandbox with a fixed clock and a burst limit high enough not
// to interfere unless opts says otherwise. wrap, if set, sits between the
// recorder and the sandbox.
func newEnv(t *testing.T, opts sandbox.Options, wrap func(http.Handler) http.Handler, copts ...pipedrive.Option) *env {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(testNow)
	}
	if opts.Burst == 0 {
		opts.Burst = 1 << 20
	}
	e := &env{t: t, sb: sandbox.New(opts)}
	var h http.Handler = e.sb
	if wrap != nil {
		h = wrap(h)
	}
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.mu.Lock()
		e.log = append(e.log, recorded{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), body})
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.ts.Close)
	e.c = e.client(copts...)
	return e
}

// client returns a client of the sandbox with the default token; opts come
// after the base URL and so may override it.
func (e *env) client(opts ...pipedrive.Option) *pipedrive.Client {
	return pipedrive.New(sandbox.DefaultToken, append([]pipedrive.Option{pipedrive.WithBaseURL(e.ts.URL)}, opts...)...)
}

func (e *env) requests() []recorded {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

func (e *env) last() recorded {
	e.t.Helper()
	reqs := e.requests()
	require.NotEmpty(e.t, reqs)
	return reqs[len(reqs)-1]
}

// raw fetches path from the sandbox without the client and returns the
// decoded envelope.
func (e *env) raw(path string, q url.Values) map[string]any {
	e.t.Helper()
	u := e.ts.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(e.t, err)
	req.Header.Set("x-api-token", sandbox.DefaultToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	var env map[string]any
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&env))
	return env
}

func (e *env) rawObject(path string) map[string]any {
	e.t.Helper()
	d, ok := e.raw(path, nil)["data"].(map[string]any)
	require.True(e.t, ok, "data of %s is not an object", path)
	return d
}

func (e *env) rawList(path string, q url.Values) []map[string]any {
	e.t.Helper()
	d, ok := e.raw(path, q)["data"].([]any)
	require.True(e.t, ok, "data of %s is not a list", path)
	out := make([]map[string]any, len(d))
	for i, v := range d {
		out[i] = v.(map[string]any)
	}
	return out
}

// assertDecoded checks that every field of the typed value holds what the
// wire object held: fields the client encodes must equal the raw values, and
// fields it leaves out (omitempty) must have been zero or absent on the wire.
// Nested objects are compared on the client's fields only.
func assertDecoded(t *testing.T, raw map[string]any, typed any) {
	t.Helper()
	buf, err := json.Marshal(typed)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf, &got))
	rt := reflect.TypeOf(typed)
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	require.Equal(t, reflect.Struct, rt.Kind())
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if v, ok := got[name]; ok {
			assertSubset(t, rt.Name()+"."+name, raw[name], v)
		} else {
			assert.Truef(t, zeroJSON(raw[name]), "%s.%s: wire value %v was decoded as zero", rt.Name(), name, raw[name])
		}
	}
}

func assertSubset(t *testing.T, path string, raw, got any) {
	t.Helper()
	g, isMap := got.(map[string]any)
	if !isMap {
		assert.Equalf(t, raw, got, "%s", path)
		return
	}
	r, ok := raw.(map[string]any)
	if !assert.Truef(t, ok, "%s: wire value %v is not an object", path, raw) {
		return
	}
	for k, v := range g {
		assertSubset(t, path+"."+k, r[k], v)
	}
}

func zeroJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// upstreamErr asserts that err is an *upstream.Error of the pipedrive
// connector with the given status and returns it.
func upstreamErr(t *testing.T, err error, status int) *upstream.Error {
	t.Helper()
	require.Error(t, err)
	var ue *upstream.Error
	require.ErrorAs(t, err, &ue, "error %T: %v", err, err)
	assert.Equal(t, "pipedrive", ue.Connector)
	assert.Equal(t, status, ue.Status, "error: %v", err)
	return ue
}

func ptr[T any](v T) *T { return &v }

func collect[T any](t *testing.T, seq iter.Seq2[T, error]) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		require.NoError(t, err)
		out = append(out, v)
	}
	return out
}

// --- deals -----------------------------------------------------------------

func TestGetDeal(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	for _, id := range []int64{1, 17, 120, seededDeals} {
		d, err := e.c.GetDeal(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, id, d.ID)
		assert.NotEmpty(t, d.Title)
		assert.Positive(t, d.OwnerID)
		assert.Contains(t, []int64{1, 2}, d.PipelineID)
		assert.Contains(t, []string{"open", "won", "lost"}, d.Status)
		assertDecoded(t, e.rawObject(fmt.Sprintf("/api/v2/deals/%d", id)), d)

		r := e.last()
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Equal(t, fmt.Sprintf("/api/v2/deals/%d", id), r.Path)
		assert.Empty(t, r.Query)
		assert.Empty(t, r.Body)
	}
}

func TestGetDealNotFound(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	d, err := e.c.GetDeal(t.Context(), 9999)
	assert.Nil(t, d)
	ue := upstreamErr(t, err, http.StatusNotFound)
	assert.Equal(t, "Entity was not found", ue.Message)
	assert.Equal(t, "Object was not found.", ue.Detail)
	assert.Zero(t, ue.RetryAfter)
	assert.Equal(t, "pipedrive: HTTP 404: Entity was not found (Object was not found.)", ue.Error())
}

func TestListDeals(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()

	t.Run("first page", func(t *testing.T) {
		deals, resp, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{Limit: 5})
		require.NoError(t, err)
		require.Len(t, deals, 5)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotEmpty(t, resp.NextCursor)
		assert.Equal(t, 1<<20, resp.RateLimit.Limit)
		assert.Positive(t, resp.RateLimit.Remaining)
		assert.Positive(t, resp.RateLimit.Reset)
		raw := e.rawList("/api/v2/deals", url.Values{"limit": {"5"}})
		require.Len(t, raw, 5)
		for i := range deals {
			assert.Equal(t, int64(i+1), deals[i].ID)
			assertDecoded(t, raw[i], deals[i])
		}
		assert.Equal(t, url.Values{"limit": {"5"}}, e.requests()[0].Query)
	})

	t.Run("filters and sort are sent", func(t *testing.T) {
		p := pipedrive.ListDealsParams{
			PipelineID: 2, Status: "open", SortBy: "update_time", SortDirection: "desc", Limit: 500,
			UpdatedSince: testNow.AddDate(-1, 0, 0).In(time.FixedZone("x", 3600)),
		}
		deals, resp, err := e.c.ListDeals(ctx, p)
		require.NoError(t, err)
		assert.Empty(t, resp.NextCursor, "everything fits one page")
		require.NotEmpty(t, deals)
		for i, d := range deals {
			assert.Equal(t, int64(2), d.PipelineID)
			assert.Equal(t, "open", d.Status)
			assert.GreaterOrEqual(t, d.UpdateTime, "2025-03-02T12:00:00Z")
			if i > 0 {
				assert.GreaterOrEqual(t, deals[i-1].UpdateTime, d.UpdateTime, "sorted by update_time desc")
			}
		}
		assert.Equal(t, url.Values{
			"pipeline_id": {"2"}, "status": {"open"}, "sort_by": {"update_time"}, "sort_direction": {"desc"},
			"limit": {"500"}, "updated_since": {"2025-03-02T12:00:00Z"},
		}, e.last().Query, "times go out in UTC")
	})

	t.Run("ids owner org stage", func(t *testing.T) {
		deals, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{IDs: []int64{7, 3, 5}})
		require.NoError(t, err)
		assert.Equal(t, []int64{3, 5, 7}, dealIDs(deals))
		assert.Equal(t, "7,3,5", e.last().Query.Get("ids"))

		d5 := deals[1]
		deals, _, err = e.c.ListDeals(ctx, pipedrive.ListDealsParams{
			OwnerID: d5.OwnerID, OrgID: d5.OrgID, StageID: d5.StageID, Limit: 500,
		})
		require.NoError(t, err)
		assert.Contains(t, dealIDs(deals), int64(5))
		for _, d := range deals {
			assert.Equal(t, d5.OwnerID, d.OwnerID)
			assert.Equal(t, d5.OrgID, d.OrgID)
			assert.Equal(t, d5.StageID, d.StageID)
		}
	})

	t.Run("next page by cursor", func(t *testing.T) {
		first, resp, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{Limit: 3})
		require.NoError(t, err)
		second, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{Limit: 3, Cursor: resp.NextCursor})
		require.NoError(t, err)
		assert.Equal(t, []int64{1, 2, 3}, dealIDs(first))
		assert.Equal(t, []int64{4, 5, 6}, dealIDs(second))
		assert.Equal(t, resp.NextCursor, e.last().Query.Get("cursor"))
	})

	t.Run("bad parameter", func(t *testing.T) {
		_, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{Limit: 501})
		ue := upstreamErr(t, err, http.StatusBadRequest)
		assert.Equal(t, "The parameter 'limit' must be between 1 and 500", ue.Message)
	})
}

func dealIDs(deals []pipedrive.Deal) []int64 {
	ids := make([]int64, len(deals))
	for i, d := range deals {
		ids[i] = d.ID
	}
	return ids
}

func TestDealsIteratorWalksEveryDealOnce(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	const limit = 7
	before := e.sb.RequestCount()
	seen := map[int64]int{}
	var order []int64
	for d, err := range e.c.Deals(t.Context(), pipedrive.ListDealsParams{Limit: limit}) {
		require.NoError(t, err)
		seen[d.ID]++
		order = append(order, d.ID)
	}
	require.Len(t, order, seededDeals)
	require.Len(t, seen, seededDeals, "no deal twice")
	assert.True(t, slices.IsSorted(order))
	assert.Equal(t, int64(1), order[0])
	assert.Equal(t, int64(seededDeals), order[len(order)-1])
	pages := (seededDeals + limit - 1) / limit
	assert.Equal(t, pages, e.sb.RequestCount()-before, "one request per page")

	reqs := e.requests()
	assert.Empty(t, reqs[0].Query.Get("cursor"))
	for _, r := range reqs[1:] {
		assert.NotEmpty(t, r.Query.Get("cursor"))
		assert.Equal(t, "7", r.Query.Get("limit"), "params are kept across pages")
	}

	t.Run("filtered walk equals the raw filtered list", func(t *testing.T) {
		p := pipedrive.ListDealsParams{PipelineID: 2, Status: "won,lost", Limit: 4}
		got := collect(t, e.c.Deals(t.Context(), p))
		raw := e.rawList("/api/v2/deals", url.Values{"pipeline_id": {"2"}, "status": {"won,lost"}, "limit": {"500"}})
		require.Len(t, got, len(raw))
		for i := range raw {
			assertDecoded(t, raw[i], got[i])
		}
	})
}

func TestIteratorsCanBeRangedAgain(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	seq := e.c.Deals(t.Context(), pipedrive.ListDealsParams{Limit: 30})
	first := dealIDs(collect(t, seq))
	second := dealIDs(collect(t, seq))
	assert.Len(t, first, seededDeals)
	assert.Equal(t, first, second, "a second range starts from the first page again")

	var wg sync.WaitGroup
	results := make([][]int64, 3)
	for i := range results {
		wg.Go(func() {
			var ids []int64
			for d, err := range seq {
				if !assert.NoError(t, err) {
					return
				}
				ids = append(ids, d.ID)
			}
			results[i] = ids
		})
	}
	wg.Wait()
	for _, ids := range results {
		assert.Equal(t, first, ids, "concurrent ranges do not interfere")
	}
}

func TestDealsIteratorStopsWhenConsumerBreaks(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	for _, tc := range []struct {
		take, wantRequests int
	}{
		{1, 1},
		{10, 1}, // the last item of the first page: no next page is fetched
		{11, 2},
		{25, 3},
	} {
		t.Run(fmt.Sprint(tc.take), func(t *testing.T) {
			before := e.sb.RequestCount()
			var ids []int64
			for d, err := range e.c.Deals(t.Context(), pipedrive.ListDealsParams{Limit: 10}) {
				require.NoError(t, err)
				ids = append(ids, d.ID)
				if len(ids) == tc.take {
					break
				}
			}
			assert.Len(t, ids, tc.take)
			assert.Equal(t, tc.wantRequests, e.sb.RequestCount()-before)
		})
	}
}

func TestDealsIteratorYieldsPageError(t *testing.T) {
	t.Run("rate limited mid-walk", func(t *testing.T) {
		e := newEnv(t, sandbox.Options{Burst: 3}, nil, pipedrive.WithHTTPClient(&http.Client{}))
		var ids []int64
		var errs []error
		for d, err := range e.c.Deals(t.Context(), pipedrive.ListDealsParams{Limit: 2}) {
			if err != nil {
				errs = append(errs, err)
				assert.Zero(t, d, "no item with the error")
				continue
			}
			ids = append(ids, d.ID)
		}
		assert.Equal(t, []int64{1, 2, 3, 4, 5, 6}, ids, "the pages before the failure")
		require.Len(t, errs, 1, "the iterator ends after the error")
		ue := upstreamErr(t, errs[0], http.StatusTooManyRequests)
		assert.Positive(t, ue.RetryAfter)
		assert.Equal(t, 4, e.sb.RequestCount())
	})

	t.Run("invalid cursor on the first page", func(t *testing.T) {
		e := newEnv(t, sandbox.Options{}, nil)
		n := 0
		for d, err := range e.c.Deals(t.Context(), pipedrive.ListDealsParams{Cursor: "not-a-cursor"}) {
			n++
			assert.Zero(t, d)
			ue := upstreamErr(t, err, http.StatusBadRequest)
			assert.Equal(t, "The parameter 'cursor' is invalid", ue.Message)
		}
		assert.Equal(t, 1, n)
	})

	t.Run("consumer stops at the error", func(t *testing.T) {
		e := newEnv(t, sandbox.Options{Token: "other"}, nil)
		for _, err := range e.c.Deals(t.Context(), pipedrive.ListDealsParams{}) {
			upstreamErr(t, err, http.StatusUnauthorized)
			break
		}
		assert.Equal(t, 1, e.sb.RequestCount())
	})
}

func TestAddDeal(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	orgs, _, err := e.c.SearchOrganizations(ctx, "Contoso Ltd", 1)
	require.NoError(t, err)
	require.Len(t, orgs, 1)
	contoso := orgs[0].Item.ID

	in := pipedrive.DealInput{
		Title:             ptr("  Contoso Ltd — Fabric pilot  "),
		OwnerID:           ptr(int64(3)),
		OrgID:             ptr(contoso),
		PipelineID:        ptr(int64(2)),
		StageID:           ptr(int64(9)),
		Value:             ptr(42500.5),
		Currency:          ptr("EUR"),
		VisibleTo:         ptr(7),
		ExpectedCloseDate: ptr("2026-06-30"),
	}
	d, err := e.c.AddDeal(ctx, in)
	require.NoError(t, err)

	req := e.last()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v2/deals", req.Path)
	assert.JSONEq(t, fmt.Sprintf(`{"title":"  Contoso Ltd — Fabric pilot  ","owner_id":3,"org_id":%d,"pipeline_id":2,
		"stage_id":9,"value":42500.5,"currency":"EUR","visible_to":7,"expected_close_date":"2026-06-30"}`, contoso),
		string(req.Body), "only set fields are sent")

	assert.Equal(t, int64(seededDeals+1), d.ID)
	assert.Equal(t, "Contoso Ltd — Fabric pilot", d.Title)
	assert.Equal(t, int64(3), d.OwnerID)
	assert.Equal(t, int64(1), d.CreatorUserID, "created by the token's user")
	assert.Equal(t, contoso, d.OrgID)
	assert.Zero(t, d.PersonID)
	assert.Equal(t, int64(2), d.PipelineID)
	assert.Equal(t, int64(9), d.StageID)
	assert.Equal(t, 42500.5, d.Value)
	assert.Equal(t, "EUR", d.Currency)
	assert.Equal(t, "open", d.Status)
	assert.Equal(t, 7, d.VisibleTo)
	assert.Equal(t, "2026-06-30", d.ExpectedCloseDate)
	assert.Equal(t, testNowWire, d.AddTime)
	assert.Equal(t, testNowWire, d.UpdateTime)
	assert.Empty(t, d.CloseTime)

	got, err := e.c.GetDeal(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, d, got)

	t.Run("minimal", func(t *testing.T) {
		d, err := e.c.AddDeal(ctx, pipedrive.DealInput{Title: ptr("Bare"), PipelineID: ptr(int64(2))})
		require.NoError(t, err)
		assert.JSONEq(t, `{"title":"Bare","pipeline_id":2}`, string(e.last().Body))
		assert.Equal(t, int64(7), d.StageID, "first stage of the pipeline")
		assert.Equal(t, int64(1), d.OwnerID)
		assert.Equal(t, "USD", d.Currency)
	})

	t.Run("validation", func(t *testing.T) {
		for _, tc := range []struct {
			in  pipedrive.DealInput
			msg string
		}{
			{pipedrive.DealInput{Value: ptr(1.0)}, "The field 'title' is required"},
			{pipedrive.DealInput{Title: ptr("x"), PipelineID: ptr(int64(1)), StageID: ptr(int64(8))},
				"Stage with id 8 does not belong to pipeline with id 1"},
			{pipedrive.DealInput{Title: ptr("x"), OrgID: ptr(int64(999))}, "Organization with id 999 does not exist"},
			{pipedrive.DealInput{Title: ptr("x"), Currency: ptr("euro")}, "The field 'currency' must be a 3-letter ISO 4217 currency code"},
		} {
			d, err := e.c.AddDeal(ctx, tc.in)
			assert.Nil(t, d)
			ue := upstreamErr(t, err, http.StatusBadRequest)
			assert.Equal(t, tc.msg, ue.Message)
		}
	})
}

func TestUpdateDeal(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	open := firstDeal(t, e, "open")
	before, err := e.c.GetDeal(ctx, open)
	require.NoError(t, err)

	t.Run("partial update", func(t *testing.T) {
		d, err := e.c.UpdateDeal(ctx, open, pipedrive.DealInput{Title: ptr("Renamed")})
		require.NoError(t, err)
		req := e.last()
		assert.Equal(t, http.MethodPatch, req.Method)
		assert.Equal(t, fmt.Sprintf("/api/v2/deals/%d", open), req.Path)
		assert.JSONEq(t, `{"title":"Renamed"}`, string(req.Body))

		want := *before
		want.Title, want.UpdateTime = "Renamed", testNowWire
		assert.Equal(t, &want, d, "nothing else changes")
	})

	t.Run("move stage", func(t *testing.T) {
		target := int64(6)
		if before.StageID == target {
			target = 5
		}
		d, err := e.c.UpdateDeal(ctx, open, pipedrive.DealInput{PipelineID: ptr(int64(1)), StageID: ptr(target)})
		require.NoError(t, err)
		assert.Equal(t, target, d.StageID)
		assert.Equal(t, int64(1), d.PipelineID)
		assert.Equal(t, testNowWire, d.StageChangeTime)
	})

	t.Run("lost with reason", func(t *testing.T) {
		d, err := e.c.UpdateDeal(ctx, open, pipedrive.DealInput{Status: ptr("lost"), LostReason: ptr("Budget cut")})
		require.NoError(t, err)
		assert.JSONEq(t, `{"status":"lost","lost_reason":"Budget cut"}`, string(e.last().Body))
		assert.Equal(t, "lost", d.Status)
		assert.Equal(t, "Budget cut", d.LostReason)
		assert.Equal(t, testNowWire, d.LostTime)
		assert.Equal(t, testNowWire, d.CloseTime)
		assert.Empty(t, d.WonTime)

		got, err := e.c.GetDeal(ctx, open)
		require.NoError(t, err)
		assert.Equal(t, d, got)
	})

	t.Run("won", func(t *testing.T) {
		d, err := e.c.UpdateDeal(ctx, open, pipedrive.DealInput{Status: ptr("won")})
		require.NoError(t, err)
		assert.Equal(t, "won", d.Status)
		assert.Empty(t, d.LostReason, "winning clears the lost reason")
		assert.Empty(t, d.LostTime)
		assert.Equal(t, testNowWire, d.WonTime)
	})

	t.Run("validation", func(t *testing.T) {
		for _, tc := range []struct {
			in  pipedrive.DealInput
			msg string
		}{
			{pipedrive.DealInput{Status: ptr("won"), LostReason: ptr("Price")}, "The field 'lost_reason' can only be set if deal status is lost"},
			{pipedrive.DealInput{PipelineID: ptr(int64(2)), StageID: ptr(int64(3))}, "Stage with id 3 does not belong to pipeline with id 2"},
			{pipedrive.DealInput{StageID: ptr(int64(42))}, "Stage with id 42 does not exist"},
			{pipedrive.DealInput{Status: ptr("closed")}, "The field 'status' must be one of: open, won, lost, deleted"},
			{pipedrive.DealInput{Title: ptr("   ")}, "The field 'title' must not be empty"},
			{pipedrive.DealInput{Value: ptr(-1.0)}, "The field 'value' must not be negative"},
			{pipedrive.DealInput{OwnerID: ptr(int64(7))}, "User with id 7 does not exist"},
		} {
			d, err := e.c.UpdateDeal(ctx, open, tc.in)
			assert.Nil(t, d)
			ue := upstreamErr(t, err, http.StatusBadRequest)
			assert.Equal(t, tc.msg, ue.Message)
			assert.NotEmpty(t, ue.Detail)
		}
		got, err := e.c.GetDeal(ctx, open)
		require.NoError(t, err)
		assert.Equal(t, "won", got.Status, "a rejected update changes nothing")
	})

	t.Run("unknown deal", func(t *testing.T) {
		_, err := e.c.UpdateDeal(ctx, 9999, pipedrive.DealInput{Title: ptr("x")})
		ue := upstreamErr(t, err, http.StatusNotFound)
		assert.Equal(t, "Entity was not found", ue.Message)
	})
}

// firstDeal returns the lowest id of a seeded deal with the status.
func firstDeal(t *testing.T, e *env, status string) int64 {
	t.Helper()
	deals, _, err := e.c.ListDeals(t.Context(), pipedrive.ListDealsParams{Status: status, Limit: 1})
	require.NoError(t, err)
	require.Len(t, deals, 1)
	return deals[0].ID
}

func TestDealProbabilityIsANumber(t *testing.T) {
	// API v2 declares probability a number; a fractional one must decode.
	e := newEnv(t, sandbox.Options{}, nil)
	req, err := http.NewRequest(http.MethodPatch, e.ts.URL+"/api/v2/deals/1", strings.NewReader(`{"probability":12.5}`))
	require.NoError(t, err)
	req.Header.Set("x-api-token", sandbox.DefaultToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	d, err := e.c.GetDeal(t.Context(), 1)
	require.NoError(t, err)
	require.NotNil(t, d.Probability)
	assert.InDelta(t, 12.5, *d.Probability, 1e-9)
	deals, _, err := e.c.ListDeals(t.Context(), pipedrive.ListDealsParams{Limit: 2})
	require.NoError(t, err, "one such deal must not break its page")
	assert.Len(t, deals, 2)
}

func TestDeleteDeal(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	require.NoError(t, e.c.DeleteDeal(ctx, 4))
	req := e.last()
	assert.Equal(t, http.MethodDelete, req.Method)
	assert.Equal(t, "/api/v2/deals/4", req.Path)
	assert.Empty(t, req.Body)
	assert.Empty(t, req.Header.Get("Content-Type"), "no body, no content type")

	d, err := e.c.GetDeal(ctx, 4)
	require.NoError(t, err)
	assert.Equal(t, "deleted", d.Status)
	assert.True(t, d.IsDeleted)

	live, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{Limit: 500})
	require.NoError(t, err)
	assert.Len(t, live, seededDeals-1)
	assert.NotContains(t, dealIDs(live), int64(4))
	deleted, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{Status: "deleted"})
	require.NoError(t, err)
	assert.Equal(t, []int64{4}, dealIDs(deleted))

	require.NoError(t, e.c.DeleteDeal(ctx, 4), "deleting twice is harmless")
	ue := upstreamErr(t, e.c.DeleteDeal(ctx, 9999), http.StatusNotFound)
	assert.Equal(t, "Entity was not found", ue.Message)
}

// --- search ----------------------------------------------------------------

func TestSearchDeals(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()

	hits, resp, err := e.c.SearchDeals(ctx, pipedrive.SearchDealsParams{Term: "Contoso", Fields: "title"})
	require.NoError(t, err)
	require.NotEmpty(t, hits)
	assert.Empty(t, resp.NextCursor)
	assert.Equal(t, url.Values{"term": {"Contoso"}, "fields": {"title"}}, e.last().Query)

	raw := e.raw("/api/v2/deals/search", url.Values{"term": {"Contoso"}, "fields": {"title"}})
	rawItems := raw["data"].(map[string]any)["items"].([]any)
	require.Len(t, hits, len(rawItems))
	for i, h := range hits {
		ri := rawItems[i].(map[string]any)
		assert.Equal(t, ri["result_score"], h.ResultScore)
		assertDecoded(t, ri["item"].(map[string]any), h.Item)

		assert.Contains(t, h.Item.Title, "Contoso")
		require.NotNil(t, h.Item.Organization)
		assert.Equal(t, "Contoso Ltd", h.Item.Organization.Name)
		assert.Positive(t, h.Item.Owner.ID)
		st, err := e.c.GetStage(ctx, h.Item.Stage.ID)
		require.NoError(t, err)
		assert.Equal(t, st.Name, h.Item.Stage.Name)
		if i > 0 {
			assert.GreaterOrEqual(t, hits[i-1].ResultScore, h.ResultScore, "best first")
		}
	}

	t.Run("filters", func(t *testing.T) {
		d := hits[0].Item
		got, _, err := e.c.SearchDeals(ctx, pipedrive.SearchDealsParams{
			Term: d.Title, ExactMatch: true, Status: d.Status, OrganizationID: d.Organization.ID, Limit: 5,
		})
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, d.ID, got[0].Item.ID)
		assert.Equal(t, url.Values{
			"term": {d.Title}, "exact_match": {"true"}, "status": {d.Status},
			"organization_id": {fmt.Sprint(d.Organization.ID)}, "limit": {"5"},
		}, e.last().Query)

		if d.Person != nil {
			got, _, err = e.c.SearchDeals(ctx, pipedrive.SearchDealsParams{Term: "Contoso", PersonID: d.Person.ID})
			require.NoError(t, err)
			for _, h := range got {
				require.NotNil(t, h.Item.Person)
				assert.Equal(t, d.Person.ID, h.Item.Person.ID)
			}
		}

		won, _, err := e.c.SearchDeals(ctx, pipedrive.SearchDealsParams{Term: "Contoso", Status: "won"})
		require.NoError(t, err)
		for _, h := range won {
			assert.Equal(t, "won", h.Item.Status)
		}
	})

	t.Run("pages", func(t *testing.T) {
		var ids []int64
		cursor := ""
		for {
			page, resp, err := e.c.SearchDeals(ctx, pipedrive.SearchDealsParams{Term: "Contoso", Fields: "title", Limit: 1, Cursor: cursor})
			require.NoError(t, err)
			require.Len(t, page, 1)
			ids = append(ids, page[0].Item.ID)
			if resp.NextCursor == "" {
				break
			}
			cursor = resp.NextCursor
		}
		want := make([]int64, len(hits))
		for i, h := range hits {
			want[i] = h.Item.ID
		}
		assert.Equal(t, want, ids)
	})

	t.Run("no hits", func(t *testing.T) {
		got, _, err := e.c.SearchDeals(ctx, pipedrive.SearchDealsParams{Term: "zzzz-nothing"})
		require.NoError(t, err)
		assert.Empty(t, got)
	})

	t.Run("short term", func(t *testing.T) {
		_, _, err := e.c.SearchDeals(ctx, pipedrive.SearchDealsParams{Term: "C"})
		ue := upstreamErr(t, err, http.StatusBadRequest)
		assert.Equal(t, "The parameter 'term' must be at least 2 characters long", ue.Message)
	})
}

func TestSearchOrganizations(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	hits, resp, err := e.c.SearchOrganizations(ctx, "Contoso", 10)
	require.NoError(t, err)
	assert.Empty(t, resp.NextCursor)
	require.Len(t, hits, 1)
	assert.Equal(t, "Contoso Ltd", hits[0].Item.Name)
	assert.Positive(t, hits[0].ResultScore)
	assert.Equal(t, url.Values{"term": {"Contoso"}, "fields": {"name"}, "limit": {"10"}}, e.last().Query)

	org, err := e.c.GetOrganization(ctx, hits[0].Item.ID)
	require.NoError(t, err)
	assert.Equal(t, "Contoso Ltd", org.Name)

	many, resp, err := e.c.SearchOrganizations(ctx, "in", 2)
	require.NoError(t, err)
	assert.Len(t, many, 2)
	assert.NotEmpty(t, resp.NextCursor)
	assert.GreaterOrEqual(t, many[0].ResultScore, many[1].ResultScore)

	_, _, err = e.c.SearchOrganizations(ctx, "", 0)
	ue := upstreamErr(t, err, http.StatusBadRequest)
	assert.Equal(t, "The parameter 'term' is required", ue.Message)
}

// --- pipelines and stages --------------------------------------------------

func TestGetStage(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	st, err := e.c.GetStage(ctx, 4)
	require.NoError(t, err)
	assert.Equal(t, int64(4), st.ID)
	assert.Equal(t, "Demo Scheduled", st.Name)
	assert.Equal(t, int64(1), st.PipelineID)
	assert.Equal(t, 4, st.OrderNr)
	assert.Equal(t, 50, st.DealProbability)
	assert.True(t, st.IsDealRotEnabled)
	require.NotNil(t, st.DaysToRotten)
	assert.Equal(t, 14, *st.DaysToRotten)
	assertDecoded(t, e.rawObject("/api/v2/stages/4"), st)

	st, err = e.c.GetStage(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "Lead In", st.Name)
	assert.Nil(t, st.DaysToRotten)
	assert.False(t, st.IsDealRotEnabled)

	_, err = e.c.GetStage(ctx, 99)
	upstreamErr(t, err, http.StatusNotFound)
}

func TestStages(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	names := func(stages []pipedrive.Stage) []string {
		out := make([]string, len(stages))
		for i, s := range stages {
			out[i] = s.Name
		}
		return out
	}
	sales := []string{"Lead In", "Qualified", "Contact Made", "Demo Scheduled", "Proposal Made", "Negotiations Started"}

	before := e.sb.RequestCount()
	all := collect(t, e.c.Stages(t.Context(), 0))
	assert.Equal(t, 1, e.sb.RequestCount()-before)
	assert.Equal(t, url.Values{"limit": {"500"}}, e.last().Query)
	require.Len(t, all, 11)
	assert.Equal(t, sales, names(all[:6]))
	raw := e.rawList("/api/v2/stages", nil)
	for i := range raw {
		assert.Equal(t, int64(i+1), all[i].ID)
		assertDecoded(t, raw[i], all[i])
	}

	one := collect(t, e.c.Stages(t.Context(), 1))
	assert.Equal(t, url.Values{"limit": {"500"}, "pipeline_id": {"1"}}, e.last().Query)
	assert.Equal(t, sales, names(one))

	two := collect(t, e.c.Stages(t.Context(), 2))
	require.Len(t, two, 5)
	for i, s := range two {
		assert.Equal(t, int64(7+i), s.ID)
		assert.Equal(t, int64(2), s.PipelineID)
		assert.Equal(t, i+1, s.OrderNr)
	}
	assert.Equal(t, "Referral Received", two[0].Name)

	assert.Empty(t, collect(t, e.c.Stages(t.Context(), 3)), "an unknown pipeline has no stages")
}

func TestPipelines(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ps := collect(t, e.c.Pipelines(t.Context()))
	require.Len(t, ps, 2)
	assert.Equal(t, int64(1), ps[0].ID)
	assert.Equal(t, "Sales", ps[0].Name)
	assert.Equal(t, int64(2), ps[1].ID)
	assert.Equal(t, "Partner Co-sell", ps[1].Name)
	assert.Equal(t, 2, ps[1].OrderNr)
	assert.True(t, ps[0].IsDealProbabilityEnabled)
	raw := e.rawList("/api/v2/pipelines", nil)
	for i := range raw {
		assertDecoded(t, raw[i], ps[i])
	}
	assert.Equal(t, "/api/v2/pipelines", e.requests()[0].Path)
	assert.Equal(t, url.Values{"limit": {"500"}}, e.requests()[0].Query)
}

// --- activities ------------------------------------------------------------

func TestAddActivity(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	deal, err := e.c.GetDeal(ctx, 12)
	require.NoError(t, err)

	a, err := e.c.AddActivity(ctx, pipedrive.ActivityInput{
		Subject: "Architecture workshop", Type: "meeting", OwnerID: 2, DealID: 12,
		DueDate: "2026-03-10", DueTime: "15:30", Duration: "1:30", Note: "Bring the PDM", Done: ptr(true),
	})
	require.NoError(t, err)
	req := e.last()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v2/activities", req.Path)
	assert.JSONEq(t, `{"subject":"Architecture workshop","type":"meeting","owner_id":2,"deal_id":12,
		"due_date":"2026-03-10","due_time":"15:30","duration":"1:30","note":"Bring the PDM","done":true}`, string(req.Body))

	assert.Equal(t, int64(seededActivities+1), a.ID)
	assert.Equal(t, "Architecture workshop", a.Subject)
	assert.Equal(t, "meeting", a.Type)
	assert.Equal(t, int64(2), a.OwnerID)
	assert.Equal(t, int64(1), a.CreatorUserID)
	assert.Equal(t, int64(12), a.DealID)
	assert.Equal(t, deal.PersonID, a.PersonID, "linked through the deal")
	assert.Equal(t, deal.OrgID, a.OrgID)
	assert.Equal(t, "2026-03-10", a.DueDate)
	assert.Equal(t, "15:30:00", a.DueTime)
	assert.Equal(t, "01:30:00", a.Duration)
	assert.Equal(t, "Bring the PDM", a.Note)
	assert.True(t, a.Done)
	assert.Equal(t, testNowWire, a.MarkedAsDoneTime)
	assert.Equal(t, testNowWire, a.AddTime)

	list, _, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{DealID: 12, Limit: 500})
	require.NoError(t, err)
	require.NotEmpty(t, list)
	assert.Equal(t, *a, list[len(list)-1])

	t.Run("minimal", func(t *testing.T) {
		a, err := e.c.AddActivity(ctx, pipedrive.ActivityInput{Subject: "", Type: "call"})
		require.NoError(t, err)
		assert.JSONEq(t, `{"subject":"","type":"call"}`, string(e.last().Body))
		assert.Equal(t, "Call", a.Subject, "an empty subject takes the type's name")
		assert.Equal(t, int64(1), a.OwnerID)
		assert.False(t, a.Done)
	})

	t.Run("validation", func(t *testing.T) {
		for _, tc := range []struct {
			in  pipedrive.ActivityInput
			msg string
		}{
			{pipedrive.ActivityInput{Subject: "x", Type: "fax"}, "The field 'type' must be an existing activity type key_string"},
			{pipedrive.ActivityInput{Subject: "x", Type: "call", DealID: 9999}, "Deal with id 9999 does not exist"},
			{pipedrive.ActivityInput{Subject: "x", Type: "call", Duration: "90 minutes"}, "The field 'duration' must be a duration in the format HH:MM"},
		} {
			a, err := e.c.AddActivity(ctx, tc.in)
			assert.Nil(t, a)
			ue := upstreamErr(t, err, http.StatusBadRequest)
			assert.Equal(t, tc.msg, ue.Message)
		}
	})
}

func TestListActivities(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()

	page, resp, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{Limit: 50})
	require.NoError(t, err)
	require.Len(t, page, 50)
	assert.NotEmpty(t, resp.NextCursor)
	raw := e.rawList("/api/v2/activities", url.Values{"limit": {"50"}})
	for i := range raw {
		assertDecoded(t, raw[i], page[i])
	}

	var total int
	cursor := ""
	for {
		page, resp, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{Limit: 120, Cursor: cursor})
		require.NoError(t, err)
		total += len(page)
		if resp.NextCursor == "" {
			break
		}
		cursor = resp.NextCursor
	}
	assert.Equal(t, seededActivities, total)

	open, _, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{
		Done: ptr(false), OwnerID: 1, SortBy: "due_date", SortDirection: "desc", Limit: 500,
	})
	require.NoError(t, err)
	require.NotEmpty(t, open)
	assert.Equal(t, url.Values{"done": {"false"}, "owner_id": {"1"}, "sort_by": {"due_date"}, "sort_direction": {"desc"}, "limit": {"500"}},
		e.last().Query)
	for i, a := range open {
		assert.False(t, a.Done)
		assert.Equal(t, int64(1), a.OwnerID)
		if i > 0 && a.DueDate != "" {
			assert.GreaterOrEqual(t, open[i-1].DueDate, a.DueDate)
		}
	}

	done, _, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{Done: ptr(true), Limit: 500})
	require.NoError(t, err)
	assert.Equal(t, "true", e.last().Query.Get("done"))
	for _, a := range done {
		assert.True(t, a.Done)
		assert.NotEmpty(t, a.MarkedAsDoneTime)
	}

	withPerson := page[0]
	for _, a := range page {
		if a.PersonID != 0 && a.OrgID != 0 {
			withPerson = a
			break
		}
	}
	require.NotZero(t, withPerson.PersonID)
	byPerson, _, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{
		PersonID: withPerson.PersonID, OrgID: withPerson.OrgID, UpdatedSince: time.Unix(0, 0), Limit: 500,
	})
	require.NoError(t, err)
	assert.Equal(t, "1970-01-01T00:00:00Z", e.last().Query.Get("updated_since"))
	assert.NotEmpty(t, byPerson)
	for _, a := range byPerson {
		assert.Equal(t, withPerson.PersonID, a.PersonID)
		assert.Equal(t, withPerson.OrgID, a.OrgID)
	}

	none, resp, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{DealID: 9999})
	require.NoError(t, err)
	assert.Empty(t, none)
	assert.Empty(t, resp.NextCursor)
}

// --- persons, organizations, users -----------------------------------------

func TestGetPersonAndOrganization(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	for _, id := range []int64{1, 50, 100} {
		p, err := e.c.GetPerson(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, id, p.ID)
		assert.NotEmpty(t, p.Name)
		assert.Positive(t, p.OrgID)
		assertDecoded(t, e.rawObject(fmt.Sprintf("/api/v2/persons/%d", id)), p)

		o, err := e.c.GetOrganization(ctx, p.OrgID)
		require.NoError(t, err)
		assert.Equal(t, p.OrgID, o.ID)
		assert.NotEmpty(t, o.Name)
		assertDecoded(t, e.rawObject(fmt.Sprintf("/api/v2/organizations/%d", o.ID)), o)
	}

	_, err := e.c.GetPerson(ctx, 101)
	upstreamErr(t, err, http.StatusNotFound)
	_, err = e.c.GetOrganization(ctx, 61)
	upstreamErr(t, err, http.StatusNotFound)
}

func TestUsersAndMe(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	users, err := e.c.Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, "/v1/users", e.last().Path)
	require.Len(t, users, 6)
	assert.Equal(t, pipedrive.User{ID: 1, Name: "Alex Morgan", Email: "alex.morgan@treyresearch.net", Active: true}, users[0])
	raw := e.rawList("/v1/users", nil)
	for i, u := range users {
		assert.Equal(t, int64(i+1), u.ID)
		assertDecoded(t, raw[i], u)
	}

	me, err := e.c.Me(ctx)
	require.NoError(t, err)
	assert.Equal(t, "/v1/users/me", e.last().Path)
	assert.Equal(t, &users[0], me)
}

func TestActivityTypes(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	types, err := e.c.ActivityTypes(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "/v1/activityTypes", e.last().Path)
	keys := make([]string, len(types))
	for i, at := range types {
		keys[i] = at.KeyString
		assert.Equal(t, int64(i+1), at.ID)
		assert.True(t, at.ActiveFlag)
	}
	assert.Equal(t, []string{"call", "meeting", "task", "deadline", "email", "lunch"}, keys)
	assert.Equal(t, "Meeting", types[1].Name)
	raw := e.rawList("/v1/activityTypes", nil)
	for i := range raw {
		assertDecoded(t, raw[i], types[i])
	}
}

// --- request shape ---------------------------------------------------------

func TestRequestHeaders(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()

	_, err := e.c.GetDeal(ctx, 1)
	require.NoError(t, err)
	h := e.last().Header
	assert.Equal(t, sandbox.DefaultToken, h.Get("x-api-token"))
	assert.Equal(t, "application/json", h.Get("Accept"))
	assert.Empty(t, h.Get("Content-Type"), "a GET has no body")
	assert.Equal(t, "cosell-mcp", h.Get("User-Agent"))

	_, err = e.c.AddDeal(ctx, pipedrive.DealInput{Title: ptr("Headers")})
	require.NoError(t, err)
	r := e.last()
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "application/json", r.Header.Get("Accept"))
	assert.Equal(t, sandbox.DefaultToken, r.Header.Get("x-api-token"))
	assert.Equal(t, fmt.Sprint(len(r.Body)), r.Header.Get("Content-Length"))
	assert.Empty(t, r.Query.Get("api_token"), "the token never goes in the URL")

	_, err = e.c.UpdateDeal(ctx, 1, pipedrive.DealInput{Value: ptr(1.0)})
	require.NoError(t, err)
	assert.Equal(t, "application/json", e.last().Header.Get("Content-Type"))

	ua := e.client(pipedrive.WithUserAgent("cosell-mcp/1.2.3 (+test)"))
	_, err = ua.Me(ctx)
	require.NoError(t, err)
	assert.Equal(t, "cosell-mcp/1.2.3 (+test)", e.last().Header.Get("User-Agent"))
}

func TestWrongToken(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	c := pipedrive.New("wrong-token", pipedrive.WithBaseURL(e.ts.URL))
	ctx := t.Context()

	_, err := c.GetDeal(ctx, 1)
	ue := upstreamErr(t, err, http.StatusUnauthorized)
	assert.Equal(t, "unauthorized access", ue.Message)
	assert.Equal(t, "wrong-token", e.last().Header.Get("x-api-token"))

	_, err = c.Me(ctx)
	ue = upstreamErr(t, err, http.StatusUnauthorized)
	assert.Equal(t, "unauthorized access", ue.Message)

	_, err = pipedrive.New("", pipedrive.WithBaseURL(e.ts.URL)).Users(ctx)
	upstreamErr(t, err, http.StatusUnauthorized)
}

func TestWithBaseURL(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	assert.Equal(t, pipedrive.DefaultBaseURL, pipedrive.New("t").BaseURL())

	for _, base := range []string{e.ts.URL, e.ts.URL + "/", e.ts.URL + "//"} {
		c := e.client(pipedrive.WithBaseURL(base))
		assert.Equal(t, e.ts.URL, c.BaseURL())
		d, err := c.GetDeal(t.Context(), 2)
		require.NoError(t, err, base)
		assert.Equal(t, int64(2), d.ID)
		assert.Equal(t, "/api/v2/deals/2", e.last().Path)
		_, err = c.Me(t.Context())
		require.NoError(t, err, base)
		assert.Equal(t, "/v1/users/me", e.last().Path)
	}
}

func TestRateLimited(t *testing.T) {
	e := newEnv(t, sandbox.Options{Burst: 3}, nil, pipedrive.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	ctx := t.Context()
	var last *pipedrive.Response
	for i := range 3 {
		_, resp, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{Limit: 1})
		require.NoError(t, err, "request %d is within the burst", i+1)
		assert.Equal(t, 3, resp.RateLimit.Limit)
		assert.Equal(t, 2-i, resp.RateLimit.Remaining)
		last = resp
	}
	assert.Equal(t, 2*time.Second, last.RateLimit.Reset)

	_, err := e.c.GetDeal(ctx, 1)
	ue := upstreamErr(t, err, http.StatusTooManyRequests)
	assert.Equal(t, "Request over limit", ue.Message)
	assert.Positive(t, ue.RetryAfter)
	assert.Equal(t, 2*time.Second, ue.RetryAfter, "the sandbox's clock is fixed")

	_, err = e.c.Users(ctx)
	ue = upstreamErr(t, err, http.StatusTooManyRequests)
	assert.Positive(t, ue.RetryAfter)
	assert.Equal(t, 5, e.sb.RequestCount(), "a plain client does not retry")
}

func TestRetryAfterDateReadOnTheClientClock(t *testing.T) {
	clk := clock.NewFake(testNow)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil // without a Date the client's clock is the reference
		w.Header().Set("Retry-After", clk.Now().Add(42*time.Second).Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"success":false,"error":"Request over limit"}`)
	}))
	t.Cleanup(ts.Close)
	c := pipedrive.New(sandbox.DefaultToken, pipedrive.WithBaseURL(ts.URL), pipedrive.WithClock(clk))
	assert.Same(t, clk, c.Clock())
	_, err := c.GetDeal(t.Context(), 1)
	ue := upstreamErr(t, err, http.StatusTooManyRequests)
	assert.Equal(t, 42*time.Second, ue.RetryAfter)
}

func TestContextCanceled(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.c.GetDeal(ctx, 1)
	require.ErrorIs(t, err, context.Canceled)
	var ue *upstream.Error
	assert.False(t, errors.As(err, &ue), "not an upstream reply")
	assert.Zero(t, e.sb.RequestCount())
}

// --- malformed replies -----------------------------------------------------

// scripted serves every request with the given status, headers and body.
func scripted(t *testing.T, status int, body string, headers ...string) *pipedrive.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return pipedrive.New("t", pipedrive.WithBaseURL(ts.URL))
}

func TestMalformedReplies(t *testing.T) {
	getDeal := func(c *pipedrive.Client) error { _, err := c.GetDeal(t.Context(), 1); return err }
	listDeals := func(c *pipedrive.Client) error {
		_, _, err := c.ListDeals(t.Context(), pipedrive.ListDealsParams{})
		return err
	}
	search := func(c *pipedrive.Client) error {
		_, _, err := c.SearchDeals(t.Context(), pipedrive.SearchDealsParams{Term: "xx"})
		return err
	}
	users := func(c *pipedrive.Client) error { _, err := c.Users(t.Context()); return err }
	del := func(c *pipedrive.Client) error { return c.DeleteDeal(t.Context(), 1) }
	iterate := func(c *pipedrive.Client) error {
		for _, err := range c.Stages(t.Context(), 0) {
			if err != nil {
				return err
			}
		}
		return nil
	}

	for _, tc := range []struct {
		name    string
		status  int
		body    string
		call    func(*pipedrive.Client) error
		want    int
		message string
	}{
		{"truncated body", 200, `{"success":true,"data":`, getDeal, 200, "malformed response body"},
		{"truncated list", 200, `{"success":true,"data":[{"id":1},`, listDeals, 200, "malformed response body"},
		{"empty body", 200, ``, getDeal, 200, "empty response body"},
		{"html", 200, `<html>maintenance</html>`, users, 200, "malformed response body"},
		{"truncated on delete", 200, `{"succ`, del, 200, "malformed response body"},
		{"list for an object", 200, `{"success":true,"data":[1,2]}`, getDeal, 200, "unexpected data shape"},
		{"object for a list", 200, `{"success":true,"data":{"id":1}}`, listDeals, 200, "unexpected data shape"},
		{"wrong field type", 200, `{"success":true,"data":{"id":"one","title":"x"}}`, getDeal, 200, "unexpected data shape"},
		{"search items not a list", 200, `{"success":true,"data":{"items":{"a":1}}}`, search, 200, "unexpected data shape"},
		{"search data a string", 200, `{"success":true,"data":"items"}`, search, 200, "unexpected data shape"},
		{"users an object", 200, `{"success":true,"data":{"id":1}}`, users, 200, "unexpected data shape"},
		{"iterator page", 200, `{"success":true,"data":{"id":1},"additional_data":{"next_cursor":"x"}}`, iterate, 200, "unexpected data shape"},
		{"success false", 200, `{"success":false,"error":"Deal is locked","error_info":"Try later"}`, getDeal, http.StatusBadGateway, "Deal is locked"},
		{"success false bare", 200, `{"success":false}`, listDeals, http.StatusBadGateway, "request was not successful"},
		{"success missing", 200, `{"data":{"id":1}}`, getDeal, http.StatusBadGateway, "request was not successful"},
		{"success false in iterator", 200, `{"success":false,"error":"nope"}`, iterate, http.StatusBadGateway, "nope"},
		{"error body not json", 500, `oops`, getDeal, 500, "Internal Server Error"},
		{"error body empty", 502, ``, listDeals, 502, "Bad Gateway"},
		{"error body truncated", 400, `{"success":false,"error":"Bad`, getDeal, 400, "Bad Request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := scripted(t, tc.status, tc.body)
			var err error
			require.NotPanics(t, func() { err = tc.call(c) })
			if tc.want == http.StatusOK {
				// A 2xx whose body cannot be used is its own error type
				// (issue finding 8): the upstream acted on the request.
				var be *upstream.BodyError
				require.ErrorAs(t, err, &be)
				assert.Equal(t, http.StatusOK, be.Status)
				assert.Contains(t, err.Error(), tc.message)
				return
			}
			ue := upstreamErr(t, err, tc.want)
			assert.Contains(t, ue.Message, tc.message)
		})
	}

	t.Run("success false detail", func(t *testing.T) {
		err := getDeal(scripted(t, 200, `{"success":false,"error":"Deal is locked","error_info":"Try later"}`))
		ue := upstreamErr(t, err, http.StatusBadGateway)
		assert.Equal(t, "Try later", ue.Detail)
	})

	t.Run("null data", func(t *testing.T) {
		deals, resp, err := scripted(t, 200, `{"success":true,"data":null,"additional_data":{"next_cursor":null}}`).
			ListDeals(t.Context(), pipedrive.ListDealsParams{})
		require.NoError(t, err)
		assert.Empty(t, deals)
		assert.Empty(t, resp.NextCursor)
	})

	t.Run("additional_data of another shape is ignored", func(t *testing.T) {
		for _, ad := range []string{`[]`, `"x"`, `{"next_cursor":5}`, `{"pagination":{"more_items_in_collection":true}}`} {
			deals, resp, err := scripted(t, 200, `{"success":true,"data":[{"id":1}],"additional_data":`+ad+`}`).
				ListDeals(t.Context(), pipedrive.ListDealsParams{})
			require.NoError(t, err, ad)
			assert.Equal(t, []int64{1}, dealIDs(deals))
			assert.Empty(t, resp.NextCursor, ad)
		}
	})

	t.Run("retry-after on 503", func(t *testing.T) {
		err := getDeal(scripted(t, 503, `{"success":false,"error":"Service unavailable"}`, "Retry-After", "7"))
		ue := upstreamErr(t, err, http.StatusServiceUnavailable)
		assert.Equal(t, "Service unavailable", ue.Message)
		assert.Equal(t, 7*time.Second, ue.RetryAfter)
	})

	t.Run("429 falls back to x-ratelimit-reset", func(t *testing.T) {
		err := getDeal(scripted(t, 429, `{"success":false,"error":"Request over limit"}`, "x-ratelimit-reset", "3"))
		ue := upstreamErr(t, err, http.StatusTooManyRequests)
		assert.Equal(t, 3*time.Second, ue.RetryAfter)
	})

	t.Run("retry-after only for 429 and 503", func(t *testing.T) {
		err := getDeal(scripted(t, 500, `{}`, "Retry-After", "7"))
		ue := upstreamErr(t, err, http.StatusInternalServerError)
		assert.Zero(t, ue.RetryAfter)
	})
}

func TestIteratorStopsOnRepeatedCursor(t *testing.T) {
	var hits int
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		_, _ = io.WriteString(w, `{"success":true,"data":[{"id":1,"name":"A"}],"additional_data":{"next_cursor":"same"}}`)
	}))
	t.Cleanup(ts.Close)
	c := pipedrive.New("t", pipedrive.WithBaseURL(ts.URL))
	ps := collect(t, c.Pipelines(t.Context()))
	assert.Len(t, ps, 2)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, hits, "a cursor that does not move ends the walk")
}

// --- throttle budget -------------------------------------------------------

func TestBudgetSpentPerRequest(t *testing.T) {
	// The first GET of deal 5 reaches the sandbox but its reply is replaced by
	// a 503 asking for an immediate retry: both attempts are served and spent.
	var once sync.Once
	flaky := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/api/v2/deals/5" {
				failed := false
				once.Do(func() {
					next.ServeHTTP(httptest.NewRecorder(), r)
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(http.StatusServiceUnavailable)
					failed = true
				})
				if failed {
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	budget := throttle.New("pipedrive", throttle.Config{Limit: 1000})
	hc := &http.Client{Transport: httpx.Chain(budget, http.DefaultTransport), Timeout: 5 * time.Second}
	e := newEnv(t, sandbox.Options{}, flaky, pipedrive.WithHTTPClient(hc))
	ctx := t.Context()

	n := 0
	for _, err := range e.c.Deals(ctx, pipedrive.ListDealsParams{Limit: 60}) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, seededDeals, n)
	d, err := e.c.GetDeal(ctx, 5)
	require.NoError(t, err, "retried after the 503")
	assert.Equal(t, int64(5), d.ID)
	_, err = e.c.AddDeal(ctx, pipedrive.DealInput{Title: ptr("Budgeted")})
	require.NoError(t, err)
	_, err = e.c.UpdateDeal(ctx, 1, pipedrive.DealInput{PipelineID: ptr(int64(1)), StageID: ptr(int64(8))})
	upstreamErr(t, err, http.StatusBadRequest)
	_, err = e.c.GetDeal(ctx, 9999)
	upstreamErr(t, err, http.StatusNotFound)
	require.NoError(t, e.c.DeleteDeal(ctx, 2))
	_ = collect(t, e.c.Stages(ctx, 0))
	_, err = e.c.Me(ctx)
	require.NoError(t, err)

	served := e.sb.RequestCount()
	assert.Equal(t, 4+2+1+1+1+1+1+1, served)
	assert.Equal(t, served, budget.Status().Used, "every request the sandbox served was spent from the budget")
	assert.Len(t, e.requests(), served)
}

func TestDealReadsIncludeTheNextActivity(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	a, err := e.c.AddActivity(ctx, pipedrive.ActivityInput{Type: "call", Subject: "Kick-off", DealID: 3, DueDate: "2000-01-01"})
	require.NoError(t, err)

	d, err := e.c.GetDeal(ctx, 3, pipedrive.IncludeNextActivity)
	require.NoError(t, err)
	assert.Equal(t, a.ID, d.NextActivityID, "the earliest undone activity")
	assert.Equal(t, url.Values{"include_fields": {"next_activity_id"}}, e.last().Query)

	deals, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{IDs: []int64{3}, IncludeFields: []string{pipedrive.IncludeNextActivity}})
	require.NoError(t, err)
	require.Len(t, deals, 1)
	assert.Equal(t, a.ID, deals[0].NextActivityID)
	assert.Equal(t, "next_activity_id", e.last().Query.Get("include_fields"))

	plain, err := e.c.GetDeal(ctx, 3)
	require.NoError(t, err)
	assert.Zero(t, plain.NextActivityID, "not asked for")
}

func TestOrganizationsAndPersonsByID(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	orgs, err := e.c.OrganizationsByID(t.Context(), []int64{1, 2, 999999})
	require.NoError(t, err)
	require.Len(t, orgs, 2, "ids that do not exist are left out")
	for _, o := range orgs {
		assert.Contains(t, []int64{1, 2}, o.ID)
		assert.NotEmpty(t, o.Name)
	}
	r := e.last()
	assert.Equal(t, "/api/v2/organizations", r.Path)
	assert.Equal(t, "1,2,999999", r.Query.Get("ids"))

	persons, err := e.c.PersonsByID(t.Context(), []int64{1})
	require.NoError(t, err)
	require.Len(t, persons, 1)
	assert.NotEmpty(t, persons[0].Name)
	assert.Equal(t, "/api/v2/persons", e.last().Path)

	none, err := e.c.PersonsByID(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, none)

	tooMany := make([]int64, pipedrive.MaxIDsPerList+1)
	_, err = e.c.OrganizationsByID(t.Context(), tooMany)
	require.ErrorContains(t, err, "at most 100")
}
