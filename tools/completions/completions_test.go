package completions_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/tools/completions"
)

// TestListsCachedForFiveMinutes: a list is fetched once and served from the
// cache until it is five minutes old on the provider's clock.
func TestListsCachedForFiveMinutes(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	sb := sandbox.New(sandbox.Options{Clock: fc})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	client := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL))
	p := &completions.Provider{Pipedrive: func(context.Context) *pd.Client { return client }, Clock: fc}

	complete := func() []string {
		res, err := p.CompletePromptArgument(t.Context(), "any", mcp.CompleteArgument{Name: "pipeline"}, mcp.CompleteContext{})
		require.NoError(t, err)
		return res.Values
	}
	first := complete()
	require.NotEmpty(t, first)
	fetched := sb.RequestCount()

	fc.Advance(5*time.Minute - time.Second)
	assert.Equal(t, first, complete())
	assert.Equal(t, fetched, sb.RequestCount(), "served from the cache")

	fc.Advance(time.Second)
	assert.Equal(t, first, complete())
	assert.Greater(t, sb.RequestCount(), fetched, "fetched again once five minutes old")
}
