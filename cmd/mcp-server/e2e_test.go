package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds mcp-server once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcp-server-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mcp-server")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// stateDir is a fresh state directory for one test's server.
func stateDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "cosell-state")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// sandboxEnv is the environment with every connector credential removed.
func sandboxEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PIPEDRIVE_") || strings.HasPrefix(kv, "PARTNERCENTER_") || strings.HasPrefix(kv, "WORKSPAN_") || strings.HasPrefix(kv, "COSELL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// hangGuard bounds every wait of the end-to-end tests for the server. It is
// not a time budget: each wait ends on an event (a response, a notification,
// a log line), and the guard only turns a hang into a failure.
const hangGuard = 2 * time.Minute

// stdioSession drives the binary over stdio with newline-delimited JSON-RPC.
// A reader goroutine, owned by the session (stop waits for it), takes every
// message off stdout as it arrives: responses wait for request, and
// notifications are kept in order, so a test can block until one arrives.
type stdioSession struct {
	t          testing.TB
	cmd        *exec.Cmd
	in         io.WriteCloser
	stderr     *lockedWriter
	nextID     int
	readerDone chan struct{} // closed once stdout has ended

	mu        sync.Mutex
	changed   chan struct{}          // closed and replaced at every message and when stdout ends
	responses map[int]map[string]any // by id, until request takes them
	notes     []map[string]any       // every notification, in arrival order
	bad       error                  // the first line on stdout that was not JSON-RPC
	ended     error                  // why stdout ended (io.EOF when the server exited)
}

func startServer(t testing.TB, args ...string) *stdioSession {
	t.Helper()
	return startServerEnv(t, []string{"COSELL_STATE_DIR=" + stateDir(t)}, args...)
}

// startServerEnv starts the binary on the sandboxes with extra environment.
func startServerEnv(t testing.TB, env []string, args ...string) *stdioSession {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(sandboxEnv(), env...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &lockedWriter{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	s := &stdioSession{t: t, cmd: cmd, in: in, stderr: stderr, readerDone: make(chan struct{}),
		changed: make(chan struct{}), responses: map[int]map[string]any{}}
	go s.read(out)
	t.Cleanup(s.stop)
	return s
}

// read takes the messages off the server's stdout until it ends.
func (s *stdioSession) read(out io.Reader) {
	defer close(s.readerDone)
	br := bufio.NewReaderSize(out, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			s.take(line)
		}
		if err != nil {
			s.mu.Lock()
			s.ended = err
			s.signalLocked()
			s.mu.Unlock()
			return
		}
	}
}

// take files one line of stdout as a response or a notification.
func (s *stdioSession) take(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.signalLocked()
	var msg map[string]any
	if err := json.Unmarshal(line, &msg); err != nil {
		if s.bad == nil {
			s.bad = fmt.Errorf("stdout must carry only JSON-RPC: %q", line)
		}
		return
	}
	id, hasID := msg["id"]
	_, isCall := msg["method"]
	switch {
	case !hasID && isCall:
		s.notes = append(s.notes, msg)
	case hasID && !isCall:
		if rid, ok := id.(float64); ok {
			s.responses[int(rid)] = msg
		}
	}
	// A request from the server (id and method) needs no answer here.
}

func (s *stdioSession) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// await blocks until cond, called with the session locked, holds. It fails
// the test if stdout carries something other than JSON-RPC, if it ends
// first, or if nothing satisfies cond within hangGuard.
func (s *stdioSession) await(what string, cond func() bool) {
	s.t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		bad, ended, changed := s.bad, s.ended, s.changed
		s.mu.Unlock()
		require.NoError(s.t, bad)
		if ok {
			return
		}
		if ended != nil {
			s.t.Fatalf("waiting for %s: the server's stdout ended (%v); stderr: %s", what, ended, s.stderr.String())
		}
		select {
		case <-changed:
		case <-guard.C:
			s.t.Fatalf("no %s within %v; stderr: %s", what, hangGuard, s.stderr.String())
		}
	}
}

// stop closes stdin, lets the server exit (killing it if it does not within
// a grace period) and waits for the reader.
func (s *stdioSession) stop() {
	_ = s.in.Close()
	select {
	case <-s.readerDone:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.readerDone
	}
	_ = s.cmd.Wait()
	s.mu.Lock()
	bad := s.bad
	s.mu.Unlock()
	if bad != nil {
		s.t.Error(bad)
	}
}

