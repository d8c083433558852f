package triggers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	wssandbox "github.com/cosell-mcp/cosell-mcp/connectors/workspan/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	trtools "github.com/cosell-mcp/cosell-mcp/tools/triggers"
)

// webhookListener is one run's webhook listener: an HTTP server on its own
// port serving a manager's callbacks.
func webhookListener(t *testing.T) (*httptest.Server, *http.ServeMux) {
	mux := http.NewServeMux()
	ln := httptest.NewServer(mux)
	t.Cleanup(ln.Close)
	return ln, mux
}

// Finding: WorkSpan webhook triggers went deaf after a restart on another
// webhook listener port (the default, 127.0.0.1:0), because the restored
// trigger kept its subscriber posting to the old port. Restart with a
// different listener port → the next WorkSpan event arrives, and the stale
// subscriber is deleted from WorkSpan.
func TestRestartOnANewWebhookPortKeepsWorkSpanEventsComing(t *testing.T) {
	wsb := wssandbox.New(wssandbox.Options{RetryBase: 10 * time.Millisecond})
	t.Cleanup(wsb.Close)
	api := httptest.NewServer(wsb)
	t.Cleanup(api.Close)
	wc := ws.New(ws.Config{BaseURL: api.URL, HostName: wssandbox.DefaultHostName, AppUserID: wssandbox.DefaultAppUserID, AppUserSecret: wssandbox.DefaultAppUserSecret})
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ctx := hangGuard(t)

	// First run: the listener on one port, the trigger started there.
	oldLn, oldMux := webhookListener(t)
	first := triggers.NewManager(st, trtools.Kinds(trtools.Clients{WorkSpan: wc}), triggers.Options{PublicURL: oldLn.URL})
	oldMux.Handle("/webhooks/", first.WebhookHandler())
	const raw = "workspan://triggers/object-events?integration_id=int-crm-001&event=object.create"
	uri, err := first.Start(ctx, raw)
	require.NoError(t, err)
	subs := wsb.Subscribers()
	require.Len(t, subs, 1)
	stale := subs[0]
	require.True(t, strings.HasPrefix(stale.CallbackURL, oldLn.URL+"/webhooks/workspan/"), stale.CallbackURL)
	first.Close()
	oldLn.Close() // the old port is gone with the old process

	// Second run over the same store: a new listener port.
	newLn, newMux := webhookListener(t)
	require.NotEqual(t, oldLn.URL, newLn.URL)
	notified := make(chan string, 100)
	second := triggers.NewManager(st, trtools.Kinds(trtools.Clients{WorkSpan: wc}),
		triggers.Options{PublicURL: newLn.URL, Notify: func(key string) { notified <- key }})
	t.Cleanup(second.Close)
	newMux.Handle("/webhooks/", second.WebhookHandler())
	require.NoError(t, second.Restore(ctx))

	subs = wsb.Subscribers()
	require.Len(t, subs, 1, "the stale subscriber was deleted from WorkSpan")
	live := subs[0]
	assert.NotEqual(t, stale.ID, live.ID)
	assert.Equal(t, newLn.URL+strings.TrimPrefix(stale.CallbackURL, oldLn.URL), live.CallbackURL,
		"the new subscriber posts to the new port, on the trigger's same capability path")
	assert.Equal(t, stale.Events, live.Events)
	assert.Equal(t, stale.IntegrationID, live.IntegrationID)

	// A WorkSpan event raised after the restart arrives on the new listener.
	exec, err := wc.BulkLoadOpportunities(ctx, ws.BulkParams{IntegrationID: "int-crm-001", Format: "csv"},
		[]byte("name,stage\nAfter Restart,Qualify\n"))
	require.NoError(t, err)
	require.NotEmpty(t, exec.ExecutionID)
	assert.Equal(t, uri, receive(t, notified))
	evs, err := st.EventsAfter(ctx, uri, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	var payload struct {
		Event        string `json:"event"`
		Name         string `json:"name"`
		SubscriberID string `json:"subscriber_id"`
	}
	require.NoError(t, json.Unmarshal(evs[0].Payload, &payload))
	assert.Equal(t, "object.create", payload.Event)
	assert.Equal(t, "After Restart", payload.Name)
	assert.Equal(t, live.ID, payload.SubscriberID)

	// Restarting again on the same port keeps that subscriber.
	require.NoError(t, second.Restore(ctx))
	subs = wsb.Subscribers()
	require.Len(t, subs, 1)
	assert.Equal(t, live.ID, subs[0].ID)
}
