package pipedrive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
)

// recorder is the base transport: it notes the fake time at which each
// request leaves the process, below the throttle.
type recorder struct {
	clock *clock.Fake
	base  http.RoundTripper
	mu    sync.Mutex
	times []time.Time
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.times = append(r.times, r.clock.Now())
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// TestFiftyConcurrentCallersForThreeMinutes drives 50 agents adding
// activities through the MCP server for 3 simulated minutes. No 60 s window
// may see more than 100 requests leave, every successful call must exist
// upstream exactly once and every refused call not at all.
func TestFiftyConcurrentCallersForThreeMinutes(t *testing.T) {
	const (
		workers = 50
		limit   = 100
		window  = 60 * time.Second
		runFor  = 3 * time.Minute
	)
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	fc := clock.NewFake(start)
	sb := sandbox.New(sandbox.Options{Now: fc.Now, Burst: 1 << 20})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)

	budgets := throttle.NewRegistry(throttle.Config{Limit: limit, Window: window, MaxWait: 30 * time.Second, Clock: fc})
	budget := budgets.Budget(pdtools.Toolset)
	rec := &recorder{clock: fc, base: http.DefaultTransport}
	pc := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL), pd.WithHTTPClient(&http.Client{Transport: httpx.Chain(budget, rec)}))
	reg := tools.NewRegistry()
	reg.Add(pdtools.Tools(pdtools.Static(pc))...)
	c := toolstest.New(t, reg, tools.Policy{}, nil).MCP
	ctx := context.Background()

	call := func(subject string) (*mcp.CallToolResult, error) {
		req := mcp.CallToolRequest{}
		req.Params.Name = "pipedrive_add_activity"
		req.Params.Arguments = map[string]any{"type": "task", "subject": subject, "deal_id": 1}
		return c.CallTool(ctx, req)
	}
	// Warm the reference caches so each later call is one upstream request.
	res, err := call("warm-up")
	require.NoError(t, err)
	require.False(t, res.IsError, text(res))
	warm := len(rec.times)

	var (
		mu        sync.Mutex
		succeeded = map[string]bool{}
		refused   = map[string]bool{}
		sleeping  atomic.Int32
		finished  atomic.Int32
		wg        sync.WaitGroup
	)
	end := start.Add(runFor)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			for n := 0; fc.Now().Before(end); n++ {
				subject := fmt.Sprintf("w%02d-%04d", w, n)
				res, err := call(subject)
				if err != nil {
					t.Errorf("%s: %v", subject, err)
					return
				}
				if !res.IsError {
					mu.Lock()
					succeeded[subject] = true
					mu.Unlock()
					continue
				}
				var body struct{ Error tools.Error }
				if json.Unmarshal([]byte(text(res)), &body) != nil || body.Error.Code != tools.CodeThrottled || body.Error.RetryAfterSeconds < 1 {
					t.Errorf("%s: unexpected error %s", subject, text(res))
					return
				}
				mu.Lock()
				refused[subject] = true
				mu.Unlock()
				sleeping.Add(1)
				_ = clock.Sleep(ctx, fc, time.Duration(body.Error.RetryAfterSeconds)*time.Second)
				sleeping.Add(-1)
			}
		}()
	}

	// Advance the fake clock only when every worker is blocked (queued for
	// budget, or sleeping out a retry_after), so time never moves while a
	// granted request is in flight.
	deadline := time.Now().Add(2 * time.Minute)
	for finished.Load() < workers {
		quiet := int(finished.Load())+int(sleeping.Load())+budget.Status().Waiting >= workers
		if !quiet {
			require.True(t, time.Now().Before(deadline), "workers never settled")
			time.Sleep(50 * time.Microsecond)
			continue
		}
		time.Sleep(200 * time.Microsecond) // let a just-woken worker show itself
		if int(finished.Load())+int(sleeping.Load())+budget.Status().Waiting >= workers {
			fc.Advance(250 * time.Millisecond)
		}
	}
	wg.Wait()

	times := rec.times[warm:]
	require.Equal(t, len(succeeded), len(times), "one upstream request per successful call, no retries of writes")
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	all := rec.times
	for i := limit; i < len(all); i++ {
		require.GreaterOrEqual(t, all[i].Sub(all[i-limit]), window,
			"requests %d and %d left within one window: more than %d in %s", i-limit, i, limit, window)
	}
	assert.GreaterOrEqual(t, len(all), 280, "the budget was used, not starved (3 windows of %d)", limit)
	assert.NotEmpty(t, refused, "the load exceeded the budget, so some calls were refused")

	// Upstream holds exactly the activities of the successful calls.
	check := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL))
	seen := map[string]int{}
	cursor := ""
	for {
		acts, resp, err := check.ListActivities(ctx, pd.ListActivitiesParams{DealID: 1, Limit: 500, Cursor: cursor})
		require.NoError(t, err)
		for _, a := range acts {
			seen[a.Subject]++
		}
		if resp.NextCursor == "" {
			break
		}
		cursor = resp.NextCursor
	}
	for s := range succeeded {
		assert.Equal(t, 1, seen[s], "activity %s", s)
	}
	for s := range refused {
		assert.Zero(t, seen[s], "refused activity %s reached upstream", s)
	}
	t.Logf("%d calls succeeded, %d refused with retry_after, %d requests left in %s simulated", len(succeeded), len(refused), len(all), runFor)
}
