package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
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
	// A delivery that fails once the kill is under way (cut off, or refused
	// while the server is down) is retried when the server is back; one
	// that fails before is retried at once.
	const maxAttempts = 10 // per event; a real sender would give up too
	var (
		mu                sync.Mutex
		acked, attempts   int
		reached           = make(chan struct{}) // closed at 300 acknowledged events
		killing, restored = make(chan struct{}), make(chan struct{})
		done              = make(chan struct{})
		ctx               = t.Context()
	)
	go func() {
		defer close(done)
		// The timeout is a hang guard only: a killed server resets its
		// connections, and a stopped one refuses them.
		client := &http.Client{Timeout: hangGuard}
		for i := range total {
			body := fmt.Sprintf(`{"event":"object.create","event_id":"evt-%04d","object_id":"%d"}`, i, 900000+i)
			for try := 1; ; try++ {
				if ctx.Err() != nil {
					return // the test is over
				}
				if try > maxAttempts {
					t.Errorf("event %d: no 2xx in %d attempts", i, maxAttempts)
					return
				}
				mu.Lock()
				attempts++
				mu.Unlock()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, callback, strings.NewReader(body))
				if !assert.NoError(t, err) {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					_ = resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						mu.Lock()
						acked++
						if acked == 300 {
							close(reached)
						}
						mu.Unlock()
						break
					}
				}
				select {
				case <-killing:
					select {
					case <-restored:
					case <-ctx.Done():
						return
					}
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { <-done }) // t.Context ends first, which stops the sender

	select {
	case <-reached:
	case <-done:
		t.Fatal("the sender stopped before 300 events were acknowledged")
	case <-time.After(hangGuard):
		t.Fatalf("300 events not acknowledged within %v", hangGuard)
	}
	close(killing)
	first.kill() // SIGKILL
	mu.Lock()
	ackedAtKill := acked
	mu.Unlock()

	second := start()
	close(restored)
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("the sender did not finish within %v", hangGuard)
	}
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
