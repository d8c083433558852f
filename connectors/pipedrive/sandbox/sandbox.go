// Package sandbox is a stateful fake of the Pipedrive REST API, served over real HTTP.
//
// It implements the subset of Pipedrive API v2 (and the few v1 endpoints that have no v2
// equivalent) that the Pipedrive connector uses, with the same paths, envelopes, status codes,
// error bodies, cursor pagination, rate-limit headers and 429s, and deal field rules as the
// real service. Data is seeded deterministically from Options.Seed and is relative to the
// clock (Options.Clock) at the time New is called.
//
// Paths are relative to the base URL, exactly as on api.pipedrive.com: a client configured
// with base URL http://127.0.0.1:43123 calls http://127.0.0.1:43123/api/v2/deals and
// http://127.0.0.1:43123/v1/users/me.
package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// UserTokenPrefix marks further tokens the sandbox accepts, one per
// simulated user of the same company (for per-user connections); each has
// its own burst window.
const UserTokenPrefix = "sandbox-user-"

// DefaultToken is the API token the sandbox accepts when Options.Token is empty.
const DefaultToken = "sandbox-token"

const (
	defaultBurst       = 80
	defaultBurstWindow = 2 * time.Second
	errorInfo          = "Please check developers.pipedrive.com for more information about Pipedrive API."
	timeLayout         = "2006-01-02T15:04:05Z"
	v1TimeLayout       = "2006-01-02 15:04:05"
	dateLayout         = "2006-01-02"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	Token       string        // accepted API token; default DefaultToken
	Burst       int           // requests per BurstWindow per token before 429; default 80
	BurstWindow time.Duration // rolling burst window; default 2s
	Clock       clock.Clock   // time source; nil means the real clock
	Seed        int64         // deterministic seed data; default 1
	// EnforceBudget, when set, answers 429 as Power Platform's gateway does
	// to a credential past Limit requests per rolling Window (see
	// arrivals.go). Arrivals are recorded per credential either way.
	EnforceBudget BudgetLimit
}

// Server is the fake Pipedrive API. It implements http.Handler and is safe for concurrent use.
type Server struct {
	token       string
	burst       int
	burstWindow time.Duration
	clock       clock.Clock
	arrivals    *arrivals // arrival log and gateway limit; own lock

	mu       sync.Mutex
	requests int
	windows  map[string][]time.Time // per-credential request times inside the burst window

	company       company
	meID          int
	users         []*user
	activityTypes []*activityType
	pipelines     []*pipeline
	stages        []*stage
	orgs          map[int]*organization
	persons       map[int]*person
	deals         map[int]*deal
	activities    map[int]*activity
	notes         map[int]*note         // v1 notes
	dealFields    []*dealField          // standard and custom deal fields, in display order
	fieldsByCode  map[string]*dealField // dealFields by field_code
	nextDealID    int
	nextActID     int

	table map[string]route
}

// New returns a Server seeded from opts.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.Burst <= 0 {
		opts.Burst = defaultBurst
	}
	if opts.BurstWindow <= 0 {
		opts.BurstWindow = defaultBurstWindow
	}
	opts.Clock = clock.OrReal(opts.Clock)
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	s := &Server{
		token:       opts.Token,
		burst:       opts.Burst,
		burstWindow: opts.BurstWindow,
		clock:       opts.Clock,
		arrivals:    newArrivals(opts.EnforceBudget),
		windows:     map[string][]time.Time{},
	}
	s.seed(opts.Seed, opts.Clock.Now().UTC().Truncate(time.Second))
	s.table = s.routes()
	return s
}

// Listen serves a new Server on addr (for example "127.0.0.1:0") in a goroutine. It returns
// the base URL to configure a client with (for example "http://127.0.0.1:43123") and the
// http.Server, whose Handler is the *Server; stop it with Close or Shutdown.
func Listen(addr string, opts Options) (baseURL string, srv *http.Server, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv = &http.Server{Handler: New(opts), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), srv, nil
}