// kill ends the server with SIGKILL and waits until it is gone.
func (s *stdioSession) kill() {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Kill())
	<-s.readerDone
	_ = s.cmd.Wait()
}

// lockedWriter collects a child's stderr while tests read it, and lets them
// wait for a line.
type lockedWriter struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced at every write; nil until first needed
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// awaitContains blocks until the output contains substr. It returns false if
// exited is closed first (the process is gone), or after hangGuard.
func (l *lockedWriter) awaitContains(substr string, exited <-chan struct{}) bool {
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		l.mu.Lock()
		if strings.Contains(l.b.String(), substr) {
			l.mu.Unlock()
			return true
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-exited:
			return strings.Contains(l.String(), substr)
		case <-guard.C:
			return false
		}
	}
}

func (s *stdioSession) notify(method string, params any) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		msg["params"] = params
	}
	s.send(msg)
}

func (s *stdioSession) send(msg map[string]any) {
	s.t.Helper()
	b, err := json.Marshal(msg)
	require.NoError(s.t, err)
	_, err = s.in.Write(append(b, '\n'))
	require.NoError(s.t, err)
}

// request sends a request and returns its response.
func (s *stdioSession) request(method string, params any) map[string]any {
	s.t.Helper()
	s.nextID++
	id := s.nextID
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	s.send(msg)
	var resp map[string]any
	s.await(method+" response", func() bool {
		resp = s.responses[id]
		delete(s.responses, id)
		return resp != nil
	})
	return resp
}

// updatesLocked counts the resources/updated notifications for uri.
func (s *stdioSession) updatesLocked(uri string) int {
	n := 0
	for _, note := range s.notes {
		if note["method"] == "notifications/resources/updated" {
			if p, ok := note["params"].(map[string]any); ok && p["uri"] == uri {
				n++
			}
		}
	}
	return n
}

// awaitUpdated blocks until more than seen resources/updated notifications
// for uri have arrived, and returns how many have.
func (s *stdioSession) awaitUpdated(uri string, seen int) int {
	s.t.Helper()
	var n int
	s.await("notifications/resources/updated for "+uri, func() bool {
		n = s.updatesLocked(uri)
		return n > seen
	})
	return n
}

