package pipedrive_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
)

// pathLog notes the path of every request that reaches the sandbox.
type pathLog struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (l *pathLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.seen = append(l.seen, r.URL.Path)
	l.mu.Unlock()
	l.next.ServeHTTP(w, r)
}

func (l *pathLog) count(path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range l.seen {
		if p == path {
			n++
		}
	}
	return n
}

// Triggers shape deals as the tools return them: every name resolved, the
// organization and person names a hundred a call, and a second batch of
// the same deals from the cache.
func TestShapeDealsResolvesNamesInBatches(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	log := &pathLog{next: sb}
	ts := httptest.NewServer(log)
	t.Cleanup(ts.Close)
	client := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL))
	ctx := context.Background()

	var deals []pd.Deal
	for d, err := range client.Deals(ctx, pd.ListDealsParams{Limit: 500}) {
		require.NoError(t, err)
		deals = append(deals, d)
	}
	orgs := map[int64]bool{}
	persons := map[int64]bool{}
	for _, d := range deals {
		if d.OrgID != 0 {
			orgs[d.OrgID] = true
		}
		if d.PersonID != 0 {
			persons[d.PersonID] = true
		}
	}
	require.NotEmpty(t, orgs, "the seed links deals to organizations")
	require.LessOrEqual(t, len(orgs), pd.MaxIDsPerList, "one batch covers the seed's organizations")

	svc := pdtools.NewService(pdtools.Static(client))
	shaped := svc.ShapeDeals(ctx, deals)
	require.Len(t, shaped, len(deals))
	for i, d := range shaped {
		assert.Equal(t, deals[i].ID, d.ID)
		assert.NotEmpty(t, d.StageName, "deal %d", d.ID)
		assert.NotEmpty(t, d.PipelineName, "deal %d", d.ID)
		if d.OrgID != 0 {
			assert.NotEmpty(t, d.OrgName, "deal %d: organization %d named", d.ID, d.OrgID)
		}
		if d.PersonID != 0 {
			assert.NotEmpty(t, d.PersonName, "deal %d: person %d named", d.ID, d.PersonID)
		}
	}
	assert.Equal(t, 1, log.count("/api/v2/organizations"), "the organizations' names in one call")
	assert.Equal(t, 1, log.count("/api/v2/persons"), "the persons' names in one call")

	again := svc.ShapeDeals(ctx, deals)
	assert.Equal(t, shaped, again)
	assert.Equal(t, 1, log.count("/api/v2/organizations"), "known names are not fetched again")
	assert.Equal(t, 1, log.count("/api/v2/persons"))
	for _, p := range log.seen {
		assert.False(t, strings.HasPrefix(p, "/api/v2/organizations/"), "no one-by-one look-up: %s", p)
	}
}
