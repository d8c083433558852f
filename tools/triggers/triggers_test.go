package triggers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	wssandbox "github.com/cosell-mcp/cosell-mcp/connectors/workspan/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	trtools "github.com/cosell-mcp/cosell-mcp/tools/triggers"
)

type fixture struct {
	mcp     *client.Client
	manager *triggers.Manager
	store   *store.Store
	pd      *pd.Client
	clock   *clock.Fake
	stored  chan string // a trigger URI each time a poll stored new events
	updated chan string // notifications/resources/updated as the client received them
}

// pollInterval is the fixture's polling pace, on its fake clock.
const pollInterval = 30 * time.Second

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ts := httptest.NewServer(pdsandbox.New(pdsandbox.Options{}))
	t.Cleanup(ts.Close)
	pc := pd.New(pdsandbox.DefaultToken, pd.WithBaseURL(ts.URL))
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })

	res := trtools.NewResources(nil)
	hooks := &server.Hooks{}
	res.Hook(hooks)
	fc := clock.NewFake(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	stored := make(chan string, 100)
	notify := func(uri string) { res.Notify(uri); stored <- uri }
	m := triggers.NewManager(st, trtools.Kinds(trtools.Clients{Pipedrive: pc, PollInterval: pollInterval, Clock: fc}),
		triggers.Options{Notify: notify, Clock: fc})
	t.Cleanup(m.Close)
	res.SetManager(m)
	reg := tools.NewRegistry()
	reg.Add(trtools.Tools(m, res)...)
	srv := tools.NewServer(reg, tools.ServerOptions{Name: "t", Version: "t", Hooks: hooks,
		Extra: []server.ServerOption{server.WithResourceCapabilities(true, true)}})
	res.Attach(srv)

	c, err := client.NewInProcessClient(srv)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	f := &fixture{mcp: c, manager: m, store: st, pd: pc, clock: fc, stored: stored, updated: make(chan string, 100)}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationResourceUpdated) {
			f.updated <- n.Params.AdditionalFields["uri"].(string)
		}
	})
	require.NoError(t, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	return f
}

// requireArmed checks that starting the trigger made its first poll, which
// marks "now" without events.
func (f *fixture) requireArmed(t *testing.T, uri string) {
	tr, ok, err := f.store.Trigger(context.Background(), uri)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotEmpty(t, tr.State)
	require.NotEqual(t, "null", string(tr.State))
}

// nextPoll lets one polling interval pass once the poller waits for it, and
// returns the URI of the trigger whose poll then stored events.
func (f *fixture) nextPoll(t *testing.T) string {
	t.Helper()
	ctx := hangGuard(t)
	require.NoError(t, f.clock.WaitForWaiters(ctx, 1), "the poller waits for its next interval")
	f.clock.Advance(pollInterval)
	return receive(t, f.stored)
}

// receive returns the next value of ch, failing the test if none comes
// before the hang guard.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-hangGuard(t).Done():
		t.Fatal("the awaited event never came")
		panic("unreachable")
	}
}

// hangGuard is a deadline that only a hung test reaches.
func hangGuard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) read(t *testing.T, uri string) trtools.Page {
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := f.mcp.ReadResource(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, res.Contents, 1)
	var page trtools.Page
	require.NoError(t, json.Unmarshal([]byte(res.Contents[0].(mcp.TextResourceContents).Text), &page))
	return page
}