// awaitNote blocks until a notification of the method for which match
// (given its params) holds has arrived, and returns its params.
func (s *stdioSession) awaitNote(method string, match func(params map[string]any) bool) map[string]any {
	s.t.Helper()
	var found map[string]any
	s.await(method, func() bool {
		for _, note := range s.notes {
			if p, _ := note["params"].(map[string]any); note["method"] == method && match(p) {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

func (s *stdioSession) initialize(version string) map[string]any {
	resp := s.request("initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "e2e", "version": "1"},
	})
	s.notify("notifications/initialized", nil)
	return resp
}

func TestBinaryOverStdio(t *testing.T) {
	s := startServer(t)
	init := s.initialize("2025-11-25")
	result := init["result"].(map[string]any)
	assert.Equal(t, "cosell-mcp", result["serverInfo"].(map[string]any)["name"])
	assert.Contains(t, result["instructions"], "SANDBOX MODE")

	list := s.request("tools/list", nil)["result"].(map[string]any)["tools"].([]any)
	var names []string
	for _, tl := range list {
		names = append(names, tl.(map[string]any)["name"].(string))
	}
	assert.Contains(t, names, "pipedrive_get_deal")
	assert.Contains(t, names, "pipedrive_update_deal_stage")
	assert.NotContains(t, names, "pipedrive_add_deal_deprecated")

	call := s.request("tools/call", map[string]any{"name": "pipedrive_get_deal", "arguments": map[string]any{"deal_id": 1}})["result"].(map[string]any)
	assert.Nil(t, call["isError"])
	sc := call["structuredContent"].(map[string]any)
	assert.Equal(t, float64(1), sc["id"])
	assert.NotEmpty(t, sc["stage_name"])
	assert.NotNil(t, call["_meta"].(map[string]any)["budget"])

	bad := s.request("tools/call", map[string]any{"name": "pipedrive_update_deal_status", "arguments": map[string]any{"deal_id": 1, "status": "won", "lost_reason": "x"}})["result"].(map[string]any)
	assert.Equal(t, true, bad["isError"])
	txt := bad["content"].([]any)[0].(map[string]any)["text"].(string)
	assert.Contains(t, txt, `"code":"invalid_argument"`)

	unknown := s.request("tools/call", map[string]any{"name": "no_such_tool", "arguments": map[string]any{}})
	assert.NotNil(t, unknown["error"], "an unknown tool is a JSON-RPC error")

	refs := s.request("tools/call", map[string]any{"name": "partnercenter_list_referrals", "arguments": map[string]any{"status": "New", "direction": "Incoming", "limit": 3}})["result"].(map[string]any)
	assert.Nil(t, refs["isError"], "%v", refs)
	rows := refs["structuredContent"].(map[string]any)["referrals"].([]any)
	assert.NotEmpty(t, rows)

	assert.Contains(t, s.stderr.String(), "Pipedrive runs on the embedded sandbox", "sandbox mode is announced on stderr")
	assert.Contains(t, s.stderr.String(), "Partner Center runs on the embedded sandbox")

	up := s.request("tools/call", map[string]any{"name": "workspan_bulk_load_opportunities", "arguments": map[string]any{
		"integration_id": "int-crm-001", "data": "name,stage,amount\nFabrikam expansion,Qualify,1200\nBroken,Nowhere,x\n"}})["result"].(map[string]any)
	require.Nil(t, up["isError"], "%v", up)
	execs := up["structuredContent"].(map[string]any)["executions"].([]any)
	require.Len(t, execs, 1)
	st := s.request("tools/call", map[string]any{"name": "workspan_get_bulk_load_status", "arguments": map[string]any{
		"integration_id": "int-crm-001", "execution_ids": []any{execs[0].(map[string]any)["execution_id"]}}})["result"].(map[string]any)
	require.Nil(t, st["isError"], "%v", st)
}

func TestBinaryModernProtocol(t *testing.T) {
	s := startServer(t)
	init := s.initialize("2026-07-28")
	require.NotNil(t, init["result"], "%v", init)
	list := s.request("tools/list", nil)
	require.NotNil(t, list["result"], "%v", list)
	call := s.request("tools/call", map[string]any{"name": "pipedrive_list_pipelines", "arguments": map[string]any{}})
	require.NotNil(t, call["result"], "%v", call)
}

func TestCallSubcommand(t *testing.T) {
	cmd := exec.Command(binary(t), "call", "pipedrive_get_stage", `{"stage_id":2}`)
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	out, err := cmd.Output()
	require.NoError(t, err)
	var stage map[string]any
	require.NoError(t, json.Unmarshal(out, &stage), "%s", out)
	assert.Equal(t, "Qualified", stage["name"])
	assert.Equal(t, "Sales", stage["pipeline_name"])

	cmd = exec.Command(binary(t), "call", "pipedrive_get_deal", `{"deal_id":0}`)
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	out, err = cmd.Output()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "a tool error exits non-zero")
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, string(out), "invalid_argument")

	cmd = exec.Command(binary(t), "--read-only", "call", "pipedrive_get_deal", `{"deal_id":1}`)
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	_, err = cmd.Output()
	require.Error(t, err, "flags go after the subcommand")
}

func TestConnectionStatus(t *testing.T) {
	cmd := exec.Command(binary(t), "call", "connection_status")
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	out, err := cmd.Output()
	require.NoError(t, err)
	var st struct {
		Connections []struct {
			Connector, Mode, Account string
			Budget                   struct{ Used int }
		}
	}
	require.NoError(t, json.Unmarshal(out, &st), "%s", out)
	require.Len(t, st.Connections, 3)
	for _, c := range st.Connections {
		assert.Equal(t, "sandbox", c.Mode, c.Connector)
	}
	assert.Equal(t, "pipedrive", st.Connections[0].Connector)
	assert.Contains(t, st.Connections[0].Account, "@", "Pipedrive tells whose token it is")
	assert.Equal(t, 1, st.Connections[0].Budget.Used, "learning the account cost one call")
}

func TestToolsSubcommand(t *testing.T) {
	out, err := exec.Command(binary(t), "tools", "--json").Output()
	require.NoError(t, err)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(out, &rows))
	ops := map[string]string{}
	for _, r := range rows {
		ops[r["name"].(string)] = r["operation"].(string)
	}
	assert.Equal(t, "AddDealV2", ops["pipedrive_add_deal"])
	assert.Equal(t, "AddDeal", ops["pipedrive_add_deal_deprecated"])
	assert.Equal(t, "UpdateDealStageV2", ops["pipedrive_update_deal_stage"])
}

func TestSecretsComeFromFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(path, []byte("file-token\n"), 0o600))
	t.Setenv("PIPEDRIVE_API_TOKEN", "")
	t.Setenv("PIPEDRIVE_API_TOKEN_FILE", path)
	cfg, _, err := parseConfig("serve", nil, io.Discard, nil)
	require.NoError(t, err)
	assert.Equal(t, "file-token", cfg.PipedriveToken)
	assert.False(t, cfg.Sandbox)

	t.Setenv("PIPEDRIVE_API_TOKEN_FILE", filepath.Join(dir, "missing"))
	_, _, err = parseConfig("serve", nil, io.Discard, nil)
	assert.Error(t, err)
}

