package throttle

import (
	"container/list"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// Defaults of the bounds on caller-owned budgets.
const (
	// DefaultMaxConnections is how many caller-owned budgets a Registry
	// holds at most.
	DefaultMaxConnections = 1000
	// DefaultIdleTTL is how long a caller-owned budget may stay unused
	// before the Registry drops it.
	DefaultIdleTTL = 10 * time.Minute
)

// RegistryOption bounds the caller-owned budgets of a Registry.
type RegistryOption func(*Registry)

// WithMaxConnections caps the caller-owned budgets a Registry holds
// (DefaultMaxConnections when n <= 0).
func WithMaxConnections(n int) RegistryOption {
	return func(r *Registry) {
		if n > 0 {
			r.max = n
		}
	}
}

// WithIdleTTL makes a Registry drop a caller-owned budget that has had no
// use and no grant for d (DefaultIdleTTL when d <= 0). The TTL is never
// shorter than twice the window.
func WithIdleTTL(d time.Duration) RegistryOption {
	return func(r *Registry) {
		if d > 0 {
			r.ttl = d
		}
	}
}

// CallerConnection reports whether a connection name belongs to a caller's
// own credential ("pipedrive:1a2b3c4d5e6f"), and its connector. The
// server's own connections are bare connector names ("pipedrive").
func CallerConnection(name string) (connector string, ok bool) {
	connector, _, ok = strings.Cut(name, ":")
	return connector, ok
}

// ErrTooManyConnections is what errors.Is finds in the error Registry.Get
// returns when every caller-owned budget is in use.
var ErrTooManyConnections = errors.New("too many caller connections")

// ConnectionsFullError refuses a new caller connection: the Registry holds
// its maximum of caller-owned budgets and none of them may be dropped yet.
type ConnectionsFullError struct {
	// Max is the Registry's cap on caller-owned budgets.
	Max int
	// RetryAfter is when one of them is expected to become droppable.
	RetryAfter time.Duration
}

// Error returns a message such as "too many caller connections: all 1000
// are in use; retry after 42s". It names no connection.
func (e *ConnectionsFullError) Error() string {
	return fmt.Sprintf("%v: all %d are in use; retry after %ds", ErrTooManyConnections, e.Max, e.RetryAfterSeconds())
}

// Is makes errors.Is(err, ErrTooManyConnections) true.
func (e *ConnectionsFullError) Is(target error) bool { return target == ErrTooManyConnections }

// RetryAfterSeconds returns RetryAfter in whole seconds, at least 1.
func (e *ConnectionsFullError) RetryAfterSeconds() int { return max(1, Seconds(e.RetryAfter)) }

// Registry holds one Budget per connection, all made with the same Config.
// It is safe for concurrent use.
//
// The server's own connections (names without ":") are kept for the life of
// the Registry. Caller-owned ones (CallerConnection) are bounded: one that
// has had no use and no grant for the idle TTL is dropped, and when the
// Registry holds its maximum a new one takes the place of the least
// recently used droppable one, or is refused (Get). A budget is droppable
// only when nobody waits on it, no upstream pause is in effect and no grant
// was made for twice its window — so it holds no grant that counts against
// the limit, even for a request granted late and still in flight. A fresh
// budget for the same credential therefore cannot exceed the limit.
//
// A dropped budget that something still references (an upstream client
// that captured it) is handed out again instead of a fresh one, so a
// connection never has two live budgets. Eviction happens on access (Get,
// Budget, Lookup, Statuses, Stats); there is no background goroutine.
type Registry struct {
	cfg   Config
	clock clock.Clock
	max   int
	ttl   time.Duration
	hold  time.Duration // how long a budget must be quiet before it is dropped

	mu        sync.Mutex
	own       map[string]*Budget
	callers   map[string]*entry
	lru       list.List // of *entry holding their budget; front = most recently used
	fullUntil time.Time // no caller budget is droppable before this (set by a refusal)
	evicted   uint64
	refused   uint64
	overflows uint64
}

// entry is a caller-owned connection. While held, b is its budget and elem
// its place in the LRU list; once dropped, b is nil and w finds the budget
// for as long as something else still references it.
type entry struct {
	name string
	b    *Budget
	w    weak.Pointer[Budget]
	used time.Time
	elem *list.Element
}

// NewRegistry returns an empty registry whose budgets use cfg; cfg.Clock
// also tells how long a caller-owned budget has been idle.
func NewRegistry(cfg Config, opts ...RegistryOption) *Registry {
	cfg = cfg.withDefaults()
	r := &Registry{cfg: cfg, clock: cfg.Clock, max: DefaultMaxConnections, ttl: DefaultIdleTTL,
		hold: 2 * cfg.Window, own: map[string]*Budget{}, callers: map[string]*entry{}}
	for _, o := range opts {
		o(r)
	}
	r.ttl = max(r.ttl, r.hold)
	return r
}

// Get returns the budget of the named connection, creating it on first use.
// A new caller-owned connection is refused with a *ConnectionsFullError
// (errors.Is ErrTooManyConnections) when the Registry holds its maximum and
// none of them may be dropped yet. The server's own connections are never
// refused.
func (r *Registry) Get(connection string) (*Budget, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, caller := CallerConnection(connection); !caller {
		return r.ownLocked(connection), nil
	}
	now := r.clock.Now()
	r.sweepLocked(now)
	if b := r.reuseLocked(connection, now); b != nil {
		return b, nil
	}
	if !r.makeRoomLocked(now) {
		r.refused++
		return nil, &ConnectionsFullError{Max: r.max, RetryAfter: r.fullUntil.Sub(now)}
	}
	return r.createLocked(connection, now), nil
}

// Budget returns the budget of the named connection, creating it on first
// use. Unlike Get it never refuses: a new caller-owned connection arriving
// when the Registry is full is held beyond the maximum (until it is idle).
// Code that spends for a caller's own credential should use Get.
func (r *Registry) Budget(connection string) *Budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, caller := CallerConnection(connection); !caller {
		return r.ownLocked(connection)
	}
	now := r.clock.Now()
	r.sweepLocked(now)
	if b := r.reuseLocked(connection, now); b != nil {
		return b
	}
	if !r.makeRoomLocked(now) {
		r.overflows++
	}
	return r.createLocked(connection, now)
}