// Subscribe to new deals, add one through the sandbox API, get told, read exactly it.
func TestSubscribeToNewDeals(t *testing.T) {
	f := newFixture(t)
	const uri = "pipedrive://triggers/new-deals"
	templates, err := f.mcp.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
	require.NoError(t, err)
	var raws []string
	for _, tm := range templates.ResourceTemplates {
		raws = append(raws, tm.URITemplate.Raw())
	}
	assert.Contains(t, raws, uri+"{?after,raw}")
	assert.NotContains(t, raws, "pipedrive://triggers/new-deals-deprecated{?after,raw}", "deprecated trigger hidden")

	sub := mcp.SubscribeRequest{}
	sub.Params.URI = uri
	require.NoError(t, f.mcp.Subscribe(context.Background(), sub))
	f.requireArmed(t, uri)
	assert.Empty(t, f.read(t, uri).Events, "a new trigger starts from now: no history")

	title := "Trigger test deal " + time.Now().Format(time.RFC3339Nano)
	d, err := f.pd.AddDeal(context.Background(), pd.DealInput{Title: &title})
	require.NoError(t, err)

	assert.Equal(t, uri, f.nextPoll(t))
	assert.Equal(t, uri, receive(t, f.updated), "the subscriber is told")
	page := f.read(t, uri)
	require.Len(t, page.Events, 1)
	var got pdtools.Deal
	require.NoError(t, json.Unmarshal(page.Events[0].Data, &got))
	assert.Equal(t, d.ID, got.ID)
	assert.Equal(t, title, got.Title)
	assert.NotEmpty(t, got.StageName, "event data is shaped as the tools' deals")
	assert.NotEmpty(t, got.PipelineName)
	assert.NotEmpty(t, got.OwnerName)
	assert.Nil(t, page.Events[0].Raw, "the upstream record only on request")
	assert.Empty(t, f.read(t, uri).Events, "the session's cursor moved past it")

	// A reader with an explicit cursor sees it again, with ?raw=true its upstream record too.
	again := f.read(t, uri+"?after=0&raw=true")
	require.Len(t, again.Events, 1)
	var raw pd.Deal
	require.NoError(t, json.Unmarshal(again.Events[0].Raw, &raw))
	assert.Equal(t, d.ID, raw.ID)
	assert.Equal(t, got.StageID, raw.StageID)

	// The data's schema is published, and the data validates against what it names.
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri + "/schema"
	res, err := f.mcp.ReadResource(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, res.Contents, 1)
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Contents[0].(mcp.TextResourceContents).Text), &schema))
	var data map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(page.Events[0].Data, &data))
	for field := range data {
		assert.Contains(t, schema.Properties, field, "the schema describes every field of the data")
	}
	assert.Contains(t, schema.Properties, "stage_name")
}

func TestTriggerToolsForClientsWithoutResources(t *testing.T) {
	f := newFixture(t)
	call := func(name string, args map[string]any) *mcp.CallToolResult {
		req := mcp.CallToolRequest{}
		req.Params.Name = name
		req.Params.Arguments = args
		res, err := f.mcp.CallTool(context.Background(), req)
		require.NoError(t, err)
		return res
	}
	res := call("trigger_start", map[string]any{"uri": "pipedrive://triggers/new-activities"})
	require.False(t, res.IsError)
	f.requireArmed(t, "pipedrive://triggers/new-activities")
	subj := "Follow up"
	_, err := f.pd.AddActivity(context.Background(), pd.ActivityInput{Subject: subj, Type: "call", DealID: 1})
	require.NoError(t, err)
	assert.Equal(t, "pipedrive://triggers/new-activities", f.nextPoll(t))
	res = call("trigger_read_events", map[string]any{"uri": "pipedrive://triggers/new-activities", "consumer": "script"})
	require.False(t, res.IsError)
	var page trtools.Page
	require.NoError(t, json.Unmarshal([]byte(res.Content[0].(mcp.TextContent).Text), &page))
	assert.Len(t, page.Events, 1)

	bad := call("trigger_start", map[string]any{"uri": "pipedrive://triggers/nonsense"})
	assert.True(t, bad.IsError)
	assert.Contains(t, bad.Content[0].(mcp.TextContent).Text, "invalid_argument")

	res = call("trigger_stop", map[string]any{"uri": "pipedrive://triggers/new-activities"})
	require.False(t, res.IsError)
	active, err := f.manager.Active(context.Background())
	require.NoError(t, err)
	assert.Empty(t, active)
}

