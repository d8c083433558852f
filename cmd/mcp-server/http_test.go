package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), append([]string{"--http", addr}, args...)...)
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	stderr := &lockedWriter{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(interruptSignal())
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 50*time.Millisecond, "server did not come up: %s", stderr.String())
	return base
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

	resp, err := http.Get(base + "/readyz")
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