// Lookup returns the budget of the named connection if it has one, without
// creating it or counting as a use: for reporting a status, never for
// spending.
func (r *Registry) Lookup(connection string) *Budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, caller := CallerConnection(connection); !caller {
		return r.own[connection]
	}
	r.sweepLocked(r.clock.Now())
	if e, ok := r.callers[connection]; ok {
		if e.b != nil {
			return e.b
		}
		return e.w.Value()
	}
	return nil
}

// Status returns the status of the named connection's budget, or that of a
// fresh budget if it has none — without creating one.
func (r *Registry) Status(connection string) Status {
	if b := r.Lookup(connection); b != nil {
		return b.Status()
	}
	now := r.clock.Now()
	return Status{Connection: connection, Limit: r.cfg.Limit, Window: r.cfg.Window, Remaining: r.cfg.Limit, ResetAt: now, At: now}
}

// RegistryStats counts the budgets of a Registry.
type RegistryStats struct {
	// Own is the number of the server's own connections.
	Own int
	// Callers is the number of caller-owned budgets held.
	Callers int
	// Max is the cap on Callers (exceeded only by Budget, see Overflows).
	Max int
	// Evicted counts caller-owned budgets dropped as idle or to make room.
	Evicted uint64
	// Refused counts new caller connections Get refused because it was full.
	Refused uint64
	// Overflows counts caller budgets Budget created beyond the cap.
	Overflows uint64
}

// Stats returns the Registry's counts, after dropping idle budgets.
func (r *Registry) Stats() RegistryStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(r.clock.Now())
	return RegistryStats{Own: len(r.own), Callers: r.lru.Len(), Max: r.max,
		Evicted: r.evicted, Refused: r.refused, Overflows: r.overflows}
}