// A WorkSpan bulk load produces object.create events delivered over HTTP
// to our listener; forged and oversized callbacks are stored nowhere.
func TestWorkSpanWebhooks(t *testing.T) {
	wsb := wssandbox.New(wssandbox.Options{RetryBase: 10 * time.Millisecond})
	t.Cleanup(wsb.Close)
	api := httptest.NewServer(wsb)
	t.Cleanup(api.Close)
	wc := ws.New(ws.Config{BaseURL: api.URL, HostName: wssandbox.DefaultHostName, AppUserID: wssandbox.DefaultAppUserID, AppUserSecret: wssandbox.DefaultAppUserSecret})

	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	mux := http.NewServeMux()
	listener := httptest.NewServer(mux)
	t.Cleanup(listener.Close)
	notified := make(chan string, 100)
	m := triggers.NewManager(st, trtools.Kinds(trtools.Clients{WorkSpan: wc}), triggers.Options{PublicURL: listener.URL, Notify: func(uri string) { notified <- uri }})
	t.Cleanup(m.Close)
	mux.Handle("/webhooks/", m.WebhookHandler())

	uri, err := m.Start(context.Background(), "workspan://triggers/object-events?integration_id=int-crm-001&event=object.create")
	require.NoError(t, err)
	require.Len(t, wsb.Subscribers(), 1)
	callback := wsb.Subscribers()[0].CallbackURL
	assert.Contains(t, callback, listener.URL+"/webhooks/workspan/")

	exec, err := wc.BulkLoadOpportunities(context.Background(), ws.BulkParams{IntegrationID: "int-crm-001", Format: "csv"},
		[]byte("name,stage\nHook One,Qualify\nHook Two,Develop\nHook Three,Propose\n"))
	require.NoError(t, err)
	require.NotEmpty(t, exec.ExecutionID)
	for stored := 0; stored < 3; {
		assert.Equal(t, uri, receive(t, notified), "each stored callback is announced")
		evs, err := st.EventsAfter(context.Background(), uri, 0, 10)
		require.NoError(t, err)
		stored = len(evs)
	}

	// Forged secret, unknown trigger, oversized and non-JSON bodies: refused, nothing stored.
	forged := callback[:len(callback)-4] + "beef"
	for _, c := range []struct {
		url, body string
		status    int
	}{
		{forged, `{"event":"object.create"}`, http.StatusNotFound},
		{listener.URL + "/webhooks/workspan/deadbeef/cafe", `{}`, http.StatusNotFound},
		{callback, `not json`, http.StatusBadRequest},
		{callback, `[1,2]`, http.StatusBadRequest},
		{callback, `{"pad":"` + strings.Repeat("x", triggers.MaxCallbackBytes) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		resp, err := http.Post(c.url, "application/json", strings.NewReader(c.body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, c.status, resp.StatusCode, c.url)
	}
	evs, err := st.EventsAfter(context.Background(), uri, 0, 100)
	require.NoError(t, err)
	assert.Len(t, evs, 3, "refused callbacks stored nowhere")

	// A duplicate delivery (same event id) is stored once.
	req, _ := http.NewRequest(http.MethodPost, callback, strings.NewReader(string(evs[0].Payload)))
	req.Header.Set("X-WS-Event-Id", evs[0].Key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	evs, _ = st.EventsAfter(context.Background(), uri, 0, 100)
	assert.Len(t, evs, 3)

	require.NoError(t, m.Stop(context.Background(), uri))
	assert.Empty(t, wsb.Subscribers(), "stopping deletes the upstream subscriber")
}

// recorder notes when each request leaves, below the throttle.
type recorder struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// Pollers share the connection's budget with tool calls and never push it
// over: every Pipedrive trigger polls as fast as it may while agents call.
func TestPollersStayWithinTheBudget(t *testing.T) {
	const limit, window = 15, 500 * time.Millisecond
	ts := httptest.NewServer(pdsandbox.New(pdsandbox.Options{Burst: 1 << 20}))
	t.Cleanup(ts.Close)
	budget := throttle.New("pipedrive", throttle.Config{Limit: limit, Window: window, MaxWait: 5 * time.Second})
	var grantsMu sync.Mutex
	var grants []time.Time
	budget.OnGrant(func(at time.Time) { grantsMu.Lock(); grants = append(grants, at); grantsMu.Unlock() })
	rec := &recorder{}
	pc := pd.New(pdsandbox.DefaultToken, pd.WithBaseURL(ts.URL), pd.WithHTTPClient(&http.Client{Transport: httpx.Chain(budget, rec)}))
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	m := triggers.NewManager(st, trtools.Kinds(trtools.Clients{Pipedrive: pc, PollInterval: time.Millisecond}), triggers.Options{})
	for _, uri := range []string{"pipedrive://triggers/new-deals", "pipedrive://triggers/new-deals-deprecated", "pipedrive://triggers/new-activities"} {
		_, err := m.Start(context.Background(), uri)
		require.NoError(t, err)
	}
	var calls sync.WaitGroup
	var ok atomicCount
	granted := func() int { grantsMu.Lock(); defer grantsMu.Unlock(); return len(grants) }
	for range 4 {
		calls.Add(1)
		go func() {
			defer calls.Done()
			for granted() < 4*limit { // four full windows of traffic
				if _, err := pc.GetDeal(context.Background(), 1); err == nil {
					ok.add()
				}
			}
		}()
	}
	calls.Wait()
	m.Close()

	rec.mu.Lock()
	sent := len(rec.times)
	rec.mu.Unlock()
	grantsMu.Lock()
	times := append([]time.Time(nil), grants...)
	grantsMu.Unlock()
	require.Greater(t, len(times), 2*limit, "the budget was used")
	assert.Equal(t, len(times), sent, "every request that left had a grant, and every grant was used")
	for i := limit; i < len(times); i++ {
		assert.GreaterOrEqual(t, times[i].Sub(times[i-limit]), window, "more than %d requests within %s", limit, window)
	}
	assert.Positive(t, ok.get(), "interactive calls got through while pollers ran")
}

type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (a *atomicCount) add() { a.mu.Lock(); a.n++; a.mu.Unlock() }
func (a *atomicCount) get() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// Every listed trigger kind publishes its event data schema: as a resource
// next to it, and through trigger_list for clients without resources.
func TestPayloadSchemasArePublished(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	listed, err := f.mcp.ListResources(ctx, mcp.ListResourcesRequest{})
	require.NoError(t, err)
	uris := map[string]string{}
	for _, r := range listed.Resources {
		uris[r.URI] = r.MIMEType
	}
	for _, want := range []string{"pipedrive://triggers/new-deals/schema", "pipedrive://triggers/new-activities/schema",
		"partnercenter://triggers/referrals/schema", "workspan://triggers/object-events/schema"} {
		assert.Equal(t, "application/schema+json", uris[want], want)
	}
	assert.NotContains(t, uris, "pipedrive://triggers/new-deals-deprecated/schema", "deprecated kinds are not listed")

	call := func(args map[string]any) trtools.ListResult {
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "trigger_list", args
		res, err := f.mcp.CallTool(ctx, req)
		require.NoError(t, err)
		require.False(t, res.IsError, "%v", res.Content)
		var out trtools.ListResult
		require.NoError(t, json.Unmarshal([]byte(res.Content[0].(mcp.TextContent).Text), &out))
		return out
	}
	plain := call(nil)
	require.NotEmpty(t, plain.Kinds)
	for _, k := range plain.Kinds {
		assert.NotEmpty(t, k.SchemaURI, k.URITemplate)
		assert.Nil(t, k.Schema, "schemas only when asked for")
	}
	for _, k := range call(map[string]any{"schemas": true}).Kinds {
		var schema struct {
			Type string `json:"type"`
		}
		require.NoError(t, json.Unmarshal(k.Schema, &schema), k.URITemplate)
		assert.Equal(t, "object", schema.Type, k.URITemplate)
	}
}
