package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/httpauth"
	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
)

// roundRobin is a load balancer for tests: every request goes to the next
// live backend in turn, with no stickiness. A backend marked down (as a
// health check would) is skipped, and so is one that refuses connections
// (it is marked down, and the request goes to the next one).
type roundRobin struct {
	srv       *httptest.Server
	transport *http.Transport

	mu       sync.Mutex
	backends []*url.URL
	down     []bool
	next     int
	creator  map[string]int // session id → backend that answered its initialize
}

// newRoundRobin starts a balancer in front of the backends' base URLs.
func newRoundRobin(t testing.TB, backends ...string) *roundRobin {
	t.Helper()
	lb := &roundRobin{transport: &http.Transport{}, down: make([]bool, len(backends)), creator: map[string]int{}}
	for _, b := range backends {
		u, err := url.Parse(b)
		require.NoError(t, err)
		lb.backends = append(lb.backends, u)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "backend.invalid" },
		Transport:     lb,
		FlushInterval: -1, // SSE
		ErrorLog:      newStdLogger(slog.New(slog.DiscardHandler)),
	}
	lb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Buffer the body so that a request can be sent again to the
		// next backend when one refuses the connection.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		lb.srv.CloseClientConnections()
		lb.srv.Close()
		lb.transport.CloseIdleConnections()
	})
	return lb
}

// URL is the balancer's MCP endpoint.
func (lb *roundRobin) URL() string { return lb.srv.URL + "/mcp" }

// pick returns the next live backend.
func (lb *roundRobin) pick() (int, *url.URL, bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for range lb.backends {
		i := lb.next
		lb.next = (lb.next + 1) % len(lb.backends)
		if !lb.down[i] {
			return i, lb.backends[i], true
		}
	}
	return 0, nil, false
}

// markDown takes backend i out of the rotation.
func (lb *roundRobin) markDown(i int) {
	lb.mu.Lock()
	lb.down[i] = true
	lb.mu.Unlock()
}

// creatorOf returns the backend that answered the session's initialize.
func (lb *roundRobin) creatorOf(t testing.TB, session string) int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	i, ok := lb.creator[session]
	require.True(t, ok, "no backend answered the initialize of %s", session)
	return i
}

// RoundTrip sends the request to the next live backend.
func (lb *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		i, u, ok := lb.pick()
		if !ok {
			return nil, errors.New("balancer: no live backend")
		}
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			out.Body = body
		}
		resp, err := lb.transport.RoundTrip(out)
		if err != nil {
			if opErr, ok := errors.AsType[*net.OpError](err); ok && opErr.Op == "dial" {
				lb.markDown(i)
				continue
			}
			return nil, err
		}
		if id := resp.Header.Get(server.HeaderKeySessionID); id != "" {
			lb.mu.Lock()
			if _, seen := lb.creator[id]; !seen {
				lb.creator[id] = i
			}
			lb.mu.Unlock()
		}
		return resp, nil
	}
}

// teamKeysFile is an API keys file with alice's and bob's keys.
func teamKeysFile(t testing.TB) string {
	keys := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keys, []byte("alice "+httpauth.HashKey("alice-key")+"\nbob "+httpauth.HashKey("bob-key")+"\n"), 0o600))
	return keys
}

// testReplica is one in-process replica: the real App and HTTP handler on
// an httptest server.
type testReplica struct {
	app *App
	srv *httptest.Server
	mcp *server.StreamableHTTPServer
}

// startReplica runs a replica on the sandboxes with alice's and bob's API
// keys and the given database, and the test_whoami tool added.
func startReplica(t *testing.T, dsn, keys string) *testReplica {
	return startReplicaWith(t, dsn, keys, nil)
}

// startReplicaWith is startReplica with tune applied to the config.
func startReplicaWith(t *testing.T, dsn, keys string, tune func(*Config)) *testReplica {
	t.Helper()
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	cfg, _, err := parseConfig("test", []string{"--http", "127.0.0.1:0", "--api-keys-file", keys}, io.Discard, nil)
	require.NoError(t, err)
	require.True(t, cfg.Sandbox, "run on the sandboxes: unset connector credentials")
	cfg.DatabaseURL = dsn
	liftLimits(&cfg)
	if tune != nil {
		tune(&cfg)
	}
	log := slog.New(slog.DiscardHandler)
	app, err := newApp(cfg, log)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	require.NotNil(t, app.DB, "cluster mode")
	app.Server.AddTool(whoamiTool())
	hc, err := httpAuth(cfg)
	require.NoError(t, err)
	h, mcpSrv, err := newHTTPHandler(app, hc, log)
	require.NoError(t, err)
	r := &testReplica{app: app, srv: httptest.NewServer(h), mcp: mcpSrv}
	t.Cleanup(r.kill)
	t.Cleanup(func() { _ = mcpSrv.Shutdown(context.Background()) })
	return r
}

