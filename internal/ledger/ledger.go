// Package ledger keeps the throttle budget of every connection in
// PostgreSQL, so that the replicas of a cluster share one budget per
// connection: across all of them, at most Limit requests per rolling Window
// reach the upstream.
//
// The rules are those of throttle.Budget, on the database. The upstream
// counts a request when it arrives, somewhere between its grant and its
// response, so a slot is held from its grant until its response has
// returned plus Window (Grant.Done); while the request is in flight, until
// grant + MaxInFlight + Window, MaxInFlight being the client's timeout
// (which also frees the slots of a replica that died). A grant happens only
// while fewer than Limit slots are held; then no rolling window at the
// upstream sees more than Limit arrivals: of any Limit+1 arrivals in one
// window, each of the others was still held when the last of them was
// granted. Every time is read from the database's clock (clock_timestamp()),
// never a replica's.
//
// One row per held slot: an attempt takes a transaction-scoped advisory lock
// on the connection, forgets the slots that are no longer held, counts the
// rest and inserts a slot if there is room (and no pause). Otherwise it
// learns the earliest time a slot could be free, and the caller waits until
// then (a timer, bounded by its context) and tries again. That time is never
// later than the truth: a slot still in flight counts as if released at
// once, so a release can only confirm or postpone it, and no notification
// is needed. Within one Ledger, the callers that wait for a connection
// queue, Interactive before Background, first come first served; only the
// head of the queue asks the database. Across replicas, Interactive callers
// come first by a reserve: a Background caller is granted a slot only while
// fewer than Limit-ReserveForInteractive are held.
//
// Fail closed: when the database cannot be reached, Acquire returns an error
// wrapping ErrUnavailable (within Config.OpTimeout) and grants nothing.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cosell-mcp/cosell-mcp/internal/pgop"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Defaults applied by Open for zero Config fields.
const (
	DefaultLimit       = throttle.DefaultLimit
	DefaultWindow      = throttle.DefaultWindow
	DefaultMaxInFlight = 60 * time.Second
	DefaultPrefix      = "cosell_budget"
	DefaultOpTimeout   = 5 * time.Second
)

// ErrUnavailable is wrapped by the errors returned when the database cannot
// be reached or fails: no slot is granted then.
var ErrUnavailable = errors.New("budget ledger unavailable")

// Config sets up a Ledger. Zero fields take the defaults. Every replica must
// use the same Limit, Window, MaxInFlight and Prefix.
type Config struct {
	// Limit is the number of requests allowed in any Window, per connection
	// (default 100).
	Limit int
	// Window is the length of the rolling window (default 60s).
	Window time.Duration
	// MaxInFlight is the longest a request can be in flight: the upstream
	// client's timeout (default 60s). A slot not released by Grant.Done is
	// held until its grant + MaxInFlight + Window.
	MaxInFlight time.Duration
	// ReserveForInteractive is the number of slots Background callers may
	// not take (default Limit/10 rounded up; negative: none). It is at most
	// Limit-1.
	ReserveForInteractive int
	// Prefix starts the names of the ledger's tables (default
	// "cosell_budget"): lower-case letters, digits and '_', at most 40.
	Prefix string
	// OpTimeout bounds each exchange with the database, retries on a broken
	// connection included (default 5s): an unreachable database makes
	// Acquire fail within about this long.
	OpTimeout time.Duration
}

var prefixRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

