package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testTimeout bounds every wait in these tests; it is never expected to
// pass.
const testTimeout = 2 * time.Minute

func newPool(t testing.TB, dsn string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// replicas opens n Ledgers on n pools of dsn at once, as n replicas would.
func replicas(t testing.TB, dsn string, n int, cfg Config) []*Ledger {
	t.Helper()
	ls := make([]*Ledger, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		pool := newPool(t, dsn, 8)
		wg.Go(func() { ls[i], errs[i] = Open(context.Background(), pool, cfg) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return ls
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mustAcquire(t testing.TB, ctx context.Context, l *Ledger, conn string, p throttle.Priority) *Grant {
	t.Helper()
	g, err := l.Acquire(ctx, conn, p)
	if err != nil {
		t.Fatalf("Acquire(%s, %s): %v", conn, p, err)
	}
	return g
}

func mustDone(t testing.TB, ctx context.Context, gs ...*Grant) {
	t.Helper()
	for _, g := range gs {
		if err := g.Done(ctx); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
}

// refuseWithin is the deadline of a caller that wantRefused expects to be
// refused: time enough to ask the database on a loaded machine, and less
// than any slot could free in the tests that use it (their windows are
// longer, and a slot in flight frees one window after its release at the
// earliest).
const refuseWithin = 5 * time.Second

// wantRefused asserts that a caller of priority p whose deadline comes
// before a slot could free is refused at once with a
// *throttle.ThrottledError.
func wantRefused(t testing.TB, l *Ledger, conn string, p throttle.Priority) *throttle.ThrottledError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), refuseWithin)
	defer cancel()
	g, err := l.Acquire(ctx, conn, p)
	var te *throttle.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("Acquire(%s, %s) = %v, %v; want a *throttle.ThrottledError", conn, p, g, err)
	}
	return te
}

// queued returns a function that waits until l has n callers queued for
// conn, observed through the queue hook (set before any caller waits).
func queued(l *Ledger, conn string) func(t testing.TB, n int) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	waiting := 0
	l.mu.Lock()
	l.queueHook = func(c string, w int) {
		if c == conn {
			mu.Lock()
			waiting = w
			cond.Broadcast()
			mu.Unlock()
		}
	}
	l.mu.Unlock()
	return func(t testing.TB, n int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for waiting < n {
			cond.Wait()
		}
	}
}

// TestReplicasNeverExceedLimit saturates one connection from three replicas
// and checks, on the database's clock, that no rolling window sees more
// than Limit arrivals.
func TestReplicasNeverExceedLimit(t *testing.T) {
	t.Parallel()
	const (
		limit      = 10
		window     = time.Second
		perReplica = 8
		target     = 4 * limit // grants: about four windows
		conn       = "crm"
	)
	dsn := pgtest.Start(t)
	ls := replicas(t, dsn, 3, Config{Limit: limit, Window: window, MaxInFlight: 2 * window})
	upstream := newPool(t, dsn, 3*perReplica+2) // stands in for the upstream: records arrivals
	ctx := testContext(t)
	run, stop := context.WithCancel(ctx)
	defer stop()

	var (
		granted  atomic.Int64
		mu       sync.Mutex
		arrivals []time.Time
		grants   []time.Time
		errs     []error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		stop()
	}
	for r, l := range ls {
		for i := range perReplica {
			prio := throttle.Priority((r + i) % 2)
			wg.Go(func() {
				for granted.Load() < target {
					g, err := l.Acquire(run, conn, prio)
					if err != nil {
						if run.Err() == nil {
							fail(err)
						}
						return
					}
					if granted.Add(1) >= target {
						stop()
					}
					// The request arrives after a network delay and answers after another.
					var at time.Time
					if err := upstream.QueryRow(ctx, `SELECT clock_timestamp() FROM pg_sleep($1)`, rand.Float64()*0.03).Scan(&at); err != nil {
						fail(err)
						return
					}
					if _, err := upstream.Exec(ctx, `SELECT pg_sleep($1)`, rand.Float64()*0.03); err != nil {
						fail(err)
						return
					}
					if err := g.Done(ctx); err != nil {
						fail(err)
						return
					}
					mu.Lock()
					arrivals = append(arrivals, at)
					grants = append(grants, g.Granted())
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(arrivals) < target {
		t.Fatalf("%d arrivals, want at least %d", len(arrivals), target)
	}
	busiest, at := busiestWindow(arrivals, window)
	if busiest > limit {
		t.Errorf("%d arrivals in the window from %s; limit %d", busiest, at.Format("15:04:05.000000"), limit)
	}
	if n, at := busiestWindow(grants, window); n > limit {
		t.Errorf("%d grants in the window from %s; limit %d", n, at.Format("15:04:05.000000"), limit)
	}
	span := arrivals[len(arrivals)-1].Sub(arrivals[0])
	ideal := float64(limit) * (1 + span.Seconds()/window.Seconds()) // the most the limit allows from the first arrival to the last
	t.Logf("%d arrivals from 3 replicas in %s: busiest window %d (limit %d per %s), utilisation %.0f%%",
		len(arrivals), span.Round(time.Millisecond), busiest, limit, window, 100*float64(len(arrivals))/ideal)
}

// busiestWindow sorts ts and returns the largest number of them in one
// window [t, t+window), and its start t.
func busiestWindow(ts []time.Time, window time.Duration) (int, time.Time) {
	slices.SortFunc(ts, time.Time.Compare)
	busiest, at := 0, time.Time{}
	for i, a := range ts {
		n, _ := slices.BinarySearchFunc(ts[i:], a.Add(window), time.Time.Compare)
		if n > busiest {
			busiest, at = n, a
		}
	}
	return busiest, at
}

// TestInteractiveBeforeBackground checks the reserve: Background callers
// cannot take the last slots, and when a slot frees it goes to an
// Interactive caller of another replica before the Background ones waiting
// longer.
func TestInteractiveBeforeBackground(t *testing.T) {
	t.Parallel()
	const conn = "prio"
	dsn := pgtest.Start(t)
	ctx := testContext(t)

	// Background callers cannot take the reserve (a long window: the
	// refusals come at once).
	long := replicas(t, dsn, 3, Config{Limit: 10, Window: time.Minute, MaxInFlight: time.Minute, ReserveForInteractive: 2, Prefix: "long"})
	for range 8 {
		mustAcquire(t, ctx, long[0], conn, throttle.Background)
	}
	te := wantRefused(t, long[1], conn, throttle.Background)
	if te.Paused || te.RetryAfter < refuseWithin || te.Connection != conn || te.Limit != 10 {
		t.Errorf("background refusal = %+v", te)
	}
	mustAcquire(t, ctx, long[2], conn, throttle.Interactive)
	mustAcquire(t, ctx, long[1], conn, throttle.Interactive)
	wantRefused(t, long[0], conn, throttle.Interactive)
	if st, err := long[0].Status(ctx, conn); err != nil || st.Used != 10 || st.InFlight != 10 || st.Remaining != 0 {
		t.Fatalf("Status = %+v, %v; want 10 used, all in flight", st, err)
	}

	// A short window, to see slots free.
	cfg := Config{Limit: 10, Window: time.Second, MaxInFlight: time.Minute, ReserveForInteractive: 2}
	ls := replicas(t, dsn, 3, cfg)
	a, b, c := ls[0], ls[1], ls[2]
	var held []*Grant
	for i := range 10 {
		held = append(held, mustAcquire(t, ctx, ls[i%3], conn, throttle.Interactive))
	}
	if st, err := a.Status(ctx, conn); err != nil || st.Used != 10 {
		t.Fatalf("Status = %+v, %v; want 10 used", st, err)
	}

	// The budget is full. Background callers queue on b and c, then an
	// Interactive one on c.
	waitB, waitC := queued(b, conn), queued(c, conn)
	type result struct {
		prio throttle.Priority
		g    *Grant
		err  error
	}
	results := make(chan result, 4)
	acquire := func(l *Ledger, p throttle.Priority) {
		g, err := l.Acquire(ctx, conn, p)
		results <- result{p, g, err}
	}
	go acquire(b, throttle.Background)
	go acquire(b, throttle.Background)
	go acquire(c, throttle.Background)
	waitB(t, 2)
	waitC(t, 1)
	go acquire(c, throttle.Interactive)
	waitC(t, 2)

	// One slot frees a window after its release: it goes to the
	// Interactive caller, since 9 others stay held (more than Limit-2).
	mustDone(t, ctx, held[0])
	first := <-results
	if first.err != nil || first.prio != throttle.Interactive {
		t.Fatalf("first grant after the release: %s, %v; want the interactive caller", first.prio, first.err)
	}
	if !first.g.Granted().After(held[0].Granted()) {
		t.Errorf("interactive grant at %s, before the release", first.g.Granted())
	}
	// Releasing the rest lets the Background callers in.
	mustDone(t, ctx, held[1:]...)
	mustDone(t, ctx, first.g)
	for range 3 {
		r := <-results
		if r.err != nil || r.prio != throttle.Background {
			t.Fatalf("later grant: %s, %v; want background", r.prio, r.err)
		}
		mustDone(t, ctx, r.g)
	}
}

// TestPauseBlocksOtherReplicas checks that a pause recorded by one replica
// holds every replica's grants until it ends, and is never shortened.
func TestPauseBlocksOtherReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	ls := replicas(t, dsn, 3, Config{Limit: 10, Window: time.Second})
	a, b, c := ls[0], ls[1], ls[2]
	ctx := testContext(t)

	until, err := a.PauseFor(ctx, "p", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A caller who cannot wait that long is refused, and told so; should
	// the pause be over already (a slow machine), the grant comes after it.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	g, err := c.Acquire(short, "p", throttle.Interactive)
	cancel()
	var te *throttle.ThrottledError
	switch {
	case errors.As(err, &te):
		if !te.Paused || te.RetryAfter > time.Second {
			t.Errorf("refusal during a pause: %+v; want Paused, retry within a second", te)
		}
	case errors.Is(err, context.DeadlineExceeded):
		t.Logf("the database took longer than the caller's deadline: %v", err)
	case err != nil:
		t.Fatal(err)
	case g.Granted().Before(until):
		t.Errorf("granted at %s during the pause until %s", g.Granted(), until)
	default:
		mustDone(t, ctx, g)
	}
	g = mustAcquire(t, ctx, b, "p", throttle.Background)
	if g.Granted().Before(until) {
		t.Errorf("granted at %s during the pause until %s", g.Granted(), until)
	}
	mustDone(t, ctx, g)

	// A shorter pause never shortens a longer one.
	long, err := a.PauseFor(ctx, "q", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.PauseFor(ctx, "q", time.Second); err != nil || !got.Equal(long) {
		t.Errorf("PauseFor(1s) during a 1h pause = %s, %v; want %s", got, err, long)
	}
	if err := c.PauseUntil(ctx, "q", long.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx, "q"); err != nil || !st.PausedUntil.Equal(long) || !st.ResetAt.Equal(long) {
		t.Errorf("Status = %+v, %v; want paused until %s", st, err, long)
	}
	if te := wantRefused(t, c, "q", throttle.Interactive); !te.Paused || te.RetryAfter < 59*time.Minute {
		t.Errorf("refusal = %+v; want paused for about an hour", te)
	}
}

// TestFailClosed stops (and then crashes) the database: Acquire fails with
// ErrUnavailable and grants nothing; once the database is back, grants
// resume and the slots held before the outage still count.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	srv := pgtest.StartServer(t)
	dsn := srv.NewDatabase(t)
	cfg := Config{Limit: 10, Window: time.Minute, MaxInFlight: time.Minute, OpTimeout: 3 * time.Second}
	ls := replicas(t, dsn, 2, cfg)
	a, b := ls[0], ls[1]
	ctx := testContext(t)
	const conn = "fc"

	var held []*Grant
	for i := range 10 {
		held = append(held, mustAcquire(t, ctx, ls[i%2], conn, throttle.Interactive))
	}

	for _, outage := range []struct {
		name string
		stop func() error
	}{{"stop", srv.Stop}, {"crash", srv.Kill}} {
		if err := outage.stop(); err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if g, err := l.Acquire(ctx, "other", throttle.Interactive); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s: Acquire = %v, %v; want ErrUnavailable", outage.name, g, err)
			}
			if _, err := l.Status(ctx, conn); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s: Status error %v; want ErrUnavailable", outage.name, err)
			}
			if _, err := l.PauseFor(ctx, conn, time.Second); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s: PauseFor error %v; want ErrUnavailable", outage.name, err)
			}
		}
		if err := held[0].Done(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: Done error %v; want ErrUnavailable", outage.name, err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		// Nothing was lost: the budget is still full.
		if st, err := b.Status(ctx, conn); err != nil || st.Used != 10 || st.InFlight != 10 {
			t.Fatalf("%s: Status after the outage = %+v, %v; want 10 held in flight", outage.name, st, err)
		}
		wantRefused(t, a, conn, throttle.Interactive)
		// Grants resume.
		mustDone(t, ctx, mustAcquire(t, ctx, b, "other", throttle.Interactive))
	}
	var rows int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM cosell_budget_slots`).Scan(&rows); err != nil || rows != 12 {
		t.Errorf("%d slots recorded, %v; want 12 (10 before the outages, one after each)", rows, err)
	}
	mustDone(t, ctx, held...) // the release that failed during the outage can be made again
	if st, err := a.Status(ctx, conn); err != nil || st.Used != 10 || st.InFlight != 0 {
		t.Errorf("Status after Done = %+v, %v; want 10 held, none in flight", st, err)
	}
}

// TestStatus checks the shared figures.
func TestStatus(t *testing.T) {
	t.Parallel()
	const conn = "st"
	dsn := pgtest.Start(t)
	cfg := Config{Limit: 10, Window: time.Second, MaxInFlight: time.Minute}
	ls := replicas(t, dsn, 3, cfg)
	a, b, c := ls[0], ls[1], ls[2]
	ctx := testContext(t)

	if st, err := c.Status(ctx, conn); err != nil || st.Used != 0 || st.Remaining != 10 || !st.ResetAt.Equal(st.At) || st.Limit != 10 || st.Window != time.Second {
		t.Fatalf("Status of an unused budget = %+v, %v", st, err)
	}
	var inFlight []*Grant
	for range 3 {
		inFlight = append(inFlight, mustAcquire(t, ctx, a, conn, throttle.Interactive))
	}
	var released []*Grant
	for range 2 {
		g := mustAcquire(t, ctx, b, conn, throttle.Background)
		mustDone(t, ctx, g, g) // a second Done does nothing
		released = append(released, g)
	}
	st, err := c.Status(ctx, conn)
	if err != nil || st.Used != 5 || st.Remaining != 5 || st.InFlight != 3 || !st.PausedUntil.IsZero() || !st.ResetAt.Equal(st.At) || st.Waiting != 0 {
		t.Fatalf("Status = %+v, %v; want 5 used (3 in flight), 5 remaining", st, err)
	}
	if st.At.Before(released[1].Granted()) {
		t.Errorf("Status at %s before the last grant at %s", st.At, released[1].Granted())
	}
	for range 5 {
		inFlight = append(inFlight, mustAcquire(t, ctx, c, conn, throttle.Interactive))
	}
	st, err = a.Status(ctx, conn)
	if err != nil || st.Used != 10 || st.Remaining != 0 || st.InFlight != 8 {
		t.Fatalf("Status = %+v, %v; want 10 used, 8 in flight", st, err)
	}
	// The next slot frees when the first released one leaves the window.
	if !st.ResetAt.After(st.At) || st.ResetAt.After(st.At.Add(cfg.Window)) {
		t.Errorf("ResetAt %s, not within a window after %s", st.ResetAt, st.At)
	}

	// A caller waiting here shows in Waiting.
	waitA := queued(a, conn)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := a.Acquire(wctx, conn, throttle.Background)
		done <- err
	}()
	waitA(t, 1)
	if st, err := a.Status(ctx, conn); err != nil || st.Waiting != 1 {
		t.Errorf("Status while one waits = %+v, %v; want Waiting 1", st, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Acquire = %v; want context.Canceled", err)
	}

	until, err := b.PauseFor(ctx, conn, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx, conn); err != nil || !st.PausedUntil.Equal(until) || !st.ResetAt.Equal(until) {
		t.Errorf("Status = %+v, %v; want paused until %s", st, err, until)
	}
	mustDone(t, ctx, inFlight...)
}

func TestOpenRejectsBadPrefix(t *testing.T) {
	if _, err := Open(context.Background(), nil, Config{Prefix: "Bad-Prefix"}); err == nil {
		t.Fatal("Open accepted an invalid prefix")
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		in          Config
		wantReserve int
	}{
		{Config{}, 10},
		{Config{Limit: 10}, 1},
		{Config{Limit: 5}, 1},
		{Config{Limit: 1}, 0},
		{Config{Limit: 10, ReserveForInteractive: -1}, 0},
		{Config{Limit: 10, ReserveForInteractive: 20}, 9},
	} {
		got, err := tc.in.withDefaults()
		if err != nil || got.ReserveForInteractive != tc.wantReserve {
			t.Errorf("%+v: reserve %d, %v; want %d", tc.in, got.ReserveForInteractive, err, tc.wantReserve)
		}
	}
}

// BenchmarkAcquire measures the latency of Acquire (and the cost of Done)
// from three replicas sharing one connection's budget, with a limit that
// never blocks, for one caller at a time and for eight at once. The window
// is short so that about as many slots are held as under a real budget
// (some tens), not thousands.
func BenchmarkAcquire(b *testing.B) {
	dsn := pgtest.Start(b)
	ls := replicas(b, dsn, 3, Config{Limit: 1 << 30, Window: 50 * time.Millisecond, MaxInFlight: time.Second})
	ctx := context.Background()
	for _, callers := range []int{1, 8} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			var (
				next atomic.Int64
				lat  = make([][]time.Duration, callers)
				wg   sync.WaitGroup
			)
			b.ResetTimer()
			for i := range callers {
				wg.Go(func() {
					l := ls[i%len(ls)]
					for next.Add(1) <= int64(b.N) {
						start := time.Now()
						g, err := l.Acquire(ctx, "bench", throttle.Interactive)
						if err != nil {
							b.Error(err)
							return
						}
						lat[i] = append(lat[i], time.Since(start))
						if err := g.Done(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			all := slices.Concat(lat...)
			if len(all) == 0 {
				return
			}
			slices.Sort(all)
			q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
			b.ReportMetric(q(0.50), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
		})
	}
}
