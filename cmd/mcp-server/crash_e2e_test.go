package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// TestWebhookEventsSurviveSIGKILL kills the server with SIGKILL while 1,000
// webhook events are being delivered, restarts it, and lets the sender's
// retries fill in: every acknowledged event is readable exactly once per
// cursor, and none is missing.
func TestWebhookEventsSurviveSIGKILL(t *testing.T) {
	const total = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dir := stateDir(t)
	args := []string{"--webhook-listen", addr}
	start := func() *stdioSession {
		s := startServerEnv(t, []string{"COSELL_STATE_DIR=" + dir}, args...)
		s.initialize("2025-11-25")
		return s
	}

	first := start()
	res := first.request("tools/call", map[string]any{"name": "trigger_start", "arguments": map[string]any{"uri": "workspan://triggers/object-events?integration_id=int-crm-001"}})["result"].(map[string]any)
	require.Nil(t, res["isError"], "%v", res)
	uri := res["structuredContent"].(map[string]any)["uri"].(string)

	// The capability URL the upstream was given, from the trigger's state.
	st, err := store.Open(dir+"/state.db", store.Options{})
	require.NoError(t, err)
	tr, ok, err := st.Trigger(context.Background(), uri)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, st.Close())
	var ws struct{ ID, Secret string }
	require.NoError(t, json.Unmarshal(tr.State, &ws))
	callback := fmt.Sprintf("http://%s/webhooks/workspan/%s/%s", addr, ws.ID, ws.Secret)

	// The sender: each event until a 2xx, retrying as a real sender does.
	var mu sync.Mutex
	acked, attempts := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 2 * time.Second}
		for i := range total {
			body := fmt.Sprintf(`{"event":"object.create","event_id":"evt-%04d","object_id":"%d"}`, i, 900000+i)
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
				mu.Lock()
				attempts++
				mu.Unlock()
				resp, err := client.Post(callback, "application/json", strings.NewReader(body))
				if err == nil {
					_ = resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						mu.Lock()
						acked++
						mu.Unlock()
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()

	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return acked >= 300 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	_ = first.cmd.Wait()
	mu.Lock()
	ackedAtKill := acked
	mu.Unlock()

	second := start()
	<-done
	mu.Lock()
	require.Equal(t, total, acked, "the sender's retries filled in every event")
	t.Logf("acknowledged %d before SIGKILL, %d in all, %d delivery attempts", ackedAtKill, acked, attempts)
	mu.Unlock()

	seen := map[string]int{}
	for range 20 {
		page := second.request("tools/call", map[string]any{"name": "trigger_read_events", "arguments": map[string]any{"uri": uri, "consumer": "crash-test", "limit": 100}})["result"].(map[string]any)
		require.Nil(t, page["isError"], "%v", page)
		var p struct {
			Events []struct {
				Key string `json:"key"`
			} `json:"events"`
			More bool `json:"more"`
		}
		text := page["content"].([]any)[0].(map[string]any)["text"].(string)
		require.NoError(t, json.Unmarshal([]byte(text), &p))
		for _, e := range p.Events {
			seen[e.Key]++
		}
		if !p.More {
			break
		}
	}
	assert.Len(t, seen, total, "every acknowledged event is stored")
	for k, n := range seen {
		assert.Equal(t, 1, n, "event %s read twice by one cursor", k)
	}
}
