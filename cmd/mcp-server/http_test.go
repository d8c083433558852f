package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/httpauth"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startHTTP runs the binary with --http and waits for /healthz.
func startHTTP(t *testing.T, args ...string) string {
	base, _ := startHTTPLogs(t, args...)
	return base
}

// startHTTPLogs is startHTTP that also returns the server's log.
func startHTTPLogs(t *testing.T, args ...string) (string, *lockedWriter) {
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), append([]string{"--http", addr}, args...)...)
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	stderr := &lockedWriter{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(interruptSignal())
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	awaitServing(t, stderr, addr, exited)
	return "http://" + addr, stderr
}

// awaitServing waits for the server's log line naming its endpoint on addr.
// The server writes it once its listener is bound, so from then on
// connections are accepted (they queue until the server takes them).
func awaitServing(t *testing.T, logs *lockedWriter, addr string, exited <-chan struct{}) {
	t.Helper()
	require.True(t, logs.awaitContains("http://"+addr+"/mcp", exited), "server did not come up: %s", logs.String())
}

func TestHTTPTransport(t *testing.T) {
	base := startHTTP(t)
	c, err := client.NewStreamableHttpClient(base + "/mcp")
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "http-test", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	assert.NotEmpty(t, tools.Tools)
	req := mcp.CallToolRequest{}
	req.Params.Name = "pipedrive_get_stage"
	req.Params.Arguments = map[string]any{"stage_id": 2}
	res, err := c.CallTool(ctx, req)
	require.NoError(t, err)
	require.False(t, res.IsError)

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{`cosell_upstream_requests_total{connection="pipedrive",status="200"}`, `cosell_tool_call_seconds_count{outcome="ok",tool="pipedrive_get_stage"} 1`,
		`cosell_budget_remaining{connection="pipedrive"}`, `cosell_budget_wait_seconds_bucket`, "cosell_active_sessions 1", "cosell_trigger_subscriptions 0"} {
		assert.Contains(t, string(body), want)
	}

	resp, err = http.Get(base + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	foreign, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	foreign.Header.Set("Origin", "https://evil.example")
	foreign.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(foreign)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a foreign Origin is refused")

	huge, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(strings.Repeat("x", maxRequestBytes+1)))
	huge.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(huge)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

func TestHTTPBeyondLoopbackNeedsAuth(t *testing.T) {
	cmd := exec.Command(binary(t), "--http", "0.0.0.0:0")
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "%s", out)
	assert.Contains(t, string(out), "configure authentication")
}

// jwtIssuer is a test OAuth issuer: an RSA key and its JWKS over HTTP.
type jwtIssuer struct {
	key  *rsa.PrivateKey
	jwks string
}

func newJWTIssuer(t *testing.T) *jwtIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	n := base64.RawURLEncoding.EncodeToString(key.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())
	body := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":%q}]}`, n, e)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &jwtIssuer{key: key, jwks: srv.URL}
}

func (i *jwtIssuer) token(t *testing.T, aud string, exp time.Time, key *rsa.PrivateKey) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://issuer.test", "aud": aud, "sub": "agent-1", "exp": exp.Unix(), "iat": time.Now().Unix()})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestHTTPJWTAuth(t *testing.T) {
	iss := newJWTIssuer(t)
	base := startHTTP(t, "--jwt-issuer", "https://issuer.test", "--jwt-audience", "cosell-mcp", "--jwt-jwks-url", iss.jwks)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ping := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	post := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(ping))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusOK, post(iss.token(t, "cosell-mcp", time.Now().Add(time.Hour), iss.key)).StatusCode, "a valid token is accepted")
	for name, tok := range map[string]string{
		"missing":        "",
		"expired":        iss.token(t, "cosell-mcp", time.Now().Add(-time.Hour), iss.key),
		"wrong audience": iss.token(t, "someone-else", time.Now().Add(time.Hour), iss.key),
		"wrong signer":   iss.token(t, "cosell-mcp", time.Now().Add(time.Hour), other),
	} {
		resp := post(tok)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, name)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+base+`/.well-known/oauth-protected-resource"`, name)
	}
	resp, err := http.Get(base + "/.well-known/oauth-protected-resource")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(body), `"authorization_servers":["https://issuer.test"]`)

	// Through a real client with the token.
	c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + iss.token(t, "cosell-mcp", time.Now().Add(time.Hour), iss.key)}))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Start(context.Background()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	list, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	assert.NotEmpty(t, list.Tools)
}

func TestHTTPAPIKeys(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keys, []byte("# team keys\nops "+httpauth.HashKey("s3cret-key")+"\n"), 0o600))
	base, logs := startHTTPLogs(t, "--api-keys-file", keys)
	for key, want := range map[string]int{"s3cret-key": http.StatusOK, "wrong": http.StatusUnauthorized} {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, key)
	}
	assert.NotContains(t, logs.String(), "s3cret-key", "no secret in any log line")
	assert.NotContains(t, logs.String(), "Bearer")
}

// Two users with their own Pipedrive tokens each get their own budget:
// exhausting one leaves the other untouched, and neither sees the other's.
func TestHTTPPerUserBudgets(t *testing.T) {
	base := startHTTP(t, "--budget-limit", "6", "--budget-max-wait", "1ms")
	user := func(token string) *client.Client {
		c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(map[string]string{HeaderPipedriveToken: token}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.Start(context.Background()))
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
		_, err = c.Initialize(context.Background(), init)
		require.NoError(t, err)
		return c
	}
	call := func(c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
		req := mcp.CallToolRequest{}
		req.Params.Name = name
		req.Params.Arguments = args
		res, err := c.CallTool(context.Background(), req)
		require.NoError(t, err)
		return res
	}
	alice, bob := user("sandbox-user-alice"), user("sandbox-user-bob")

	throttled := false
	for range 10 {
		res := call(alice, "pipedrive_get_stage", map[string]any{"stage_id": 1})
		if res.IsError {
			assert.Contains(t, res.Content[0].(mcp.TextContent).Text, `"code":"throttled"`)
			throttled = true
			break
		}
	}
	require.True(t, throttled, "alice exhausted her budget")

	res := call(bob, "pipedrive_get_stage", map[string]any{"stage_id": 1})
	require.False(t, res.IsError, "bob's budget is his own")
	budget := res.Meta.AdditionalFields["budget"].(map[string]any)
	assert.Contains(t, budget["connection"], "pipedrive:")
	assert.Less(t, budget["used"], float64(6))

	st := call(bob, "throttle_status", nil)
	text := st.Content[0].(mcp.TextContent).Text
	assert.Contains(t, text, budget["connection"].(string))
	assert.Equal(t, 1, strings.Count(text, `"connection":"pipedrive:`), "bob sees his own per-user budget only: %s", text)
}

// Behind a TLS proxy the OAuth metadata and challenges name the public URL,
// not the bind address.
func TestHTTPPublicURL(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keys, []byte("ops "+httpauth.HashKey("k")+"\n"), 0o600))
	base := startHTTP(t, "--api-keys-file", keys, "--http-public-url", "https://mcp.example.com/")
	resp, err := http.Post(base+"/mcp", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`)
	resp, err = http.Get(base + "/.well-known/oauth-protected-resource")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(body), `"resource":"https://mcp.example.com/mcp"`)

	for _, bad := range []string{"mcp.example.com", "ftp://mcp.example.com", "https://", "https://mcp.example.com/?x=1"} {
		_, _, err := parseConfig("serve", []string{"--http", "127.0.0.1:0", "--http-public-url", bad}, io.Discard, nil)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "--http-public-url", bad)
	}
}
