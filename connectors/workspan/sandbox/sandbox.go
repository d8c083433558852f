// Package sandbox is a stateful fake of the WorkSpan API (https://api.workspan.com and
// https://api-sandbox.workspan.com), served over real HTTP.
//
// Paths are relative to the base URL, as on the real hosts: a client configured with base URL
// http://127.0.0.1:43123 calls http://127.0.0.1:43123/app/v1/object/{id}/external_id and gets
// tokens from http://127.0.0.1:43123/oauth/token?x-ws-env=<HostName>. Data is seeded
// deterministically from Options.Seed, with dates relative to the clock (Options.Clock) at the
// time New is called.
//
// # Endpoints
//
//	POST   /oauth/token                              client-credentials token (operation=token|refresh)
//	GET    /app/v1/object/{object_id}/external_id    external ids of an opportunity or account
//	PATCH  /app/v1/object/{object_id}/external_id    connect an external id
//	PATCH  /app/v1/object/{object_id}/audit          add audit information
//	POST   /bulk/v1/bulkload                         bulk load data (raw body or multipart file)
//	POST   /bulk/v1/bulkload_opportunity             bulk load opportunities (raw body or multipart file)
//	GET    /bulk/v1/status/{integration_id}          status of a bulk load execution
//	POST   /report/v1/list                           list reports
//	POST   /report/v1/{reportId}/data                read report data (filters, page numbers)
//	GET    /event/v1/metadata/integration[/{id}]     integrations / object event schema
//	GET    /event/v1/metadata/event[/{event}]        events / event schema
//	POST   /event/v1/subscriber                      subscribe a webhook
//	GET    /event/v1/subscriber/{subscriber_id}      read a subscriber
//	DELETE /event/v1/subscriber/{subscriber_id}      delete a subscriber
//
// The connector-only paths /bulk/v1/bulkload/file, /bulk/v1/bulkload_opportunity/file,
// /event/v1/subscriber/object_integration_event and /event/v1/subscriber/submit_to_partner_center
// are served too, as the aliases they are (the connector's gateway rewrites them to the paths
// above). Trailing slashes are ignored. An unknown path is 404; a wrong method on a known path
// is 405 with an Allow header.
//
// # Environment header and authentication
//
// Every API request must carry "x-ws-env: <HostName>" (Options.HostName); without it, or with
// another host name, the reply is 400. It must also carry "Authorization: Bearer <token>" with
// an access token issued by the token endpoint that has not expired per Options.Clock; otherwise
// the reply is 401 with a WWW-Authenticate: Bearer challenge. The environment header is checked
// first.
//
// The token endpoint takes a form body: grant_type=client_credentials, client_id and
// client_secret (form fields or HTTP Basic; Options.AppUserID and Options.AppUserSecret) and
// operation=token (default) or operation=refresh, plus the x-ws-env query parameter (or header).
// Extra fields the connector sends (code, redirect_uri, refresh_token_type) are ignored. Both
// operations issue a new access token and a new refresh token; a refresh that names a
// refresh_token must name one the sandbox issued (else 400 invalid_grant). Errors use the OAuth
// shape {"error": "…", "error_description": "…"}: bad credentials are 401 invalid_client, a
// missing or wrong x-ws-env or a missing parameter 400 invalid_request, another grant type 400
// unsupported_grant_type.
//
// # Errors
//
// Every API error is JSON {"message": "…", "code": "<STATUS>"} where code is the HTTP status
// text in upper snake case: BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, METHOD_NOT_ALLOWED,
// REQUEST_ENTITY_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE.
//
// Objects, bulk loads, reports and events are described in objects.go, bulk.go, reports.go and
// events.go; webhook delivery of object events in deliver.go and subscriber filters in
// filter.go.
//
// # Event delivery
//
// New starts a background worker that POSTs object events (object.create, object.update,
// object.stage_change, object.partner_center_referral_submit) to the callback URLs of the
// matching subscribers, with retries. Call Close to stop it; Deliveries and WaitDelivered
// observe it.
package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// Default connection parameters the sandbox accepts when Options leaves them empty.
const (
	DefaultHostName      = "sandbox.workspan.com" // value required in the x-ws-env header
	DefaultAppUserID     = "sandbox-app-user"     // client_id accepted by the token endpoint
	DefaultAppUserSecret = "sandbox-app-secret"   // client_secret accepted by the token endpoint
)

