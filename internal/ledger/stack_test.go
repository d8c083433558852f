package ledger

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// stackReplica is one server process of the cluster as far as the budget
// goes: its own throttle.Budget over its own Ledger and pool, and a real
// Pipedrive client whose transport spends from it.
type stackReplica struct {
	budget *throttle.Budget
	client *pd.Client
}

func stackReplicas(t testing.TB, dsn, sandboxURL string, n int, limit int, window time.Duration) []stackReplica {
	t.Helper()
	ls := replicas(t, dsn, n, Config{Limit: limit, Window: window, MaxInFlight: 10 * time.Second, OpTimeout: 2 * time.Second})
	out := make([]stackReplica, n)
	for i, l := range ls {
		b := throttle.New("pipedrive", throttle.Config{Limit: limit, Window: window, MaxWait: time.Minute, Shared: l.Shared()})
		c := pd.New(pdsandbox.DefaultToken, pd.WithBaseURL(sandboxURL),
			pd.WithHTTPClient(&http.Client{Transport: httpx.Chain(b, http.DefaultTransport)}))
		out[i] = stackReplica{budget: b, client: c}
	}
	return out
}

// Three replicas, one credential, saturating callers on each, through the
// real transport to the Pipedrive sandbox: where the upstream counts (the
// sandbox's arrival log, which also enforces the limit as the gateway
// does), no rolling window sees more than the limit. Then the database
// goes away: nothing reaches the upstream until it is back.
func TestThreeReplicasStayWithinTheLimitAtTheUpstream(t *testing.T) {
	const limit, window, run = 10, time.Second, 3 * time.Second
	srv := pgtest.StartServer(t)
	dsn := srv.NewDatabase(t)
	sb := pdsandbox.New(pdsandbox.Options{EnforceBudget: pdsandbox.BudgetLimit{Limit: limit, Window: window}})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	reps := stackReplicas(t, dsn, ts.URL, 3, limit, window)
	ctx := testContext(t)

	var ok, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	end := time.Now().Add(run)
	var wg sync.WaitGroup
	for i := range 12 {
		r := reps[i%len(reps)]
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := r.client.GetDeal(ctx, 1); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	arrivals := sb.Arrivals(pdsandbox.DefaultToken)
	most := sb.MaxInWindow(pdsandbox.DefaultToken, window)
	util := utilisation(arrivals, limit, window)
	t.Logf("3 replicas, 12 callers, %v: %d arrivals at the sandbox, at most %d in a window of %v (limit %d), %.0f%% of the limit per window; %d calls failed (first: %v)",
		run, len(arrivals), most, window, limit, util, failed.Load(), firstErr)
	if most > limit {
		t.Fatalf("%d requests arrived within one window of %v; the limit is %d", most, window, limit)
	}
	if refused := sb.GatewayRefusals(pdsandbox.DefaultToken); refused > 0 {
		t.Fatalf("the sandbox refused %d requests as over the limit", refused)
	}
	if ok.Load() < int64(limit) {
		t.Fatalf("only %d calls succeeded", ok.Load())
	}

	// The database goes away: every call fails as unavailable and none
	// reaches the upstream.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	before := len(sb.Arrivals(pdsandbox.DefaultToken))
	for _, r := range reps {
		_, err := r.client.GetDeal(ctx, 1)
		if !errors.Is(err, throttle.ErrSharedUnavailable) {
			t.Fatalf("with the database down: %v; want ErrSharedUnavailable", err)
		}
		if st := r.budget.Status(); st.Remaining != 0 {
			t.Fatalf("with the database down the budget reports %d remaining", st.Remaining)
		}
	}
	if after := len(sb.Arrivals(pdsandbox.DefaultToken)); after != before {
		t.Fatalf("%d requests reached the upstream while the ledger was down", after-before)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := reps[1].client.GetDeal(ctx, 1); err != nil {
		t.Fatalf("once the database is back: %v", err)
	}
	if most := sb.MaxInWindow(pdsandbox.DefaultToken, window); most > limit {
		t.Fatalf("%d requests within one window after the outage", most)
	}
}

// BenchmarkClusterUtilisation saturates one connection's budget of 100 per
// 60 s from three replicas (eight callers each) through the real transport
// for COSELL_BENCH_WINDOWS windows (default 3), and reports, at the
// sandbox's arrival log, the busiest rolling window and the utilisation.
func BenchmarkClusterUtilisation(b *testing.B) {
	const limit, window = 100, 60 * time.Second
	windows := 3
	if v, err := strconv.Atoi(os.Getenv("COSELL_BENCH_WINDOWS")); err == nil && v > 0 {
		windows = v
	}
	srv := pgtest.StartServer(b)
	dsn := srv.NewDatabase(b)
	for range b.N {
		sb := pdsandbox.New(pdsandbox.Options{EnforceBudget: pdsandbox.BudgetLimit{Limit: limit, Window: window}})
		ts := httptest.NewServer(sb)
		reps := stackReplicas(b, dsn, ts.URL, 3, limit, window)
		end := time.Now().Add(time.Duration(windows) * window)
		var wg sync.WaitGroup
		for i := range 24 {
			r := reps[i%len(reps)]
			wg.Go(func() {
				ctx := context.Background()
				for time.Now().Before(end) {
					_, _ = r.client.GetDeal(ctx, 1)
				}
			})
		}
		wg.Wait()
		ts.Close()
		arrivals := sb.Arrivals(pdsandbox.DefaultToken)
		b.ReportMetric(float64(sb.MaxInWindow(pdsandbox.DefaultToken, window)), "max/window")
		b.ReportMetric(utilisation(arrivals, limit, window), "util_%")
		b.ReportMetric(float64(sb.GatewayRefusals(pdsandbox.DefaultToken)), "gateway_429s")
	}
}

// utilisation is the share of the limit that arrived (ascending times) in
// the whole windows from the first arrival on, in percent: a saturated
// budget admits a burst at the start of each window, and the last, cut
// short by the end of the run, is left out.
func utilisation(arrivals []time.Time, limit int, window time.Duration) float64 {
	if len(arrivals) == 0 {
		return 0
	}
	whole := int(arrivals[len(arrivals)-1].Sub(arrivals[0]) / window)
	if whole == 0 {
		return 0
	}
	end := arrivals[0].Add(time.Duration(whole) * window)
	n := 0
	for _, a := range arrivals {
		if a.Before(end) {
			n++
		}
	}
	return 100 * float64(n) / float64(whole*limit)
}
