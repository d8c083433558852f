package sandbox

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// BudgetLimit is a rolling-window request limit per credential: at most
// Limit requests in any Window. The zero value enforces nothing.
type BudgetLimit struct {
	Limit  int
	Window time.Duration
}

func (l BudgetLimit) on() bool { return l.Limit > 0 && l.Window > 0 }

// Bounds of the arrival log.
const (
	// maxArrivals is how many arrivals are kept per credential (the most
	// recent ones; more while EnforceBudget needs them).
	maxArrivals = 1 << 16
	// maxCredentials is how many credentials the log keeps before it
	// forgets the quiet ones.
	maxCredentials = 1024
	// arrivalMemory is how long a quiet credential is remembered past its
	// last arrival when the log has to forget some.
	arrivalMemory = 10 * time.Minute
)

// arrivals is the sandbox's record of when each request arrived, per
// credential, and the gateway limit it enforces with it.
//
// It stands where the upstream counts: Power Platform's gateway counts the
// calls of a connection (its credential) as they arrive, before the
// connector's backend (here, Pipedrive's own burst limit and
// authentication) sees them. So every request that reaches ServeHTTP is
// recorded first, by the sandbox's clock, whatever it presents and however
// it ends; and with EnforceBudget, a request past the limit is answered 429
// before anything else looks at it — a bad token is counted and refused the
// same way. Refused requests count too: the gateway counted them (as our
// throttle budget spends a slot on every request that leaves).
type arrivals struct {
	enforce BudgetLimit

	mu      sync.Mutex
	times   map[string][]time.Time // per credential, ascending
	refused map[string]int         // gateway 429s per credential
}

func newArrivals(enforce BudgetLimit) *arrivals {
	return &arrivals{enforce: enforce, times: map[string][]time.Time{}, refused: map[string]int{}}
}

// gatewayRefusal is the gateway's 429: its Retry-After in whole seconds.
type gatewayRefusal struct{ retryAfter int }

// arrive records a request that has just arrived, at now, and returns the
// gateway's refusal if EnforceBudget is exceeded, nil otherwise.
func (a *arrivals) arrive(credential string, now time.Time) *gatewayRefusal {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.times) > maxCredentials {
		a.forgetLocked(now)
	}
	ts := a.times[credential]
	i := len(ts)
	for i > 0 && ts[i-1].After(now) { // a clock set back: keep the log ascending
		i--
	}
	ts = slices.Insert(ts, i, now)
	keep := maxArrivals
	if a.enforce.on() {
		keep = max(keep, a.enforce.Limit+1)
	}
	if len(ts) >= 2*keep {
		ts = append(ts[:0], ts[len(ts)-keep:]...)
	}
	a.times[credential] = ts
	if !a.enforce.on() {
		return nil
	}
	// The arrivals in (now-Window, now], this one included.
	in := len(ts) - firstAfter(ts, now.Add(-a.enforce.Window))
	if in <= a.enforce.Limit {
		return nil
	}
	a.refused[credential]++
	// The next request is admitted once no more than Limit-1 earlier
	// arrivals are in its window: when the Limit-th latest leaves it.
	free := ts[len(ts)-a.enforce.Limit].Add(a.enforce.Window)
	return &gatewayRefusal{retryAfter: max(1, int(math.Ceil(free.Sub(now).Seconds())))}
}

// forgetLocked drops the credentials with no arrival in arrivalMemory (or
// in the enforced window, if longer).
func (a *arrivals) forgetLocked(now time.Time) {
	cut := now.Add(-max(arrivalMemory, a.enforce.Window))
	for k, ts := range a.times {
		if len(ts) == 0 || !ts[len(ts)-1].After(cut) {
			delete(a.times, k)
			delete(a.refused, k)
		}
	}
}

// firstAfter returns the index of the first time after t in ascending ts.
func firstAfter(ts []time.Time, t time.Time) int {
	i, _ := slices.BinarySearchFunc(ts, t, func(x, t time.Time) int {
		if x.After(t) {
			return 1
		}
		return -1
	})
	return i
}

// write answers the request as Power Platform's gateway does when a
// connection is over its limit.
func (r *gatewayRefusal) write(w http.ResponseWriter) {
	body := fmt.Sprintf(`{"statusCode":429,"message":"Rate limit is exceeded. Try again in %d seconds."}`, r.retryAfter)
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(r.retryAfter))
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(body))
}

// credentialOf is the credential a request presents: its API token, from the
// x-api-token header or the api_token query parameter (possibly empty).
func credentialOf(r *http.Request) string {
	if t := r.Header.Get("x-api-token"); t != "" {
		return t
	}
	return r.URL.Query().Get("api_token")
}

// Arrivals returns the times, by the sandbox's clock, at which requests
// presenting token arrived, oldest first: every request, whatever its
// outcome (the most recent 65536 of them).
func (s *Server) Arrivals(token string) []time.Time {
	s.arrivals.mu.Lock()
	defer s.arrivals.mu.Unlock()
	return slices.Clone(s.arrivals.times[token])
}

// MaxInWindow returns the most requests presenting token that arrived in any
// one rolling window (T-window, T] — what an upstream limiting the
// credential to N per window would have to admit, to be compared with N.
func (s *Server) MaxInWindow(token string, window time.Duration) int {
	ts := s.Arrivals(token)
	most, i := 0, 0
	for j := range ts {
		for ts[j].Sub(ts[i]) >= window {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

// GatewayRefusals returns how many requests presenting token were refused
// with 429 for exceeding Options.EnforceBudget.
func (s *Server) GatewayRefusals(token string) int {
	s.arrivals.mu.Lock()
	defer s.arrivals.mu.Unlock()
	return s.arrivals.refused[token]
}
