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
// does), no rolling window sees more than the limit. Mid-run the database
// is killed: while it is down not one request reaches the upstream, and
// once it is back the slots held before the crash still count.
func TestThreeReplicasStayWithinTheLimitAtTheUpstream(t *testing.T) {
	const limit, window = 10, time.Second
	srv := pgtest.StartServer(t)
	dsn := srv.NewDatabase(t)
	sb := pdsandbox.New(pdsandbox.Options{EnforceBudget: pdsandbox.BudgetLimit{Limit: limit, Window: window}})
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	reps := stackReplicas(t, dsn, ts.URL, 3, limit, window)
	ctx := testContext(t)
	arrived := func() int { return len(sb.Arrivals(pdsandbox.DefaultToken)) }

	var ok, unavailable, other atomic.Int64
	var firstErr error
	var errOnce sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 12 {
		r := reps[i%len(reps)]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := r.client.GetDeal(ctx, 1)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, throttle.ErrSharedUnavailable):
					unavailable.Add(1)
				default:
					other.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	// waitUntil waits for cond, checked every few milliseconds; the test's
	// context is a hang guard only.
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("never: %s", what)
			case <-tick.C:
			}
		}
	}

	waitUntil("three windows of saturation", func() bool { return arrived() > 3*limit })
	phase1 := sb.Arrivals(pdsandbox.DefaultToken)

	// The database dies mid-run.
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	// Once every caller has been refused, nothing is in flight any more.
	waitUntil("every caller refused", func() bool { return unavailable.Load() >= 12 })
	down := arrived()
	before := unavailable.Load()
	waitUntil("many more refusals", func() bool { return unavailable.Load() >= before+48 })
	if n := arrived() - down; n != 0 {
		t.Fatalf("%d requests reached the upstream while the ledger was down", n)
	}
	for _, r := range reps {
		if st := r.budget.Status(); st.Remaining != 0 {
			t.Fatalf("with the database down the budget reports %d remaining", st.Remaining)
		}
	}

	// Back: grants resume.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil("grants resume", func() bool { return arrived() >= down+2*limit })

	most := sb.MaxInWindow(pdsandbox.DefaultToken, window)
	t.Logf("3 replicas, 12 callers: %d arrivals before the crash, %d in all; at most %d in a window of %v (limit %d); %.0f%% of the limit per whole window before the crash; %d refused as unavailable while down; other errors %d (first: %v)",
		len(phase1), arrived(), most, window, limit, utilisation(phase1, limit, window), unavailable.Load(), other.Load(), firstErr)
	if most > limit {
		t.Fatalf("%d requests arrived within one window of %v; the limit is %d", most, window, limit)
	}
	if refused := sb.GatewayRefusals(pdsandbox.DefaultToken); refused > 0 {
		t.Fatalf("the sandbox refused %d requests as over the limit", refused)
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