func (c Config) withDefaults() (Config, error) {
	if c.Limit <= 0 {
		c.Limit = DefaultLimit
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	switch {
	case c.ReserveForInteractive == 0:
		c.ReserveForInteractive = (c.Limit + 9) / 10
	case c.ReserveForInteractive < 0:
		c.ReserveForInteractive = 0
	}
	c.ReserveForInteractive = min(c.ReserveForInteractive, c.Limit-1)
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(c.Prefix) {
		return c, fmt.Errorf("ledger: invalid table prefix %q", c.Prefix)
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	return c, nil
}

// Ledger is the shared budget of every connection, seen from one replica.
// It is safe for concurrent use.
type Ledger struct {
	pool *pgxpool.Pool
	cfg  Config
	sql  statements

	mu    sync.Mutex
	lanes map[string]*lane // connections with waiting callers

	queueHook func(connection string, waiting int) // tests: observes queue lengths, called with mu held
}

// lane is the queue of one connection's waiting callers in this Ledger.
type lane struct {
	queues [2][]*waiter // by priority
}

type waiter struct {
	prio throttle.Priority
	kick chan struct{} // told when it becomes the head
}

func (ln *lane) head() *waiter {
	for _, q := range ln.queues {
		if len(q) > 0 {
			return q[0]
		}
	}
	return nil
}

func (ln *lane) len() int { return len(ln.queues[0]) + len(ln.queues[1]) }

// Open creates the ledger's tables if they do not exist yet and returns the
// Ledger. The pool stays the caller's; the Ledger holds no other resource.
func Open(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Ledger, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Ledger{pool: pool, cfg: cfg, sql: newStatements(cfg.Prefix), lanes: map[string]*lane{}}
	// Replicas starting together must not create the same table at once.
	if err := unavailable(ctx, pgop.Migrate(ctx, pool, cfg.OpTimeout, cfg.Prefix, l.sql.migrate...)); err != nil {
		return nil, fmt.Errorf("ledger: migrate: %w", err)
	}
	return l, nil
}

// Config returns the ledger's configuration with defaults applied.
func (l *Ledger) Config() Config { return l.cfg }

// capFor returns how many slots may be held for a grant to a caller of
// priority p.
func (l *Ledger) capFor(p throttle.Priority) int {
	if p == throttle.Background {
		return l.cfg.Limit - l.cfg.ReserveForInteractive
	}
	return l.cfg.Limit
}

// Grant is one slot granted by Acquire. It is held until Done, and then for
// one Window; if Done is never called (or fails), until Granted +
// MaxInFlight + Window.
type Grant struct {
	l          *Ledger
	id         int64
	connection string
	granted    time.Time

	mu   sync.Mutex
	done bool
}

// Granted returns the time of the grant, on the database's clock.
func (g *Grant) Granted() time.Time { return g.granted }

// Connection returns the connection the slot was granted for.
func (g *Grant) Connection() string { return g.connection }

// Done releases the slot: the request's response has returned (its headers
// suffice) or the request has failed, so it has arrived upstream by now if
// it ever will. The slot stays held for one Window from now on the
// database's clock (never less than one Window from its grant). Calls after
// the first success do nothing. On error (wrapping ErrUnavailable) the slot
// stays held until Granted + MaxInFlight + Window, and Done may be called
// again. The context should outlive the request's own (for instance
// context.WithoutCancel of it): a release that does not happen costs budget.
func (g *Grant) Done(ctx context.Context) error { return g.DoneAfter(ctx, 0) }

// DoneAfter is Done for a request that may still arrive within hold (a
// failed round trip whose bytes may be in the network): the slot stays held
// for hold plus one Window from now.
func (g *Grant) DoneAfter(ctx context.Context, hold time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil
	}
	l := g.l
	err := l.run(ctx, func(ctx context.Context) error {
		_, err := l.pool.Exec(ctx, l.sql.release, g.id, g.connection, g.granted, (l.cfg.Window + max(hold, 0)).Microseconds())
		return err
	})
	if err != nil {
		return err
	}
	g.done = true
	return nil
}

// attempt is the outcome of one try for a slot.
type attempt struct {
	now     time.Time // the database's clock at the attempt
	grant   *Grant    // nil: refused
	used    int       // slots held before the attempt, counted up to the grant's cap
	paused  time.Time // end of a pause in effect; zero if none
	retryAt time.Time // refused: the earliest the next try may succeed
}

// Acquire grants one slot of the connection's budget to a caller of
// priority p, waiting for as long as it takes, and returns it once the
// request may be sent. The caller must call Done on the grant when the
// response has returned or the request has failed.
//
// When the caller's turn is known to come after the context's deadline,
// Acquire returns a *throttle.ThrottledError at once, saying when to retry;
// when the deadline passes while waiting, the same joined with
// context.DeadlineExceeded. A cancelled context (or one whose deadline
// passes during an exchange with the database) returns its error. If the
// database cannot be reached, Acquire returns an error wrapping
// ErrUnavailable and nothing is granted.
func (l *Ledger) Acquire(ctx context.Context, connection string, p throttle.Priority) (*Grant, error) {
	if p != throttle.Background {
		p = throttle.Interactive
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Nobody of the same or a higher priority waits here: try at once.
	var last *attempt
	l.mu.Lock()
	ln := l.lanes[connection]
	blocked := ln != nil && (len(ln.queues[throttle.Interactive]) > 0 || p == throttle.Background && ln.len() > 0)
	l.mu.Unlock()
	if !blocked {
		a, err := l.try(ctx, connection, p)
		if err != nil {
			return nil, err
		}
		if a.grant != nil {
			return a.grant, nil
		}
		last = a
	}

	w := &waiter{prio: p, kick: make(chan struct{}, 1)}
	l.enqueue(connection, w)
	defer l.dequeue(connection, w)
	fresh := last != nil // a refusal just now: no need to ask again before waiting
	for {
		if !l.isHead(connection, w) {
			fresh = false
			select {
			case <-w.kick:
				continue
			case <-ctx.Done():
				return nil, l.waitError(ctx, connection, last)
			}
		}
		if !fresh {
			a, err := l.try(ctx, connection, p)
			if err != nil {
				return nil, err
			}
			if a.grant != nil {
				return a.grant, nil
			}
			last = a
		}
		fresh = false
		wait := max(last.retryAt.Sub(last.now), time.Millisecond) // never spin
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, l.throttled(connection, last)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-w.kick: // became head again after being passed by an Interactive caller
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return nil, l.waitError(ctx, connection, last)
		}
	}
}

func (l *Ledger) enqueue(connection string, w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.lanes[connection]
	if ln == nil {
		ln = &lane{}
		l.lanes[connection] = ln
	}
	ln.queues[w.prio] = append(ln.queues[w.prio], w)
	if l.queueHook != nil {
		l.queueHook(connection, ln.len())
	}
}

// dequeue removes w and tells the new head, if the head changed.
func (l *Ledger) dequeue(connection string, w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.lanes[connection]
	if ln == nil {
		return
	}
	before := ln.head()
	q := ln.queues[w.prio]
	for i, x := range q {
		if x == w {
			ln.queues[w.prio] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	n := ln.len()
	if n == 0 {
		delete(l.lanes, connection)
	} else if h := ln.head(); h != before {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
	if l.queueHook != nil {
		l.queueHook(connection, n)
	}
}

func (l *Ledger) isHead(connection string, w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.lanes[connection]
	return ln != nil && ln.head() == w
}

func (l *Ledger) throttled(connection string, a *attempt) *throttle.ThrottledError {
	te := &throttle.ThrottledError{Connection: connection, Limit: l.cfg.Limit, Window: l.cfg.Window}
	if a != nil {
		te.RetryAfter = max(a.retryAt.Sub(a.now), 0)
		te.Paused = a.paused.After(a.now)
	}
	return te
}

// waitError is the error of a caller whose context ended while it waited.
func (l *Ledger) waitError(ctx context.Context, connection string, last *attempt) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", l.throttled(connection, last), err)
	}
	return err
}

// try makes one attempt at a slot.
func (l *Ledger) try(ctx context.Context, connection string, p throttle.Priority) (*attempt, error) {
	limit := l.capFor(p)
	var a *attempt
	err := l.run(ctx, func(ctx context.Context) error {
		a = &attempt{}
		b := &pgx.Batch{}
		// A batch is one implicit transaction: the lock is held until its end.
		b.Queue(l.sql.lock, l.cfg.Prefix, connection)
		b.Queue(l.sql.expire, connection)
		b.Queue(l.sql.acquire, connection, limit, l.cfg.Window.Microseconds(), (l.cfg.MaxInFlight + l.cfg.Window).Microseconds())
		br := l.pool.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		var (
			id       *int64
			paused   *time.Time
			nextFree *time.Time
		)
		if err := br.QueryRow().Scan(&a.now, &id, &a.used, &paused, &nextFree); err != nil {
			br.Close()
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		if id != nil {
			a.grant = &Grant{l: l, id: *id, connection: connection, granted: a.now}
			return nil
		}
		a.retryAt = a.now
		if paused != nil {
			a.paused = *paused
			a.retryAt = *paused
		}
		if a.used >= limit && nextFree != nil && nextFree.After(a.retryAt) {
			a.retryAt = *nextFree
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// run runs op with pgop.Do's time limit and retries, and maps a failure
// to ErrUnavailable (or to ctx's error when ctx ended). A grant committed
// whose answer was lost (and then made again) only over-counts: its slot
// is held until its grant + MaxInFlight + Window.
func (l *Ledger) run(ctx context.Context, op func(context.Context) error) error {
	return unavailable(ctx, pgop.Do(ctx, l.cfg.OpTimeout, op))
}

// unavailable maps a failure to ErrUnavailable, or to ctx's error when ctx
// ended.
func unavailable(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// PauseUntil makes every replica grant no slot of the connection before
// until, as asked by the upstream (HTTP 429, Retry-After). It extends a
// pause in effect but never shortens it. The caller bounds until.
func (l *Ledger) PauseUntil(ctx context.Context, connection string, until time.Time) error {
	if until.IsZero() {
		return nil
	}
	return l.run(ctx, func(ctx context.Context) error {
		_, err := l.pool.Exec(ctx, l.sql.pauseUntil, connection, until)
		return err
	})
}

// PauseFor is PauseUntil of the database's now + d. It returns the end of
// the pause in effect afterwards (which may be later, from an earlier
// pause).
func (l *Ledger) PauseFor(ctx context.Context, connection string, d time.Duration) (time.Time, error) {
	var until time.Time
	err := l.run(ctx, func(ctx context.Context) error {
		return l.pool.QueryRow(ctx, l.sql.pauseFor, connection, max(d, 0).Microseconds()).Scan(&until)
	})
	return until, err
}

// Status returns the shared figures of the connection's budget, as of the
// database's clock (Status.At): Used counts the slots held by every
// replica, InFlight those not released yet; ResetAt is the earliest an
// Interactive caller could be granted a slot; Waiting counts the callers
// waiting in this Ledger only.
func (l *Ledger) Status(ctx context.Context, connection string) (throttle.Status, error) {
	var (
		st       = throttle.Status{Connection: connection, Limit: l.cfg.Limit, Window: l.cfg.Window}
		paused   *time.Time
		nextFree *time.Time
	)
	err := l.run(ctx, func(ctx context.Context) error {
		return l.pool.QueryRow(ctx, l.sql.status, connection, l.cfg.Limit, l.cfg.Window.Microseconds()).
			Scan(&st.At, &st.Used, &st.InFlight, &paused, &nextFree)
	})
	if err != nil {
		return throttle.Status{}, err
	}
	st.Remaining = max(l.cfg.Limit-st.Used, 0)
	st.ResetAt = st.At
	if paused != nil {
		st.PausedUntil = *paused
		st.ResetAt = *paused
	}
	if st.Used >= l.cfg.Limit && nextFree != nil && nextFree.After(st.ResetAt) {
		st.ResetAt = *nextFree
	}
	l.mu.Lock()
	if ln := l.lanes[connection]; ln != nil {
		st.Waiting = ln.len()
	}
	l.mu.Unlock()
	return st, nil
}

// statements holds the ledger's SQL with its table names.
type statements struct {
	migrate                        []string
	lock, expire, acquire, release string
	pauseUntil, pauseFor, status   string
}

// nowCTE binds n.now (the database's clock) and pause (a pause in effect).
// $1 is the connection.
const nowCTE = `WITH n AS MATERIALIZED (SELECT clock_timestamp() AS now),
pause AS MATERIALIZED (
	SELECT max(p.until) AS until FROM {pauses} p, n WHERE p.connection = $1 AND p.until > n.now)`

// heldSQL selects the connection's slots held at n.now.
const heldSQL = `SELECT s.held_until, s.done_at FROM {slots} s WHERE s.connection = $1 AND s.held_until > n.now`

// nextFreeSQL is the earliest time fewer than $2 slots could be held, when
// $2 or more are held at n.now: a slot in flight is taken as released now
// (held one window from now, or less if its in-flight time runs out
// first). $3 is the window in microseconds.
const nextFreeSQL = `(SELECT f.free FROM (
		SELECT CASE WHEN h.done_at IS NULL
			THEN least(h.held_until, n.now + $3::bigint * interval '1 microsecond')
			ELSE h.held_until END AS free
		FROM (` + heldSQL + `) h) f
	ORDER BY f.free OFFSET greatest((SELECT count(*) FROM (` + heldSQL + `) c) - $2::int, 0) LIMIT 1)`

func newStatements(prefix string) statements {
	r := strings.NewReplacer("{slots}", prefix+"_slots", "{pauses}", prefix+"_pauses", "{prefix}", prefix)
	return statements{
		migrate: []string{
			r.Replace(`CREATE TABLE IF NOT EXISTS {slots} (
	id bigserial PRIMARY KEY,
	connection text NOT NULL,
	granted_at timestamptz NOT NULL,
	held_until timestamptz NOT NULL,
	done_at timestamptz
)`),
			r.Replace(`CREATE INDEX IF NOT EXISTS {prefix}_slots_held ON {slots} (connection, held_until)`),
			r.Replace(`CREATE TABLE IF NOT EXISTS {pauses} (
	connection text PRIMARY KEY,
	until timestamptz NOT NULL
)`),
		},
		lock:   `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`,
		expire: r.Replace(`DELETE FROM {slots} WHERE connection = $1 AND held_until <= clock_timestamp()`),
		// $2: the most slots that may be held for a grant; $4: MaxInFlight +
		// Window in microseconds. The slots held are counted up to $2 only,
		// and when to try again is worked out only on a refusal.
		acquire: r.Replace(nowCTE + `,
used AS MATERIALIZED (
	SELECT count(*)::int AS c FROM (SELECT 1 FROM {slots} s, n
		WHERE s.connection = $1 AND s.held_until > n.now LIMIT $2::int) x),
ins AS (
	INSERT INTO {slots} (connection, granted_at, held_until)
	SELECT $1, n.now, n.now + $4::bigint * interval '1 microsecond' FROM n, used, pause
	WHERE used.c < $2::int AND pause.until IS NULL
	RETURNING id)
SELECT n.now, ins.id, used.c, pause.until,
	CASE WHEN ins.id IS NULL AND used.c >= $2::int THEN ` + nextFreeSQL + ` END
FROM n CROSS JOIN used CROSS JOIN pause LEFT JOIN ins ON true`),
		// A slot forgotten meanwhile (held past MaxInFlight) is recorded again.
		release: r.Replace(`INSERT INTO {slots} (id, connection, granted_at, held_until, done_at)
VALUES ($1, $2, $3, greatest($3, clock_timestamp()) + $4::bigint * interval '1 microsecond', clock_timestamp())
ON CONFLICT (id) DO UPDATE SET held_until = EXCLUDED.held_until, done_at = EXCLUDED.done_at`),
		pauseUntil: r.Replace(`INSERT INTO {pauses} AS p (connection, until) VALUES ($1, $2)
ON CONFLICT (connection) DO UPDATE SET until = greatest(p.until, EXCLUDED.until)`),
		pauseFor: r.Replace(`INSERT INTO {pauses} AS p (connection, until)
VALUES ($1, clock_timestamp() + $2::bigint * interval '1 microsecond')
ON CONFLICT (connection) DO UPDATE SET until = greatest(p.until, EXCLUDED.until)
RETURNING until`),
		status: r.Replace(nowCTE + `,
held AS MATERIALIZED (
	SELECT s.held_until, s.done_at FROM {slots} s, n WHERE s.connection = $1 AND s.held_until > n.now)
SELECT n.now, (SELECT count(*) FROM held)::int, (SELECT count(*) FROM held WHERE done_at IS NULL)::int,
	pause.until, CASE WHEN (SELECT count(*) FROM held) >= $2::int THEN ` + nextFreeSQL + ` END
FROM n CROSS JOIN pause`),
	}
}
