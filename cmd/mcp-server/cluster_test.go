package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Two servers given one --database-url spend one budget per connection:
// what one spends, the other cannot, and both report the shared figures.
func TestDatabaseURLSharesTheBudgetBetweenReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	const limit = 40
	tune := func(c *Config) {
		c.DatabaseURL, c.BudgetLimit, c.BudgetWindow, c.BudgetMaxWait = dsn, limit, time.Hour, -1
	}
	a := sandboxClient(t, nil, tune)
	b := sandboxClient(t, nil, tune)

	used := func(c *client.Client) (used, remaining int) {
		t.Helper()
		text, isErr := callTool(t, c, "throttle_status", map[string]any{})
		require.False(t, isErr, text)
		var st tools.ThrottleStatus
		require.NoError(t, json.Unmarshal([]byte(text), &st), text)
		for _, c := range st.Connections {
			if c.Connection == "pipedrive" {
				return c.Used, c.Remaining
			}
		}
		t.Fatalf("no pipedrive connection in %s", text)
		return 0, 0
	}

	text, isErr := callTool(t, a, "pipedrive_get_deal", map[string]any{"deal_id": 1})
	require.False(t, isErr, text)
	spentByA, _ := used(a)
	require.Positive(t, spentByA)
	seenByB, _ := used(b)
	assert.Equal(t, spentByA, seenByB, "b reports what a spent: the figures are the cluster's")

	// Spend the rest from both replicas in turn until the limit refuses.
	calls := 0
	for ; calls < limit; calls++ {
		c := a
		if calls%2 == 1 {
			c = b
		}
		text, isErr = callTool(t, c, "pipedrive_get_deal", map[string]any{"deal_id": 2 + calls})
		if isErr {
			break
		}
	}
	require.Less(t, calls, limit, "the shared limit refused at last")
	assert.Contains(t, text, `"throttled"`)
	for _, c := range []*client.Client{a, b} {
		text, isErr = callTool(t, c, "pipedrive_get_deal", map[string]any{"deal_id": 1})
		require.True(t, isErr, "every replica is over the shared limit: %s", text)
		assert.Contains(t, text, `"throttled"`)
	}
	total, remaining := used(b)
	assert.Equal(t, limit, total, "no more than the limit was spent across both replicas")
	assert.Zero(t, remaining)
}

// A --database-url that cannot be reached stops the server at start-up
// rather than running with a budget of its own.
func TestUnreachableDatabaseURLFailsAtStart(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	cfg, _, err := parseConfig("test", []string{"--database-url", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, nil, nil)
	require.NoError(t, err)
	_, err = newApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--database-url")
}

// Two replicas on one --database-url and one Pipedrive: a trigger started
// through one is polled by one of them, its events are read (and its named
// consumer advanced) through the other, and a session subscribed on the
// other replica is told of them.
func TestDatabaseURLSharesTriggersBetweenReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	sb := pdsandbox.New(pdsandbox.Options{})
	upstream := httptest.NewServer(sb)
	t.Cleanup(upstream.Close)
	tune := func(c *Config) {
		c.DatabaseURL, c.PollInterval = dsn, 50*time.Millisecond
		c.Sandbox, c.PipedriveBaseURL, c.PipedriveToken = false, upstream.URL, pdsandbox.DefaultToken
	}
	a := sandboxClient(t, nil, tune)
	b := sandboxClient(t, nil, tune)
	updated := make(chan string, 16)
	b.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationResourceUpdated) {
			updated <- fmt.Sprint(n.Params.AdditionalFields["uri"])
		}
	})
	const uri = "pipedrive://triggers/new-deals"
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = uri
	require.NoError(t, b.Subscribe(context.Background(), sub), "b subscribes (and starts the trigger)")
	text, isErr := callTool(t, a, "trigger_start", map[string]any{"uri": uri})
	require.False(t, isErr, text)

	added := sb.AddDealsForTest(3, "Cluster")
	select {
	case got := <-updated:
		assert.Equal(t, uri, got, "b's session is told, whichever replica polled")
	case <-time.After(time.Minute): // a hang guard, not a time budget
		t.Fatal("no notification reached the session on b")
	}
	var page struct {
		Events []struct {
			Key string `json:"key"`
		} `json:"events"`
	}
	for len(page.Events) < len(added) {
		text, isErr = callTool(t, a, "trigger_read_events", map[string]any{"uri": uri, "after": 0})
		require.False(t, isErr, text)
		require.NoError(t, json.Unmarshal([]byte(text), &page), text)
	}
	keys := []string{}
	for _, e := range page.Events {
		keys = append(keys, e.Key)
	}
	for _, id := range added {
		assert.Contains(t, keys, fmt.Sprintf("deal:%d", id), "one log for the cluster")
	}
	assert.Len(t, keys, len(added), "each deal once")

	// A named consumer is the cluster's: what a read through a hands out, b does not hand out again.
	text, isErr = callTool(t, a, "trigger_read_events", map[string]any{"uri": uri, "consumer": "crm-sync"})
	require.False(t, isErr, text)
	require.NoError(t, json.Unmarshal([]byte(text), &page))
	assert.Len(t, page.Events, len(added))
	text, isErr = callTool(t, b, "trigger_read_events", map[string]any{"uri": uri, "consumer": "crm-sync"})
	require.False(t, isErr, text)
	require.NoError(t, json.Unmarshal([]byte(text), &page))
	assert.Empty(t, page.Events)
}

