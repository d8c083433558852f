package pipedrive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"sync"
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
	if pass, ok := req.Context().Value(passedKey{}).(func()); ok {
		pass()
	}
	return r.base.RoundTrip(req)
}

// idle counts the workers that wait on the fake clock, so that time moves
// only when none is running: each is finished, sleeping on a timer, or
// inside the budget's door (queued there, or on its way in or out).
type idle struct {
	mu       sync.Mutex
	changed  *sync.Cond
	finished int
	sleeping int
	atBudget int
}

func newIdle() *idle {
	q := &idle{}
	q.changed = sync.NewCond(&q.mu)
	return q
}

func (q *idle) add(n *int, d int) {
	q.mu.Lock()
	*n += d
	q.mu.Unlock()
	q.changed.Broadcast()
}

// sleep blocks for d of fake time. The worker counts as sleeping from
// before its timer can fire until the timer's callback, which runs inside
// Advance, so no Advance can miss that it woke.
func (q *idle) sleep(fc *clock.Fake, d time.Duration) {
	woke := make(chan struct{})
	q.mu.Lock()
	fc.AfterFunc(d, func() {
		q.add(&q.sleeping, -1)
		close(woke)
	})
	q.sleeping++
	q.mu.Unlock()
	q.changed.Broadcast()
	<-woke
}

// passedKey holds, in a request's context, the func that lets the request
// out of the door; the recorder calls it as the request leaves.
type passedKey struct{}

// door wraps the budgeted transport: a request counts as at the budget
// from entering until it leaves for upstream (or is refused).
type door struct {
	q    *idle
	next http.RoundTripper
}

func (d door) RoundTrip(req *http.Request) (*http.Response, error) {
	var once sync.Once
	pass := func() { once.Do(func() { d.q.add(&d.q.atBudget, -1) }) }
	d.q.add(&d.q.atBudget, 1)
	defer pass()
	return d.next.RoundTrip(req.WithContext(context.WithValue(req.Context(), passedKey{}, pass)))
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
	sb := sandbox.New(sandbox.Options{Clock: fc, Burst: 1 << 20})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)

	budgets := throttle.NewRegistry(throttle.Config{Limit: limit, Window: window, MaxWait: 30 * time.Second, Clock: fc})
	budget := budgets.Budget(pdtools.Toolset)
	var grantsMu sync.Mutex
	var grants []time.Time
	budget.OnGrant(func(at time.Time) { grantsMu.Lock(); grants = append(grants, at); grantsMu.Unlock() })
	rec := &recorder{clock: fc, base: http.DefaultTransport}
	q := newIdle()
	pc := pd.New(sandbox.DefaultToken, pd.WithBaseURL(ts.URL), pd.WithClock(fc),
		pd.WithHTTPClient(&http.Client{Transport: door{q: q, next: httpx.Chain(budget, rec)}}))
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
		wg        sync.WaitGroup
	)
	end := start.Add(runFor)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer q.add(&q.finished, 1)
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
				q.sleep(fc, time.Duration(body.Error.RetryAfterSeconds)*time.Second)
			}
		}()
	}

	// Advance the fake clock only when every worker waits on it (queued for
	// budget, or sleeping out a retry_after), so time never moves while a
	// granted request is on its way out.
	for {
		q.mu.Lock()
		for q.finished+q.sleeping+q.atBudget < workers {
			q.changed.Wait()
		}
		done, atBudget := q.finished == workers, q.atBudget
		q.mu.Unlock()
		if done {
			break
		}
		// Nobody else can enter the door now; those inside are queued once
		// the budget counts them all. A request inside but not queued is a
		// moment's CPU work from the queue or the recorder: the budget
		// signals neither, so yield until it is there.
		if budget.Status().Waiting < atBudget {
			runtime.Gosched()
			continue
		}
		fc.Advance(250 * time.Millisecond)
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
	grantsMu.Lock()
	assert.Equal(t, grants, all, "every request left at the time of its grant")
	grantsMu.Unlock()

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