// kill stops the replica at once, as if its process died: every
// connection is cut, nothing is cleaned up.
func (r *testReplica) kill() {
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// whoami calls test_whoami on base, as the holder of key on session.
func whoami(t *testing.T, base, key, session string) map[string]any {
	t.Helper()
	status, _, body := rawMCP(t, base, http.MethodPost, key, session, whoamiCall)
	require.Equal(t, http.StatusOK, status, body)
	return whoamiResult(t, body)
}

// modernCall calls a tool with protocol 2026-07-28 (no session) and returns
// the response body.
func modernCall(t *testing.T, base, key, tool string) string {
	t.Helper()
	meta := map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "modern", "version": "1"},
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"_meta": meta, "name": tool, "arguments": map[string]any{}}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+"/mcp", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set(mcp.HeaderProtocolVersion, "2026-07-28")
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, tool)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return string(b)
}

// Three replicas on one PostgreSQL behind a round-robin balancer serve one
// session on any of them, with its client info, even once the replica
// that opened it is gone; another principal gets 404 on every replica, and
// an ended session is 404 everywhere.
func TestClusterSessionsAcrossReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	keys := teamKeysFile(t)
	replicas := make([]*testReplica, 3)
	bases := make([]string, len(replicas))
	for i := range replicas {
		replicas[i] = startReplica(t, dsn, keys)
		bases[i] = replicas[i].srv.URL
	}
	lb := newRoundRobin(t, bases...)

	c, err := client.NewStreamableHttpClient(lb.URL(), transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer alice-key"}),
		transport.WithContinuousListening())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "cluster-test", Version: "1"}
	init.Params.Capabilities.Roots = &struct {
		ListChanged bool `json:"listChanged,omitempty"`
	}{}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	session := c.GetSessionId()
	require.NotEmpty(t, session)

	calls := func(n int) {
		t.Helper()
		for i := range n {
			name, args := "throttle_status", map[string]any{}
			if i%2 == 0 {
				name, args = "pipedrive_get_deal", map[string]any{"deal_id": 1 + i%5}
			}
			text, isErr := callTool(t, c, name, args)
			require.False(t, isErr, "call %d (%s) failed: %s", i, name, text)
		}
	}
	calls(20)
	require.NoError(t, c.SetLevel(ctx, mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelWarning}}))

	// A session ended through one replica is gone on all of them, those
	// that adopted it included.
	status, other, body := rawMCP(t, lb.srv.URL, http.MethodPost, "alice-key", "", initializeBody)
	require.Equal(t, http.StatusOK, status, body)
	for i, base := range bases {
		assert.Equal(t, "t", whoami(t, base, "alice-key", other)["client"], "replica %d adopted it", i)
	}
	status, _, _ = rawMCP(t, lb.srv.URL, http.MethodDelete, "alice-key", other, "")
	require.Equal(t, http.StatusOK, status)
	for i, base := range bases {
		status, _, body := rawMCP(t, base, http.MethodPost, "alice-key", other, whoamiCall)
		assert.Equal(t, http.StatusNotFound, status, "replica %d: an ended session is gone: %s", i, body)
		assert.Equal(t, http.StatusNotFound, openStream(t, base, "alice-key", other), "replica %d", i)
	}

	// Bob, holding alice's session id, gets the 404 of an unknown session
	// from every replica, for every method; a forged id too.
	bobIsRefused := func(i int, base string) {
		t.Helper()
		status, _, body := rawMCP(t, base, http.MethodPost, "bob-key", session, whoamiCall)
		assert.Equal(t, http.StatusNotFound, status, "replica %d: bob cannot call tools on alice's session: %s", i, body)
		assert.Equal(t, http.StatusNotFound, openStream(t, base, "bob-key", session), "replica %d: bob cannot open alice's stream", i)
		status, _, _ = rawMCP(t, base, http.MethodDelete, "bob-key", session, "")
		assert.Equal(t, http.StatusNotFound, status, "replica %d: bob cannot end alice's session", i)
		assert.Equal(t, http.StatusNotFound, openStream(t, base, "alice-key", session+"0"), "replica %d: a forged id opens no stream", i)
	}
	for i, base := range bases {
		bobIsRefused(i, base)
	}

	// Every replica knows the session as the client opened it.
	want := map[string]any{"session": session, "client": "cluster-test", "roots": true, "level": "warning"}
	for i, base := range bases {
		assert.Equal(t, want, whoami(t, base, "alice-key", session), "replica %d", i)
	}

	// The replica that opened the session dies; the others carry on.
	creator := lb.creatorOf(t, session)
	lb.markDown(creator)
	replicas[creator].kill()
	calls(20)
	for i, base := range bases {
		if i != creator {
			assert.Equal(t, want, whoami(t, base, "alice-key", session), "replica %d", i)
			assert.Equal(t, http.StatusOK, openStream(t, base, "alice-key", session), "alice's stream opens on replica %d", i)
		}
	}

	// A replica started after the creator died learns the session from the
	// table alone.
	late := startReplica(t, dsn, keys)
	assert.Equal(t, want, whoami(t, late.srv.URL, "alice-key", session), "a new replica")
	bobIsRefused(len(bases), late.srv.URL)

	for i, base := range bases {
		if i != creator {
			bobIsRefused(i, base)
		}
	}
	calls(2) // alice's session survived bob

	// Protocol 2026-07-28 has no sessions: every replica serves it as is.
	for i, base := range bases {
		if i != creator {
			assert.Contains(t, modernCall(t, base, "alice-key", "throttle_status"), `"connections"`, "replica %d", i)
		}
	}

	// Alice ends her session through the balancer: it is gone everywhere.
	status, _, _ = rawMCP(t, lb.srv.URL, http.MethodDelete, "alice-key", session, "")
	require.Equal(t, http.StatusOK, status)
	for i, base := range bases {
		if i == creator {
			continue
		}
		status, _, body := rawMCP(t, base, http.MethodPost, "alice-key", session, whoamiCall)
		assert.Equal(t, http.StatusNotFound, status, "replica %d: an ended session is gone: %s", i, body)
		assert.Equal(t, http.StatusNotFound, openStream(t, base, "alice-key", session), "replica %d", i)
		status, _, _ = rawMCP(t, base, http.MethodDelete, "alice-key", session, "")
		assert.Equal(t, http.StatusNotFound, status, "replica %d: ending it again", i)
	}
}

