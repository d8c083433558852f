package pipedrive_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// Custom fields are read and written by name, options by label: the
// 40-character field codes and option ids never reach the agent.
func TestCustomFieldsByName(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var created pdtools.Deal
	h.call("pipedrive_add_deal", map[string]any{"title": "Fabrikam — data estate", "pipeline_id": 2, "custom_fields": map[string]any{
		"partner center referral ID": "ref-7f3a", // any case
		"Co-sell motion":             "Joint",
		"Solution areas":             []any{"Data & AI", "Security"},
		"Azure consumption (ACR)":    25000,
		"Licensed seats":             40,
	}}, &created)
	assert.Equal(t, map[string]any{
		"Partner Center referral ID": "ref-7f3a",
		"Co-sell motion":             "Joint",
		"Solution areas":             []any{"Data & AI", "Security"},
		"Azure consumption (ACR)":    map[string]any{"value": 25000.0, "currency": created.Currency},
		"Licensed seats":             40.0,
	}, created.CustomFields)

	var got pdtools.Deal
	h.call("pipedrive_get_deal", map[string]any{"deal_id": created.ID}, &got)
	assert.Equal(t, created.CustomFields, got.CustomFields)

	var found pdtools.SearchResult
	h.call("pipedrive_search_deals", map[string]any{"term": "ref-7f3a"}, &found)
	require.Len(t, found.Deals, 1, "a referral id finds its deal")
	assert.Equal(t, created.ID, found.Deals[0].ID)
	assert.Equal(t, "custom_field", found.Deals[0].MatchedOn)

	var page pdtools.DealList
	h.call("pipedrive_list_deals", map[string]any{"pipeline_id": 2, "limit": 500}, &page)
	for _, d := range page.Deals {
		assert.Nil(t, d.CustomFields, "compact rows leave custom fields out")
	}
	h.call("pipedrive_list_deals", map[string]any{"pipeline_id": 2, "limit": 500, "full": true}, &page)
	withReferral := 0
	for _, d := range page.Deals {
		if d.CustomFields["Partner Center referral ID"] != nil {
			withReferral++
		}
	}
	assert.Equal(t, len(page.Deals), withReferral, "every co-sell deal carries its referral id")
}

func TestBadCustomFieldsCreateNothing(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var before pdtools.DealList
	h.call("pipedrive_list_deals", map[string]any{"limit": 500, "status": "open", "sort_by": "add_time", "sort_direction": "desc"}, &before)
	cases := map[string]struct {
		fields map[string]any
		want   []string
	}{
		"unknown field":    {map[string]any{"Referral": "x"}, []string{`unknown custom field "Referral"`, "Partner Center referral ID", "Co-sell motion"}},
		"unknown option":   {map[string]any{"Co-sell motion": "Solo"}, []string{"Co-sell motion", "Solo is not an option", "Partner-led, Microsoft-led, Joint"}},
		"empty set":        {map[string]any{"Solution areas": []any{}}, []string{"Solution areas", "at least one option"}},
		"text for number":  {map[string]any{"Licensed seats": "forty"}, []string{"Licensed seats", "want a number"}},
		"bad date":         {map[string]any{"Partner Center submission date": "31/12/2026"}, []string{"YYYY-MM-DD"}},
		"number for text":  {map[string]any{"Microsoft seller": 7}, []string{"Microsoft seller", "want text"}},
		"bad money object": {map[string]any{"Azure consumption (ACR)": map[string]any{"value": "lots"}}, []string{"want a number"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := h.callErr("pipedrive_add_deal", map[string]any{"title": "Never created " + name, "custom_fields": c.fields})
			assert.Equal(t, tools.CodeInvalidArgument, e.Code)
			assert.Equal(t, "custom_fields", e.Field)
			for _, w := range c.want {
				assert.Contains(t, e.Message, w)
			}
		})
	}
	var after pdtools.DealList
	h.call("pipedrive_list_deals", map[string]any{"limit": 500, "status": "open", "sort_by": "add_time", "sort_direction": "desc"}, &after)
	require.NotEmpty(t, after.Deals)
	assert.Equal(t, before.Deals[0].ID, after.Deals[0].ID, "no deal was created")
	assert.False(t, strings.HasPrefix(after.Deals[0].Title, "Never created"))
}

// pathCounter counts the requests per path that leave for the sandbox.
type pathCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *pathCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// Agents reading deals at once on a cold cache load the field names once.
func TestCustomFieldNamesLoadOnceForConcurrentReads(t *testing.T) {
	ts := httptest.NewServer(sandbox.New(sandbox.Options{Burst: 1 << 20}))
	t.Cleanup(ts.Close)
	count := &pathCounter{n: map[string]int{}}
	reg := tools.NewRegistry()
	reg.Add(pdtools.Tools(pdtools.Static(pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL), pd.WithHTTPClient(&http.Client{Transport: count}))))...)
	c := toolstest.New(t, reg, tools.Policy{}, nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			var page pdtools.DealList
			c.Call("pipedrive_list_deals", map[string]any{"pipeline_id": 2, "full": true}, &page)
			assert.NotEmpty(t, page.Deals[0].CustomFields)
		})
	}
	wg.Wait()
	count.mu.Lock()
	defer count.mu.Unlock()
	assert.Equal(t, 1, count.n["/api/v2/dealFields"])
}