const (
	defaultTokenTTL  = time.Hour
	maxBody          = 1 << 20  // JSON API bodies
	maxBulkBody      = 32 << 20 // bulk load uploads
	jsonContentType  = "application/json; charset=utf-8"
	timeLayout       = "2006-01-02T15:04:05.000Z"
	dateLayout       = "2006-01-02"
	envHeader        = "x-ws-env"
	defaultPageSize  = 500
	maxPageSize      = 10000
	objectIDDigits   = 18
	subscriberPrefix = "/event/v1/subscriber/"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	HostName      string        // required x-ws-env value; default DefaultHostName
	AppUserID     string        // client_id for the token endpoint; default DefaultAppUserID
	AppUserSecret string        // client_secret for the token endpoint; default DefaultAppUserSecret
	Clock         clock.Clock   // time of tokens, objects, bulk loads and delivery retries; default real
	Seed          int64         // deterministic seed data; default 1
	TokenTTL      time.Duration // lifetime of access tokens; default 1h
	// RowDelay is the processing time per row of a bulk load execution, on Options.Clock.
	// Default 0: the rows are processed when the load is accepted, and the execution is still
	// reported running on the first status poll (see bulk.go).
	RowDelay time.Duration

	// Webhook delivery of object events (see deliver.go). Zero values take the defaults.
	RetryBase           time.Duration // first retry backoff; default DefaultRetryBase (1s)
	RetryMax            time.Duration // backoff cap; default DefaultRetryMax (1 min)
	MaxAttempts         int           // attempts before an event is dropped; default DefaultMaxAttempts (20)
	DeliveryTimeout     time.Duration // timeout of one attempt; default DefaultDeliveryTimeout (10s)
	DeliveryConcurrency int           // attempts in flight overall; default DefaultDeliveryConcurrency (4)
	QueueLimit          int           // events waiting for delivery; default DefaultQueueLimit (100000)
}

// Server is the fake WorkSpan API. It implements http.Handler and is safe for concurrent use.
// New starts a background worker that delivers webhook events; stop it with Close.
type Server struct {
	hostName  string
	appUserID string
	appSecret string
	now       func() time.Time // Options.Clock's Now
	tokenTTL  time.Duration
	rowDelay  time.Duration

	mu           sync.Mutex
	requests     int
	rng          *rand.Rand // ids of objects, executions and subscribers
	tokenRng     *rand.Rand // issued tokens
	access       map[string]time.Time
	refresh      map[string]bool
	objects      map[string]*object // by WorkSpan long id
	version      int64              // bumped on every change to an opportunity
	integrations []integration
	executions   map[string]*execution // by execution id
	execOrder    []*execution          // every execution, in creation order
	running      []*execution          // executions with rows still to process, oldest first
	crmIndex     map[string]*object    // CRM opportunity id → the first opportunity carrying it
	accountNames map[string]string     // lower-case account name → account id (the first seeded)
	reports      []*report
	subscribers  map[string]*Subscriber
	subOrder     []string   // subscriber ids in creation order
	eventRng     *rand.Rand // event ids
	table        []route

	deliveries *deliverer // has its own lock, taken after mu
}

// New returns a Server seeded from opts.
func New(opts Options) *Server {
	if opts.HostName == "" {
		opts.HostName = DefaultHostName
	}
	if opts.AppUserID == "" {
		opts.AppUserID = DefaultAppUserID
	}
	if opts.AppUserSecret == "" {
		opts.AppUserSecret = DefaultAppUserSecret
	}
	opts.Clock = clock.OrReal(opts.Clock)
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = defaultTokenTTL
	}
	if opts.RowDelay < 0 {
		opts.RowDelay = 0
	}
	seed := uint64(opts.Seed)
	s := &Server{
		hostName:     opts.HostName,
		appUserID:    opts.AppUserID,
		appSecret:    opts.AppUserSecret,
		now:          opts.Clock.Now,
		tokenTTL:     opts.TokenTTL,
		rowDelay:     opts.RowDelay,
		rng:          rand.New(rand.NewPCG(seed, 0x3a5b0001)),
		tokenRng:     rand.New(rand.NewPCG(seed, 0x3a5b0002)),
		access:       map[string]time.Time{},
		refresh:      map[string]bool{},
		objects:      map[string]*object{},
		executions:   map[string]*execution{},
		crmIndex:     map[string]*object{},
		accountNames: map[string]string{},
		subscribers:  map[string]*Subscriber{},
		eventRng:     rand.New(rand.NewPCG(seed, 0x3a5b0004)),
	}
	s.seed(opts.Seed, s.now().UTC().Truncate(time.Second))
	s.table = s.routes()
	s.deliveries = newDeliverer(deliveryConfigOf(opts))
	return s
}

