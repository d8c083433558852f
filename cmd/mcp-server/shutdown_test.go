//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shutdownSafety bounds every wait of the shutdown test. It is a guard
// against a hang, not a performance assertion.
const shutdownSafety = 30 * time.Second

// TestHTTPGracefulShutdownFinishesInFlightCall sends SIGTERM to the real
// binary while a tool call is running over streamable HTTP, and checks that
// the call still returns its complete result, that the listener stops
// accepting connections while the call is still running, and that the
// process then exits 0.
//
// The slow call is workspan_get_bulk_load_status with wait=true on an
// execution just started on the embedded WorkSpan sandbox: the sandbox
// reports every execution running on its first poll, the tool then sends a
// progress notification and pauses (at least its 5 s poll interval) before
// polling again, and the second poll sees the execution completed. The
// progress notification is the proof that the call is in flight when the
// signal is sent.
func TestHTTPGracefulShutdownFinishesInFlightCall(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), "--http", addr)
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	logs := &lockedWriter{}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	gone := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(gone)
	}()
	var exitOnce sync.Once
	var exitErr error
	waitExit := func(d time.Duration) bool {
		ok := true
		exitOnce.Do(func() {
			select {
			case exitErr = <-exited:
			case <-time.After(d):
				ok = false
				_ = cmd.Process.Kill()
				exitErr = <-exited
			}
		})
		return ok
	}
	t.Cleanup(func() { waitExit(0) })

	base := "http://" + addr
	awaitServing(t, logs, addr, gone)

	// An idle keep-alive connection: on SIGTERM the server closes its
	// listener first and only then its idle connections, so this one
	// ending tells that new connections are refused from then on. It is
	// opened now, so that the server has long marked it idle when the
	// signal comes (it keeps idle connections for its IdleTimeout, 2 min).
	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = idle.Close() })
	_, err = idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"))
	require.NoError(t, err)
	idleReader := bufio.NewReader(idle)
	healthz, err := http.ReadResponse(idleReader, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, healthz.Body)
	require.NoError(t, err)
	require.NoError(t, healthz.Body.Close())
	require.Equal(t, http.StatusOK, healthz.StatusCode)
	require.False(t, healthz.Close, "the connection stays open")
	idleClosed := make(chan error, 1)
	go func() {
		_, err := idleReader.ReadByte() // blocks until the server closes the connection
		idleClosed <- err
	}()

	c, err := client.NewStreamableHttpClient(base + "/mcp")
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	const progressToken = "shutdown-test"
	progressed := make(chan struct{})
	var progressOnce sync.Once
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" && n.Params.AdditionalFields["progressToken"] == progressToken {
			progressOnce.Do(func() { close(progressed) })
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*shutdownSafety)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "shutdown-test", Version: "1"}
	initRes, err := c.Initialize(ctx, init)
	require.NoError(t, err)

	// The session's standalone GET stream, open as an IDE keeps it: shutdown
	// must end it rather than wait for it. The 200 is written once the stream
	// is registered, so it is open before the signal. The server may send
	// the call's progress on it rather than on the call's own response.
	listen, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/mcp", nil)
	require.NoError(t, err)
	listen.Header.Set("Accept", "text/event-stream")
	listen.Header.Set("Mcp-Session-Id", c.GetSessionId())
	listen.Header.Set("Mcp-Protocol-Version", initRes.ProtocolVersion)
	listenTransport := &http.Transport{}
	t.Cleanup(listenTransport.CloseIdleConnections)
	stream, err := (&http.Client{Transport: listenTransport}).Do(listen)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, stream.StatusCode)
	require.Equal(t, "text/event-stream", stream.Header.Get("Content-Type"))
	streamEnded := make(chan error, 1)
	go func() {
		defer stream.Body.Close()
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data:") && strings.Contains(line, `"notifications/progress"`) && strings.Contains(line, `"`+progressToken+`"`) {
				progressOnce.Do(func() { close(progressed) })
			}
		}
		streamEnded <- sc.Err()
	}()

	const integration = "int-crm-001"
	load := mcp.CallToolRequest{}
	load.Params.Name = "workspan_bulk_load_opportunities"
	load.Params.Arguments = map[string]any{"integration_id": integration,
		"data": "name,stage,amount\nShutdown A,Qualify,100\nShutdown B,Qualify,200\nShutdown C,Qualify,300\n"}
	up, err := c.CallTool(ctx, load)
	require.NoError(t, err)
	require.False(t, up.IsError, "%v", up.Content)
	execs := structured(t, up)["executions"].([]any)
	require.Len(t, execs, 1)
	execID := execs[0].(map[string]any)["execution_id"]
	require.NotEmpty(t, execID)

	// The slow call, in the background.
	type outcome struct {
		res *mcp.CallToolResult
		err error
		at  time.Time
	}
	returned := make(chan outcome, 1)
	status := mcp.CallToolRequest{}
	status.Params.Name = "workspan_get_bulk_load_status"
	status.Params.Arguments = map[string]any{"integration_id": integration, "execution_ids": []any{execID}, "wait": true, "wait_seconds": 120}
	status.Params.Meta = &mcp.Meta{ProgressToken: progressToken}
	go func() {
		res, err := c.CallTool(ctx, status)
		returned <- outcome{res, err, time.Now()}
	}()

	// In flight: the server polled once, saw it running, and is pausing.
	select {
	case <-progressed:
	case o := <-returned:
		t.Fatalf("the status call returned before reporting progress (nothing was in flight): %+v %v", o.res, o.err)
	case <-time.After(shutdownSafety):
		t.Fatalf("no progress notification from the status call; log:\n%s", logs.String())
	}
	signalled := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))

	// New connections are refused while the call is still running. The
	// idle connection ends once the listener is closed.
	select {
	case err := <-idleClosed:
		require.Error(t, err, "the idle connection ends")
	case o := <-returned:
		require.NoError(t, o.err, "the in-flight call was cut off by the shutdown; log:\n%s", logs.String())
		t.Fatalf("the in-flight call ended before the listener closed (isError=%v), so the test proves nothing; log:\n%s", o.res.IsError, logs.String())
	case <-time.After(shutdownSafety):
		t.Fatalf("the server did not close its idle connections within %s of SIGTERM; log:\n%s", shutdownSafety, logs.String())
	}
	conn, err := net.Dial("tcp", addr)
	if err == nil {
		_ = conn.Close()
	}
	require.True(t, errors.Is(err, syscall.ECONNREFUSED), "the listener is closed once idle connections are: %v", err)
	select {
	case o := <-returned:
		t.Fatalf("the call returned as the listener closed; it should still be pausing: %+v %v", o.res, o.err)
	default:
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := fresh.Post(base+"/mcp", "application/json", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"late","version":"1"}}}`))
	if err == nil {
		_ = resp.Body.Close()
	}
	require.True(t, errors.Is(err, syscall.ECONNREFUSED), "a new session after SIGTERM is refused: %v", err)

	// The standalone stream is ended by the server, cleanly.
	select {
	case err := <-streamEnded:
		require.NoError(t, err, "the GET stream ends cleanly")
	case <-time.After(shutdownSafety):
		t.Fatalf("shutdown did not end the standalone GET stream; log:\n%s", logs.String())
	}

	// The in-flight call completes, with its complete result.
	var o outcome
	select {
	case o = <-returned:
	case <-time.After(shutdownSafety):
		t.Fatalf("the in-flight call did not return within %s of SIGTERM; log:\n%s", shutdownSafety, logs.String())
	}
	require.NoError(t, o.err, "log:\n%s", logs.String())
	require.False(t, o.res.IsError, "%v", o.res.Content)
	require.NotEmpty(t, o.res.Content, "the compact text block is there")
	st := structured(t, o.res)
	assert.Equal(t, true, st["all_completed"], "the wait was not cut short: %v", st)
	assert.GreaterOrEqual(t, st["polls"], float64(2), "polled again after the signal: %v", st)
	assert.Equal(t, float64(3), st["totals"].(map[string]any)["input"], "%v", st)
	assert.Equal(t, float64(3), st["totals"].(map[string]any)["success"], "%v", st)
	got := st["executions"].([]any)
	require.Len(t, got, 1)
	assert.Equal(t, "completed", got[0].(map[string]any)["status"])
	assert.Equal(t, execID, got[0].(map[string]any)["execution_id"])
	assert.True(t, o.at.After(signalled))

	// The process exits 0 once the call is done.
	require.True(t, waitExit(shutdownSafety), "the server did not exit within %s of SIGTERM; log:\n%s", shutdownSafety, logs.String())
	require.NoError(t, exitErr, "exit status; log:\n%s", logs.String())
	assert.Equal(t, 0, cmd.ProcessState.ExitCode())

	// The server's own log agrees: shutdown began, and only then did the
	// request carrying the call finish (the access log line is written when a
	// request ends).
	log := logs.String()
	shut := strings.Index(log, `msg="shutting down: waiting for in-flight calls"`)
	require.GreaterOrEqual(t, shut, 0, "log:\n%s", log)
	var after []string
	for _, line := range strings.Split(log[shut:], "\n") {
		if strings.Contains(line, "msg=http method=POST path=/mcp ") {
			after = append(after, line)
		}
	}
	require.Len(t, after, 1, "exactly the in-flight POST finished after shutdown began; log:\n%s", log)
	assert.Contains(t, after[0], " status=200 ")
	assert.Contains(t, log[shut:], `msg="tool call" tool=workspan_get_bulk_load_status `, "the call itself ended after shutdown began")
}

// structured is a tool result's structuredContent as a JSON object.
func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	m, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok, "structuredContent is an object: %#v", res.StructuredContent)
	return m
}