// With the binary over stdio: subscribe to new deals, add one, get told,
// read exactly that deal.
func TestBinaryTriggerSubscription(t *testing.T) {
	s := startServer(t, "--poll-interval", "100ms", "--budget-limit", "10000")
	s.initialize("2025-11-25")
	const uri = "pipedrive://triggers/new-deals"
	// The trigger starts, and makes its first poll (the one that marks
	// "now"), before the subscription is answered.
	sub := s.request("resources/subscribe", map[string]any{"uri": uri})
	require.NotNil(t, sub["result"], "%v", sub)

	add := s.request("tools/call", map[string]any{"name": "pipedrive_add_deal", "arguments": map[string]any{"title": "Subscribed deal"}})["result"].(map[string]any)
	require.Nil(t, add["isError"], "%v", add)
	id := add["structuredContent"].(map[string]any)["id"]

	s.awaitUpdated(uri, 0) // notifications/resources/updated arrives
	read := s.request("resources/read", map[string]any{"uri": uri})["result"].(map[string]any)
	text := read["contents"].([]any)[0].(map[string]any)["text"].(string)
	var page struct {
		Events []struct {
			Data map[string]any `json:"data"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(text), &page))
	require.Len(t, page.Events, 1)
	assert.Equal(t, id, page.Events[0].Data["id"])
	assert.Equal(t, "Subscribed deal", page.Events[0].Data["title"])
}

func TestPollIntervalRespectsTheBudget(t *testing.T) {
	_, _, err := parseConfig("serve", []string{"--poll-interval", "1s"}, io.Discard, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "faster than the budget allows")
}

// The same with protocol 2026-07-28: no initialize, per-request _meta, and
// subscriptions/listen instead of resources/subscribe.
func TestBinaryTriggerSubscriptionModern(t *testing.T) {
	s := startServer(t, "--poll-interval", "100ms", "--budget-limit", "10000")
	meta := map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "e2e", "version": "1"},
	}
	const uri = "pipedrive://triggers/new-deals"
	listen, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 9999, "method": "subscriptions/listen",
		"params": map[string]any{"_meta": meta, "notifications": map[string]any{"resourceSubscriptions": []string{uri}}}})
	_, err := s.in.Write(append(listen, '\n'))
	require.NoError(t, err)
	// The stream stays open, so there is no response to wait for. The
	// server acknowledges it once the subscription is in place, and the
	// trigger has started, with its first poll (the one that marks "now")
	// made, before that.
	ack := s.awaitNote("notifications/subscriptions/acknowledged", func(p map[string]any) bool {
		m, _ := p["_meta"].(map[string]any)
		return m["io.modelcontextprotocol/subscriptionId"] == float64(9999)
	})
	assert.Equal(t, []any{uri}, ack["notifications"].(map[string]any)["resourceSubscriptions"], "%v", ack)

	add := s.request("tools/call", map[string]any{"_meta": meta, "name": "pipedrive_add_deal", "arguments": map[string]any{"title": "Listened deal"}})["result"].(map[string]any)
	require.Nil(t, add["isError"], "%v", add)
	s.awaitUpdated(uri, 0) // notifications/resources/updated arrives on the listen stream
	read := s.request("resources/read", map[string]any{"_meta": meta, "uri": uri + "?after=0"})["result"].(map[string]any)
	text := read["contents"].([]any)[0].(map[string]any)["text"].(string)
	assert.Contains(t, text, "Listened deal")
}

// A WorkSpan bulk load produces object.create events that the embedded
// sandbox delivers over HTTP to our listener; the subscribed client is told.
func TestBinaryWorkSpanWebhookSubscription(t *testing.T) {
	s := startServer(t)
	s.initialize("2025-11-25")
	const uri = "workspan://triggers/object-events?event=object.create&integration_id=int-crm-001"
	sub := s.request("resources/subscribe", map[string]any{"uri": uri})
	require.NotNil(t, sub["result"], "%v", sub)

	up := s.request("tools/call", map[string]any{"name": "workspan_bulk_load_opportunities", "arguments": map[string]any{
		"integration_id": "int-crm-001", "data": "name,stage\nWebhook A,Qualify\nWebhook B,Develop\n"}})["result"].(map[string]any)
	require.Nil(t, up["isError"], "%v", up)
	id := up["structuredContent"].(map[string]any)["executions"].([]any)[0].(map[string]any)["execution_id"]
	st := s.request("tools/call", map[string]any{"name": "workspan_get_bulk_load_status", "arguments": map[string]any{
		"integration_id": "int-crm-001", "execution_ids": []any{id}, "wait": true, "wait_seconds": 30}})["result"].(map[string]any)
	require.Nil(t, st["isError"], "%v", st)

	// Every delivery the server stores is followed by a notification: read
	// after each one until both events are there.
	var names []string
	for seen := 0; len(names) < 2; {
		seen = s.awaitUpdated(uri, seen) // notified of the webhook events
		read := s.request("resources/read", map[string]any{"uri": uri + "&after=0"})
		require.NotNil(t, read["result"], "%v", read)
		text := read["result"].(map[string]any)["contents"].([]any)[0].(map[string]any)["text"].(string)
		var page struct {
			Events []struct {
				Data map[string]any `json:"data"`
			} `json:"events"`
		}
		require.NoError(t, json.Unmarshal([]byte(text), &page))
		names = names[:0]
		for _, e := range page.Events {
			assert.Equal(t, "object.create", e.Data["event"])
			names = append(names, fmt.Sprint(e.Data["name"]))
		}
	}
	assert.ElementsMatch(t, []string{"Webhook A", "Webhook B"}, names)
}

func TestCompletions(t *testing.T) {
	s := startServer(t)
	s.initialize("2025-11-25")
	complete := func(ref map[string]any, name, value string, ctx map[string]any) []any {
		params := map[string]any{"ref": ref, "argument": map[string]any{"name": name, "value": value}}
		if ctx != nil {
			params["context"] = map[string]any{"arguments": ctx}
		}
		resp := s.request("completion/complete", params)
		require.NotNil(t, resp["result"], "%v", resp)
		return resp["result"].(map[string]any)["completion"].(map[string]any)["values"].([]any)
	}
	tmpl := map[string]any{"type": "ref/resource", "uri": "workspan://triggers/object-events{?event,filters,integration_id,name,object_ids,after,raw}"}
	assert.Equal(t, []any{"int-crm-001"}, complete(tmpl, "integration_id", "int-c", nil))
	assert.Contains(t, complete(tmpl, "event", "object.", nil), "object.create")
	assert.ElementsMatch(t, []any{"Sales", "Partner Co-sell"}, complete(tmpl, "pipeline", "", nil))
	stages := complete(tmpl, "stage", "", map[string]any{"pipeline": "Partner Co-sell"})
	assert.Contains(t, stages, "Joint Discovery")
	assert.NotContains(t, stages, "Demo Scheduled", "only the named pipeline's stages")
}

func TestPrompts(t *testing.T) {
	s := startServer(t)
	s.initialize("2025-11-25")
	list := s.request("prompts/list", nil)["result"].(map[string]any)["prompts"].([]any)
	var names []string
	for _, p := range list {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	assert.ElementsMatch(t, []string{"triage_referrals", "register_deal", "review_pipeline", "bulk_import_opportunities", "link_referral_to_crm"}, names)
	got := s.request("prompts/get", map[string]any{"name": "review_pipeline", "arguments": map[string]any{"pipeline": "Sales"}})["result"].(map[string]any)
	text := got["messages"].([]any)[0].(map[string]any)["content"].(map[string]any)["text"].(string)
	assert.Contains(t, text, "Sales")
	assert.Contains(t, text, "pipedrive_list_deals")

	resp := s.request("completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "review_pipeline"},
		"argument": map[string]any{"name": "pipeline", "value": "Part"}})
	assert.Equal(t, []any{"Partner Co-sell"}, resp["result"].(map[string]any)["completion"].(map[string]any)["values"])

	ro := startServer(t, "--read-only")
	ro.initialize("2025-11-25")
	list = ro.request("prompts/list", nil)["result"].(map[string]any)["prompts"].([]any)
	assert.Len(t, list, 2, "read-only mode offers only the read-only prompts")
}