// Listen serves a new Server on addr (for example "127.0.0.1:0") in a goroutine. It returns
// the base URL to configure a client with (for example "http://127.0.0.1:43123") and the
// http.Server, whose Handler is the *Server; stop it with Close or Shutdown. Shutdown also
// stops event delivery; after Close, also call srv.Handler.(*Server).Close() to stop it.
func Listen(addr string, opts Options) (baseURL string, srv *http.Server, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	sb := New(opts)
	srv = &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(sb.Close)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), srv, nil
}

// RequestCount returns the total number of requests served (API and token endpoint), whatever
// their outcome.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// apiError is a failed API request: an HTTP status and a message.
type apiError struct {
	status int
	msg    string
	header map[string]string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, format, args...)
}

// errorBody is the shape of every API error.
type errorBody struct {
	Message string `json:"message"`
	Code    string `json:"code"`
}

// statusCode turns an HTTP status into its upper snake case text, e.g. 404 → NOT_FOUND.
func statusCode(status int) string {
	text := http.StatusText(status)
	if text == "" {
		return strconv.Itoa(status)
	}
	text = strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(text)
	return strings.ToUpper(text)
}

// request carries what a handler needs besides the store.
type request struct {
	r    *http.Request
	body []byte
	segs []string // path segments
	base string   // scheme://host of the request
	now  time.Time
}

// reply is a successful response.
type reply struct {
	status int
	header map[string]string
	body   any // JSON-encoded; nil means an empty body
}

func ok(body any) (*reply, *apiError) { return &reply{status: http.StatusOK, body: body}, nil }

type handlerFunc func(*request) (*reply, *apiError)

// route is one path pattern: literal segments, and "*" for a path parameter.
type route struct {
	pattern []string
	methods map[string]handlerFunc
	bulk    bool // accepts large bodies
}

func (s *Server) routes() []route {
	r := func(pattern string, bulk bool, methods map[string]handlerFunc) route {
		return route{pattern: splitPath(pattern), methods: methods, bulk: bulk}
	}
	return []route{
		r("/app/v1/object/*/external_id", false, map[string]handlerFunc{
			http.MethodGet: s.getExternalID, http.MethodPatch: s.connectExternalID}),
		r("/app/v1/object/*/audit", false, map[string]handlerFunc{http.MethodPatch: s.addAudit}),
		r("/bulk/v1/bulkload", true, map[string]handlerFunc{http.MethodPost: s.bulkLoadData}),
		r("/bulk/v1/bulkload/file", true, map[string]handlerFunc{http.MethodPost: s.bulkLoadData}),
		r("/bulk/v1/bulkload_opportunity", true, map[string]handlerFunc{http.MethodPost: s.bulkLoadOpportunity}),
		r("/bulk/v1/bulkload_opportunity/file", true, map[string]handlerFunc{http.MethodPost: s.bulkLoadOpportunity}),
		r("/bulk/v1/status/*", false, map[string]handlerFunc{http.MethodGet: s.bulkStatus}),
		r("/report/v1/list", false, map[string]handlerFunc{http.MethodPost: s.listReports}),
		r("/report/v1/*/data", false, map[string]handlerFunc{http.MethodPost: s.reportData}),
		r("/event/v1/metadata/integration", false, map[string]handlerFunc{http.MethodGet: s.listIntegrations}),
		r("/event/v1/metadata/integration/*", false, map[string]handlerFunc{http.MethodGet: s.integrationSchema}),
		r("/event/v1/metadata/event", false, map[string]handlerFunc{http.MethodGet: s.listEvents}),
		r("/event/v1/metadata/event/*", false, map[string]handlerFunc{http.MethodGet: s.eventSchema}),
		r("/event/v1/subscriber", false, map[string]handlerFunc{http.MethodPost: s.subscribe}),
		r("/event/v1/subscriber/object_integration_event", false, map[string]handlerFunc{http.MethodPost: s.subscribe}),
		r("/event/v1/subscriber/submit_to_partner_center", false, map[string]handlerFunc{http.MethodPost: s.subscribe}),
		r("/event/v1/subscriber/*", false, map[string]handlerFunc{
			http.MethodGet: s.readSubscriber, http.MethodDelete: s.deleteSubscriber}),
	}
}

