package partnercenter_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// pagingHarness serves a sandbox with small pages; wrap, when set, sits in
// front of it.
func pagingHarness(t *testing.T, mode sandbox.TopMode, wrap func(http.Handler) http.Handler) *harness {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Clock: clock.NewFake(testNow), PageSize: 10})
	sb.SetTopMode(mode)
	var h http.Handler = sb
	if wrap != nil {
		h = wrap(sb)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	client := pc.New(pc.StaticToken(sandbox.DefaultToken), pc.WithBaseURL(sb.APIBase(ts.URL)))
	reg := tools.NewRegistry()
	reg.Add(pctools.Tools(pctools.Static(client))...)
	budgets := throttle.NewRegistry(throttle.Config{Limit: 1000})
	return &harness{Client: toolstest.New(t, reg, tools.Policy{}, budgets), sandbox: sb, url: ts.URL}
}

// documentedLinks rewrites the sandbox's nextLinks to the documented form
// (no /engagements segment).
func documentedLinks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := bytes.ReplaceAll(rec.Body.Bytes(), []byte(`/v1.0/engagements/referrals?`), []byte(`/v1.0/referrals?`))
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// listAll pages through the listing with limit, calling between after
// each page, and returns the ids in order.
func listAll(t *testing.T, h *harness, first map[string]any, between func(page int, rows []pctools.Row)) []string {
	t.Helper()
	var ids []string
	args := first
	for page := 0; ; page++ {
		require.Less(t, page, 200, "the listing ends")
		var out pctools.ReferralList
		h.Call("partnercenter_list_referrals", args, &out)
		for _, r := range out.Referrals {
			ids = append(ids, r.ID)
		}
		if !out.HasMore {
			assert.Empty(t, out.NextCursor)
			return ids
		}
		require.NotEmpty(t, out.NextCursor)
		if between != nil {
			between(page, out.Referrals)
		}
		args = map[string]any{"cursor": out.NextCursor, "limit": first["limit"]}
	}
}

func requireOnce(t *testing.T, ids []string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
		assert.Equal(t, 1, seen[id], "referral %s listed twice", id)
	}
	assert.Len(t, seen, n, "every referral listed")
}

// Paging is right whether the upstream reads $top as a page size or as a
// cap on the collection, and with the documented nextLink form.
func TestListPagingBothTopReadings(t *testing.T) {
	for _, c := range []struct {
		name string
		mode sandbox.TopMode
		wrap func(http.Handler) http.Handler
	}{
		{"page size", sandbox.TopPageSize, nil},
		{"cap", sandbox.TopCap, nil},
		{"page size, documented links", sandbox.TopPageSize, documentedLinks},
		{"cap, documented links", sandbox.TopCap, documentedLinks},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := pagingHarness(t, c.mode, c.wrap)
			// One call beyond the upstream's page of 10 and its $top.
			var big pctools.ReferralList
			h.Call("partnercenter_list_referrals", map[string]any{"limit": 150}, &big)
			assert.Len(t, big.Referrals, 60)
			assert.False(t, big.HasMore)
			requireOnce(t, rowIDs(big.Referrals), 60)

			var part pctools.ReferralList
			h.Call("partnercenter_list_referrals", map[string]any{"limit": 45}, &part)
			assert.Len(t, part.Referrals, 45)
			assert.True(t, part.HasMore, "more exist")
			assert.Equal(t, rowIDs(big.Referrals)[:45], rowIDs(part.Referrals))

			var exact pctools.ReferralList
			h.Call("partnercenter_list_referrals", map[string]any{"limit": 60}, &exact)
			assert.Len(t, exact.Referrals, 60)
			assert.False(t, exact.HasMore, "exactly all: nothing more")

			for _, limit := range []int{7, 10, 13} {
				ids := listAll(t, h, map[string]any{"limit": limit}, nil)
				assert.Equal(t, rowIDs(big.Referrals), ids, "limit %d", limit)
			}
			ids := listAll(t, h, map[string]any{"limit": 9, "oldest_first": true}, nil)
			requireOnce(t, ids, 60)
			assert.Equal(t, rowIDs(big.Referrals)[59], ids[0], "oldest first")

			var inc pctools.ReferralList
			h.Call("partnercenter_list_referrals", map[string]any{"direction": "Incoming", "limit": 500}, &inc)
			ids = listAll(t, h, map[string]any{"direction": "Incoming", "limit": 4}, nil)
			assert.Equal(t, rowIDs(inc.Referrals), ids)
		})
	}
}

func rowIDs(rows []pctools.Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

// A referral updated between two pages is listed exactly once: no
// duplicate, no gap.
func TestListPagingWhileUpdating(t *testing.T) {
	for _, mode := range []sandbox.TopMode{sandbox.TopPageSize, sandbox.TopCap} {
		h := pagingHarness(t, mode, nil)
		var all pctools.ReferralList
		h.Call("partnercenter_list_referrals", map[string]any{"limit": 500}, &all)
		require.Len(t, all.Referrals, 60)
		n := 0
		ids := listAll(t, h, map[string]any{"limit": 8}, func(page int, rows []pctools.Row) {
			// Touch a referral already listed and two not listed yet.
			targets := []string{rows[0].ID, all.Referrals[min((page+1)*8+3, 59)].ID, all.Referrals[59-page].ID}
			for _, id := range targets {
				n++
				patch(t, h, id, `[{"op":"replace","path":"/details/notes","value":"touched `+strings.Repeat("x", n)+`"}]`)
			}
		})
		assert.Greater(t, n, 10)
		requireOnce(t, ids, 60)
	}
}

func patch(t *testing.T, h *harness, id, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, h.url+"/v1.0/engagements/referrals/"+id, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+sandbox.DefaultToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Less(t, res.StatusCode, 300, "patch %s", id)
}