// In a cluster the rotating Partner Center refresh token is kept sealed in
// the database: without the server key to seal it, the server refuses to start.
func TestDatabaseURLWithARefreshTokenNeedsTheStateKey(t *testing.T) {
	dsn := pgtest.Start(t)
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	cfg, _, err := parseConfig("test", nil, io.Discard, nil)
	require.NoError(t, err)
	cfg.DatabaseURL, cfg.StateKey = dsn, nil
	cfg.PartnerCenter.Sandbox, cfg.PartnerCenter.ClientID, cfg.PartnerCenter.RefreshToken = false, "client", "refresh"
	_, err = newApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "COSELL_STATE_KEY")
}

// Three replicas behind a round-robin balancer: the session's stream, its
// subscription and the poll that finds new deals may each be on another
// replica, and the session is told all the same.
func TestClusterNotifiesASessionWhereverItsStreamIs(t *testing.T) {
	dsn := pgtest.Start(t)
	keys := teamKeysFile(t)
	sb := pdsandbox.New(pdsandbox.Options{})
	upstream := httptest.NewServer(sb)
	t.Cleanup(upstream.Close)
	tune := func(c *Config) {
		c.PollInterval = 50 * time.Millisecond
		c.Sandbox, c.PipedriveBaseURL, c.PipedriveToken = false, upstream.URL, pdsandbox.DefaultToken
	}
	var backends []string
	for range 3 {
		backends = append(backends, startReplicaWith(t, dsn, keys, tune).srv.URL)
	}
	lb := newRoundRobin(t, backends...)

	c, err := client.NewStreamableHttpClient(lb.URL(), transport.WithContinuousListening(),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer alice-key"}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	updated := make(chan string, 16)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationResourceUpdated) {
			updated <- fmt.Sprint(n.Params.AdditionalFields["uri"])
		}
	})
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "listener", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	const uri = "pipedrive://triggers/new-deals"
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = uri
	require.NoError(t, c.Subscribe(ctx, sub))

	for round := 1; round <= 3; round++ {
		sb.AddDealsForTest(2, fmt.Sprintf("Round %d", round))
		select {
		case got := <-updated:
			assert.Equal(t, uri, got, "round %d", round)
		case <-time.After(time.Minute): // a hang guard, not a time budget
			t.Fatalf("round %d: the session was not told of the new deals", round)
		}
	}
}