// With the database down, no session is taken as valid: requests on a
// session and new sessions get 503 (retry), never a session the store could
// not check. An idle session expires on every replica.
func TestClusterSessionsFailClosed(t *testing.T) {
	pg := pgtest.StartServer(t)
	dsn := pg.NewDatabase(t)
	keys := teamKeysFile(t)
	a, b := startReplica(t, dsn, keys), startReplica(t, dsn, keys)

	status, session, body := rawMCP(t, a.srv.URL, http.MethodPost, "alice-key", "", initializeBody)
	require.Equal(t, http.StatusOK, status, body)
	require.NotEmpty(t, session)
	assert.Equal(t, "t", whoami(t, b.srv.URL, "alice-key", session)["client"], "b adopted a's session")

	require.NoError(t, pg.Stop())
	for _, r := range []*testReplica{a, b} {
		status, _, body = rawMCP(t, r.srv.URL, http.MethodPost, "alice-key", session, whoamiCall)
		assert.Equal(t, http.StatusServiceUnavailable, status, "a session the store cannot check is not served: %s", body)
		assert.Equal(t, http.StatusServiceUnavailable, openStream(t, r.srv.URL, "alice-key", session))
		status, _, _ = rawMCP(t, r.srv.URL, http.MethodPost, "alice-key", "", initializeBody)
		assert.Equal(t, http.StatusServiceUnavailable, status, "no session is opened without the store")
		status, _, _ = rawMCP(t, r.srv.URL, http.MethodDelete, "alice-key", session, "")
		assert.Equal(t, http.StatusServiceUnavailable, status)
	}
	require.NoError(t, pg.Start())
	assert.Equal(t, "t", whoami(t, a.srv.URL, "alice-key", session)["client"], "the session survived the outage")

	// The session goes unused for longer than the idle TTL.
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), `UPDATE cosell_mcp_sessions SET last_seen = last_seen - interval '1 day'`)
	require.NoError(t, err)
	for _, r := range []*testReplica{a, b} {
		status, _, body = rawMCP(t, r.srv.URL, http.MethodPost, "alice-key", session, whoamiCall)
		assert.Equal(t, http.StatusNotFound, status, "an expired session is gone: %s", body)
	}
}