// Statuses returns a snapshot of every budget held, sorted by connection
// name, after dropping idle ones.
func (r *Registry) Statuses() []Status {
	r.mu.Lock()
	r.sweepLocked(r.clock.Now())
	budgets := make([]*Budget, 0, len(r.own)+r.lru.Len())
	for _, b := range r.own {
		budgets = append(budgets, b)
	}
	for el := r.lru.Front(); el != nil; el = el.Next() {
		budgets = append(budgets, el.Value.(*entry).b)
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(budgets))
	for _, b := range budgets {
		out = append(out, b.Status())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Connection, b.Connection) })
	return out
}

func (r *Registry) ownLocked(connection string) *Budget {
	b, ok := r.own[connection]
	if !ok {
		b = New(connection, r.cfg)
		r.own[connection] = b
	}
	return b
}

// reuseLocked returns the connection's budget if it has one — held, or
// dropped but still referenced elsewhere (then held again, even beyond the
// cap: it exists anyway, and whoever spends from it must find it here).
func (r *Registry) reuseLocked(connection string, now time.Time) *Budget {
	e, ok := r.callers[connection]
	if !ok {
		return nil
	}
	if e.b != nil {
		e.used = now
		r.lru.MoveToFront(e.elem)
		return e.b
	}
	b := e.w.Value()
	if b == nil {
		return nil // collected; its cleanup has yet to run
	}
	r.makeRoomLocked(now)
	e.b, e.used = b, now
	e.elem = r.lru.PushFront(e)
	return b
}

func (r *Registry) createLocked(connection string, now time.Time) *Budget {
	b := New(connection, r.cfg)
	e := &entry{name: connection, b: b, w: weak.Make(b), used: now}
	e.elem = r.lru.PushFront(e)
	r.callers[connection] = e
	runtime.AddCleanup(b, r.forget, forgetKey{name: connection, w: e.w})
	return b
}

// forgetKey names a dropped budget whose memory has been reclaimed.
type forgetKey struct {
	name string
	w    weak.Pointer[Budget]
}

// forget removes the entry of a dropped budget once it has been collected
// (run by the runtime after the garbage collector reclaimed it).
func (r *Registry) forget(k forgetKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.callers[k.name]; ok && e.b == nil && e.w == k.w {
		delete(r.callers, k.name)
	}
}

// droppable reports whether a held budget may be dropped at now, having
// been quiet for at least quiet.
func droppable(e *entry, now time.Time, quiet time.Duration) (bool, activity) {
	a := e.b.activity()
	return !a.busy(now) && a.quietFor(now, quiet), a
}

func (r *Registry) dropLocked(e *entry) {
	r.lru.Remove(e.elem)
	e.elem, e.b = nil, nil
	r.evicted++
	r.fullUntil = time.Time{}
}

// sweepLocked drops the budgets unused for the idle TTL that have had no
// grant for as long either. One that is still busy counts as used now.
func (r *Registry) sweepLocked(now time.Time) {
	for el := r.lru.Back(); el != nil; el = r.lru.Back() {
		e := el.Value.(*entry)
		if now.Sub(e.used) < r.ttl {
			return
		}
		if ok, _ := droppable(e, now, r.ttl); ok {
			r.dropLocked(e)
			continue
		}
		e.used = now
		r.lru.MoveToFront(el)
	}
}

// makeRoomLocked makes sure a caller budget may be added: below the cap, or
// after dropping the least recently used droppable one. When none is, it
// records in fullUntil when one is expected to be and reports false; until
// then it refuses at once rather than scanning again.
func (r *Registry) makeRoomLocked(now time.Time) bool {
	if r.lru.Len() < r.max {
		return true
	}
	if now.Before(r.fullUntil) {
		return false
	}
	next := time.Time{}
	for range r.lru.Len() {
		el := r.lru.Back()
		e := el.Value.(*entry)
		ok, a := droppable(e, now, r.hold)
		if ok {
			r.dropLocked(e)
			return true
		}
		if t := a.droppableAt(now, r.hold); next.IsZero() || t.Before(next) {
			next = t
		}
		e.used = now // busy or recently granted: in use, whatever its last hand-out
		r.lru.MoveToFront(el)
	}
	r.fullUntil = next
	return false
}