// RequestCount returns the total number of requests served, whatever their outcome.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// apiError is a failed request: an HTTP status and the Pipedrive error message.
type apiError struct {
	status int
	msg    string
	info   string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound() *apiError {
	return &apiError{status: http.StatusNotFound, msg: "Entity was not found", info: "Object was not found."}
}

// route is one endpoint: the handler runs with the store locked.
type route struct {
	cost    int
	handler func(r *http.Request, id int) (any, *apiError)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Recorded first, as the gateway counts it; refused (after the body is
	// read and the request counted) before auth or the burst limit look at it.
	refusal := s.arrivals.arrive(credentialOf(r), s.clock.Now())
	if r.Body != nil && r.Body != http.NoBody {
		// Read the body before taking the lock so a slow client does not stall the others.
		buf, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		r.Body = io.NopCloser(bytes.NewReader(buf))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if refusal != nil {
		refusal.write(w)
		return
	}
	now := s.clock.Now()

	presented := r.Header.Get("x-api-token")
	if presented == "" {
		presented = r.URL.Query().Get("api_token")
	}
	v1 := strings.HasPrefix(r.URL.Path, "/v1/")

	allowed, remaining, reset := s.takeBurst(presented, now)
	h := w.Header()
	h.Set("x-ratelimit-limit", strconv.Itoa(s.burst))
	h.Set("x-ratelimit-remaining", strconv.Itoa(remaining))
	h.Set("x-ratelimit-reset", strconv.Itoa(reset))
	if !allowed {
		h.Set("Retry-After", strconv.Itoa(reset))
		writeError(w, v1, &apiError{status: http.StatusTooManyRequests, msg: "Request over limit"})
		return
	}
	if presented != s.token && !strings.HasPrefix(presented, UserTokenPrefix) {
		writeError(w, v1, &apiError{status: http.StatusUnauthorized, msg: "unauthorized access"})
		return
	}

	rt, id, err := s.match(r.Method, r.URL.Path)
	if err != nil {
		writeError(w, v1, err)
		return
	}
	h.Set("x-token-cost", strconv.Itoa(rt.cost))
	data, err := rt.handler(r, id)
	if err != nil {
		writeError(w, v1, err)
		return
	}
	writeJSON(w, http.StatusOK, data)
}

// takeBurst records a request for the credential and reports whether it is within the burst
// limit, how many requests remain in the window and the seconds until the window frees up.
func (s *Server) takeBurst(key string, now time.Time) (allowed bool, remaining, reset int) {
	if len(s.windows) > 1024 {
		// Forget credentials with no request inside the window (e.g. a stream of bad tokens).
		for k, ts := range s.windows {
			if len(ts) == 0 || !ts[len(ts)-1].After(now.Add(-s.burstWindow)) {
				delete(s.windows, k)
			}
		}
	}
	times := s.windows[key]
	cutoff := now.Add(-s.burstWindow)
	i := 0
	for i < len(times) && !times[i].After(cutoff) {
		i++
	}
	times = times[i:]
	allowed = len(times) < s.burst
	if allowed {
		times = append(times, now)
	}
	s.windows[key] = times
	remaining = max(s.burst-len(times), 0)
	reset = 1
	if len(times) > 0 {
		reset = max(int(math.Ceil(times[0].Add(s.burstWindow).Sub(now).Seconds())), 1)
	}
	return allowed, remaining, reset
}

// match resolves a method and path to a route and its numeric path id (0 when none).
func (s *Server) match(method, path string) (route, int, *apiError) {
	unknown := &apiError{status: http.StatusNotFound, msg: "Unknown method ."}
	var segs []string
	switch {
	case strings.HasPrefix(path, "/api/v2/"):
		segs = strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/api/v2/"), "/"), "/")
		segs = append([]string{"v2"}, segs...)
	case strings.HasPrefix(path, "/v1/"):
		segs = strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/v1/"), "/"), "/")
		segs = append([]string{"v1"}, segs...)
	default:
		return route{}, 0, unknown
	}
	key := method + " " + strings.Join(segs[:2], "/")
	id := 0
	if len(segs) == 3 {
		switch {
		case segs[2] == "search" || segs[2] == "me":
			key += "/" + segs[2]
		default:
			n, err := strconv.Atoi(segs[2])
			if err != nil || n <= 0 {
				if _, ok := s.table[method+" "+strings.Join(segs[:2], "/")+"/{id}"]; ok {
					return route{}, 0, badRequest("The parameter 'id' must be a positive integer")
				}
				return route{}, 0, unknown
			}
			id = n
			key += "/{id}"
		}
	} else if len(segs) > 3 {
		return route{}, 0, unknown
	}
	rt, ok := s.table[key]
	if !ok {
		return route{}, 0, unknown
	}
	return rt, id, nil
}

func (s *Server) routes() map[string]route {
	noID := func(f func(*http.Request) (any, *apiError)) func(*http.Request, int) (any, *apiError) {
		return func(r *http.Request, _ int) (any, *apiError) { return f(r) }
	}
	return map[string]route{
		"GET v2/deals":                {10, noID(s.listDeals)},
		"POST v2/deals":               {5, noID(s.addDeal)},
		"GET v2/deals/search":         {20, noID(s.searchDeals)},
		"GET v2/deals/{id}":           {1, s.getDeal},
		"PATCH v2/deals/{id}":         {5, s.updateDeal},
		"DELETE v2/deals/{id}":        {3, s.deleteDeal},
		"GET v2/dealFields":           {10, noID(s.listDealFields)},
		"GET v2/pipelines":            {5, noID(s.listPipelines)},
		"GET v2/pipelines/{id}":       {1, s.getPipeline},
		"GET v2/stages":               {5, noID(s.listStages)},
		"GET v2/stages/{id}":          {1, s.getStage},
		"GET v2/activities":           {10, noID(s.listActivities)},
		"POST v2/activities":          {5, noID(s.addActivity)},
		"GET v2/activities/{id}":      {1, s.getActivity},
		"PATCH v2/activities/{id}":    {5, s.updateActivity},
		"GET v2/persons":              {10, noID(s.listPersons)},
		"GET v2/persons/{id}":         {1, s.getPerson},
		"GET v2/organizations":        {10, noID(s.listOrgs)},
		"GET v2/organizations/search": {20, noID(s.searchOrgs)},
		"GET v2/organizations/{id}":   {1, s.getOrg},
		"GET v1/users":                {20, noID(s.v1Users)},
		"GET v1/users/me":             {2, noID(s.v1Me)},
		"GET v1/activityTypes":        {20, noID(s.v1ActivityTypes)},

		// The customer's side: organizations, persons and their notes.
		"POST v2/organizations":       {5, noID(s.addOrg)},
		"PATCH v2/organizations/{id}": {5, s.updateOrg},
		"POST v2/persons":             {5, noID(s.addPerson)},
		"PATCH v2/persons/{id}":       {5, s.updatePerson},
		"GET v2/persons/search":       {20, noID(s.searchPersons)},
		"GET v1/notes":                {20, noID(s.listNotes)},
		"POST v1/notes":               {10, noID(s.addNote)},
	}
}

// errorBody is Pipedrive's error envelope. v1 replies also carry errorCode.
type errorBody struct {
	Success        bool   `json:"success"`
	Error          string `json:"error"`
	ErrorCode      int    `json:"errorCode,omitempty"`
	ErrorInfo      string `json:"error_info"`
	Data           any    `json:"data"`
	AdditionalData any    `json:"additional_data"`
}

func writeError(w http.ResponseWriter, v1 bool, e *apiError) {
	info := e.info
	if info == "" {
		info = errorInfo
	}
	b := errorBody{Error: e.msg, ErrorInfo: info}
	if v1 {
		b.ErrorCode = e.status
	}
	writeJSON(w, e.status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		out.Reset()
		_ = enc.Encode(errorBody{Error: "Internal server error", ErrorInfo: errorInfo})
	}
	buf := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(status)
	_, _ = w.Write(buf)
}

// response envelopes

type itemResponse struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

type listResponse struct {
	Success        bool           `json:"success"`
	Data           any            `json:"data"`
	AdditionalData nextCursorData `json:"additional_data"`
}

type nextCursorData struct {
	NextCursor *string `json:"next_cursor"`
}

func single(data any) (any, *apiError) { return itemResponse{Success: true, Data: data}, nil }