// match finds the route of a path. Literal routes win over parameterised ones.
func match(routes []route, segs []string) *route {
	var best *route
	bestLiterals := -1
	for i := range routes {
		rt := &routes[i]
		if len(rt.pattern) != len(segs) {
			continue
		}
		literals, okay := 0, true
		for j, p := range rt.pattern {
			if p == "*" {
				continue
			}
			if p != segs[j] {
				okay = false
				break
			}
			literals++
		}
		if okay && literals > bestLiterals {
			best, bestLiterals = rt, literals
		}
	}
	return best
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := splitPath(r.URL.Path)
	rt := match(s.table, segs)
	isToken := len(segs) == 2 && segs[0] == "oauth" && segs[1] == "token"

	limit := int64(maxBody)
	if rt != nil && rt.bulk {
		limit = maxBulkBody
	}
	var body []byte
	tooLarge := false
	if r.Body != nil && r.Body != http.NoBody {
		// Read the body before taking the lock so a slow client does not stall the others.
		buf, _ := io.ReadAll(io.LimitReader(r.Body, limit+1))
		tooLarge = int64(len(buf)) > limit
		body = buf
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	now := s.now()
	s.progress(now)

	if isToken {
		s.handleToken(w, r, body, tooLarge, now)
		return
	}
	if rt == nil {
		writeError(w, notFound("Resource not found: %s", r.URL.Path))
		return
	}
	if err := s.checkEnv(r.Header.Get(envHeader)); err != nil {
		writeError(w, err)
		return
	}
	if err := s.authenticate(r, now); err != nil {
		writeError(w, err)
		return
	}
	handler := rt.methods[r.Method]
	if handler == nil {
		allow := make([]string, 0, len(rt.methods))
		for m := range rt.methods {
			allow = append(allow, m)
		}
		sort.Strings(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, errorf(http.StatusMethodNotAllowed, "Method %s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	if tooLarge {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "The request body exceeds the maximum size of %d bytes", limit))
		return
	}
	rep, err := handler(&request{r: r, body: body, segs: segs, base: baseOf(r), now: now})
	if err != nil {
		writeError(w, err)
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.body == nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(rep.status)
		return
	}
	writeJSON(w, rep.status, rep.body)
}

// checkEnv validates the x-ws-env value of a request.
func (s *Server) checkEnv(env string) *apiError {
	env = strings.TrimSpace(env)
	if env == "" {
		return badRequest("Missing required header %s: the WorkSpan host name of the environment (e.g. %s)", envHeader, s.hostName)
	}
	if !strings.EqualFold(env, s.hostName) {
		return badRequest("Unknown WorkSpan environment %q in header %s", env, envHeader)
	}
	return nil
}

// splitPath splits a URL path into its non-empty segments, so trailing slashes do not matter.
func splitPath(p string) []string {
	var segs []string
	for seg := range strings.SplitSeq(p, "/") {
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	return segs
}

// queryOf parses the query string like url.ParseQuery, except that a semicolon is an ordinary
// character (so column_delimiter=; works unencoded).
func queryOf(r *http.Request) url.Values {
	q := url.Values{}
	for pair := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		q.Add(key, val)
	}
	return q
}

func baseOf(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func writeError(w http.ResponseWriter, e *apiError) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	writeJSON(w, e.status, errorBody{Message: e.msg, Code: statusCode(e.status)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := marshal(v)
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(status)
	_, _ = w.Write(buf)
}

func marshal(v any) []byte {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // every value served is JSON-encodable
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// decodeJSON decodes a JSON request body into v. An empty body leaves v unchanged when
// optional is true.
func decodeJSON(body []byte, v any, optional bool) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return badRequest("The request body is required")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("Invalid JSON in request body: %v", err)
	}
	return nil
}

// newDigits returns n random decimal digits, the first non-zero.
func newDigits(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	b[0] = byte('1' + rng.IntN(9))
	for i := 1; i < n; i++ {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

func newHex(rng *rand.Rand, n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = hex[rng.IntN(16)]
	}
	return string(b)
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }
