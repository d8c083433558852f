package completions_test

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/tools"
	"github.com/cosell-mcp/cosell-mcp/tools/completions"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
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

// account serves a Pipedrive sandbox whose "Partner Co-sell" pipeline is
// renamed, so that two accounts have different lists.
func account(t *testing.T, fc *clock.Fake, rename string) (*pd.Client, *sandbox.Server) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Clock: fc})
	var h http.Handler = sb
	if rename != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			sb.ServeHTTP(rec, r)
			maps.Copy(w.Header(), rec.Header())
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(bytes.ReplaceAll(rec.Body.Bytes(), []byte("Partner Co-sell"), []byte(rename)))
		})
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL)), sb
}

// finding 4: completions keyed by connection — caller B is never offered
// the pipelines (or stages) cached for caller A's account, nor A B's.
func TestCompletionsKeyedByConnection(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	own, ownSB := account(t, fc, "")
	clientA, sbA := account(t, fc, "Alpha Secret Pipeline")
	clientB, sbB := account(t, fc, "Bravo Secret Pipeline")
	byToken := map[string]*pd.Client{"token-a": clientA, "token-b": clientB}
	p := &completions.Provider{Clock: fc, Pipedrive: func(ctx context.Context) *pd.Client {
		if c, ok := byToken[tools.Credential(ctx, pdtools.Toolset)]; ok {
			return c
		}
		return own
	}}
	as := func(token string) context.Context {
		return tools.WithCredential(context.Background(), pdtools.Toolset, token)
	}
	complete := func(ctx context.Context, arg string, args map[string]string) []string {
		res, err := p.CompletePromptArgument(ctx, "any", mcp.CompleteArgument{Name: arg}, mcp.CompleteContext{Arguments: args})
		require.NoError(t, err)
		return res.Values
	}

	a := complete(as("token-a"), "pipeline", nil)
	assert.Contains(t, a, "Alpha Secret Pipeline")
	b := complete(as("token-b"), "pipeline", nil)
	assert.Contains(t, b, "Bravo Secret Pipeline")
	assert.NotContains(t, b, "Alpha Secret Pipeline", "B never sees A's cached pipelines")
	assert.NotContains(t, complete(context.Background(), "pipeline", nil), "Alpha Secret Pipeline")
	assert.Contains(t, complete(context.Background(), "pipeline", nil), "Partner Co-sell")
	assert.Equal(t, a, complete(as("token-a"), "pipeline", nil), "A's own list, from its cache")
	assert.Equal(t, 1, sbA.RequestCount(), "A's list fetched once")
	assert.Equal(t, 1, sbB.RequestCount())
	assert.Equal(t, 1, ownSB.RequestCount())

	stagesB := complete(as("token-b"), "stage", map[string]string{"pipeline": "Bravo Secret Pipeline"})
	assert.Contains(t, stagesB, "Referral Received")
	assert.Empty(t, complete(as("token-a"), "stage", map[string]string{"pipeline": "Bravo Secret Pipeline"}),
		"A has no pipeline of B's name")
}

// finding 4: completions keyed by connection — the per-connection lists are
// bounded: beyond MaxConnections the least recently used connection's lists
// are dropped (and fetched again when needed), as are those idle for IdleTTL.
func TestCompletionCacheBounded(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	client, sb := account(t, fc, "")
	p := &completions.Provider{Clock: fc, MaxConnections: 2, IdleTTL: time.Minute,
		Pipedrive: func(context.Context) *pd.Client { return client }}
	complete := func(token string) {
		_, err := p.CompletePromptArgument(tools.WithCredential(context.Background(), pdtools.Toolset, token),
			"any", mcp.CompleteArgument{Name: "pipeline"}, mcp.CompleteContext{})
		require.NoError(t, err)
	}
	complete("a")
	complete("b")
	complete("a")
	require.Equal(t, 2, sb.RequestCount(), "a and b each fetched once")
	complete("c") // makes room: b is the least recently used
	complete("a")
	assert.Equal(t, 3, sb.RequestCount(), "a kept")
	complete("b")
	assert.Equal(t, 4, sb.RequestCount(), "b fetched again")

	fc.Advance(time.Minute) // a's lists idle for IdleTTL, though not five minutes old
	complete("a")
	assert.Equal(t, 5, sb.RequestCount(), "a fetched again")
}
