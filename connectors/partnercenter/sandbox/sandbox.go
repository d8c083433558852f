// Package sandbox is a stateful fake of the Partner Center Referrals API
// (https://api.partner.microsoft.com/v1.0/engagements/referrals) and of the Microsoft Entra ID
// token endpoint that issues its access tokens, served over real HTTP.
//
// Paths are relative to the base URL, as on the real hosts: a client configured with base URL
// http://127.0.0.1:43123 calls http://127.0.0.1:43123/v1.0/engagements/referrals (see
// Server.APIBase) and gets tokens from http://127.0.0.1:43123/common/oauth2/v2.0/token (see
// Server.TokenURL; any tenant segment is accepted). Data is seeded deterministically from
// Options.Seed, with dates relative to the clock (Options.Clock) at the time New is called.
//
// # Endpoints
//
//	GET   /v1.0/engagements/referrals         list (OData query options below)
//	POST  /v1.0/engagements/referrals         create; 201 Created with the referral
//	GET   /v1.0/engagements/referrals/{id}    one referral; 404 when unknown
//	PATCH /v1.0/engagements/referrals/{id}    JSON Patch (also /{id}/ and /{id}//)
//	PUT   /v1.0/engagements/referrals/{id}    replace the mutable fields (deprecated upstream)
//	POST  /{tenant}/oauth2/v2.0/token         client_credentials and refresh_token grants
//
// Repeated and trailing slashes are ignored everywhere, and path segments match
// case-insensitively. A wrong method on a known path is 405 with an Allow header.
//
// # Authentication
//
// Every /v1.0 request needs "Authorization: Bearer <token>" with either Options.Token or an
// access token issued by the token endpoint that has not expired per Options.Clock. Otherwise
// the reply is 401 with a WWW-Authenticate: Bearer challenge and the Partner Center error
// body.
//
// The token endpoint takes a form body. client_credentials authenticates with client_id and
// client_secret (form fields or HTTP Basic). A refresh token is only returned when the scope
// includes offline_access (Entra ID never returns one for client_credentials, so a client must
// cope without it). grant_type=refresh_token exchanges a refresh token for a new access token
// and a new refresh token; the old refresh token stops working (rotation). Refresh tokens live
// 90 days. Bad client credentials are 401 invalid_client, an unknown or used refresh token is
// 400 invalid_grant, other grants are 400 unsupported_grant_type, missing parameters are 400
// invalid_request, all in the Entra ID error shape.
//
// # Listing
//
// Query options (names are case-insensitive; unknown $-options are 400; options without a
// leading $ are ignored):
//
//   - $filter: see the grammar below.
//   - $orderby: comma-separated property paths (nested with /), each optionally followed by asc
//     or desc. Only primitive properties may be ordered by; nulls sort first ascending. The id
//     is always the final tie-breaker. Without $orderby the order is createdDateTime desc.
//   - $select: comma-separated property paths. Top-level properties and nested paths into
//     complex properties (customerProfile, customerProfile/address/country, details/dealValue)
//     are allowed; a complex property selected whole is returned whole. * selects everything.
//     Selected properties that are absent are returned as null. The @odata.context names the
//     selection, e.g. $metadata#referrals(id,status).
//   - $top: the page size (Partner Center pages with @odata.nextLink; $top does not cap the
//     total across pages). Default Options.PageSize, at most 1000 (larger values are clamped).
//     $top=0 returns an empty page. SetTopMode(TopCap) reads it instead as the connector
//     definition describes it, a cap on the whole listing served in pages of PageSize, so that
//     clients are tested against both readings.
//   - $skip: skips that many matching referrals before the first page.
//   - $count=true adds @odata.count (the number of referrals matching $filter, ignoring paging)
//     to every page; $count=false or absent omits it.
//   - $expand: accepted and ignored (the referral has no navigation properties).
//   - $skiptoken: the opaque continuation from @odata.nextLink.
//
// When more referrals remain, the reply carries @odata.nextLink: the absolute URL of the next
// page with the same $filter, $orderby, $select, $top, $count and $expand and a $skiptoken. The
// token is a keyset position (the sort values and id of the last referral served), so walking
// the links visits every referral matching the filter exactly once even when referrals are
// created meanwhile. A token that does not match the $orderby is 400.
//
// $filter grammar (OData v4 subset; keywords and function names are case-insensitive):
//
//	expr    = and { "or" and }
//	and     = not { "and" not }
//	not     = "not" not | cmp            ("not" applies to the whole comparison that follows)
//	cmp     = primary [ ("eq"|"ne"|"gt"|"ge"|"lt"|"le") primary | "in" "(" literal {"," literal} ")" ]
//	primary = "(" expr ")" | function "(" args ")" | literal | path
//	path    = property { "/" property }   (e.g. customerProfile/address/country, details/dealValue)
//
// Functions: contains(s,t), startswith(s,t), endswith(s,t) (boolean), tolower(s), toupper(s).
// Literals: 'strings' with ” as an escaped quote, numbers (12, -3.5, 1e6), true, false, null,
// date-times either bare (2026-01-02, 2026-01-02T00:00:00Z, with optional fraction and offset)
// or typed (datetime'…', datetimeoffset'…', date'…'), and GUIDs bare or as guid'…'. A quoted
// string compared with a date-time property is read as a date-time. Date-time properties
// (every *DateTime) compare as instants, numbers numerically, booleans false < true.
//
// String comparisons are ordinal and case-sensitive, except for the enumeration-valued
// properties status, substatus, type, qualification, direction and salesStage and the GUID
// properties id, engagementId and organizationId, which compare case-insensitively (also in
// contains/startswith/endswith and in $orderby). Use tolower(...) for a case-insensitive match
// on any other property. null equals only null; ordering comparisons with null are false. A
// complex property may only be compared with null (inviteContext eq null). Collection
// properties (team, target, registrations, …) cannot be filtered on: lambda operators (any,
// all) are not supported. An unknown property, a type mismatch or a syntax error is 400 with a
// message naming the position (0-based byte offset) in the option.
//
// # Writes
//
// POST requires type (Shared or Independent), customerProfile with a name, consent and
// details; it validates types, enumerations (qualification, salesStage, status, substatus,
// assistanceRequestCode), currencies (three letters), amounts (not negative), date-times and
// e-mail addresses. The sandbox assigns id, engagementId (unless a GUID is given),
// createdDateTime, updatedDateTime, eTag, organizationId/organizationName/mpnId of the sandbox
// partner and direction Outgoing. The new referral is Active/Accepted, whatever New status the
// body asks for (New/Pending, New/Received, None or none at all); only an explicit Closed
// status with one of its substatuses is kept. status/substatus None are read as absent; an
// incompatible pair is 400. Read-only properties in the body are
// ignored. The reply is 201 Created (the connector swagger declares 200; Partner Center's
// Referrals API documents 201 Created) with a Location and an ETag header.
//
// PATCH takes a JSON Patch array. Only "replace" and "add" are supported; for the non-array
// paths both set the value, paths ending in /- append (add only). Allowed paths are those of
// the connector's three PATCH operations (see patchPaths). All operations are applied to a
// copy and validated together: a failing patch changes nothing. Then the state machine is
// checked against the status before the patch:
//
//	New    → New (Pending, Received), Active (Accepted), Closed (Won, Lost, Declined, Expired)
//	Active → Active (Accepted), Closed (Won, Lost, Declined, Expired)
//	Closed → terminal: status and substatus can no longer change
//
// A status whose substatus is not listed for it is 400 (so moving New/Pending to Active needs
// /substatus Accepted in the same patch). Becoming Active sets acceptedDateTime, becoming
// Closed sets closedDateTime. Every successful PATCH or PUT sets updatedDateTime and a new
// eTag.
//
// Deal registrations (/registrations/-) can only be added to, and updated on, a referral that
// is Active/Accepted or Closed/Won after the patch; a referral holds at most one registration (a second add is 409).
// The registration value needs type AzureIPCoSell, at least one solutionDetails entry
// (value ≥ 0, three-letter currency, primaryDeploymentOn Customer|Partner, pricingModel
// PayAsYouGo|Other, valid marketplaceTransactionDateTime) and a contract (value ≥ 0,
// currency, term Perpetual|Finite, startDateTime; endDateTime required for Finite and not
// before startDateTime; signDateTime optional). A new registration starts in status
// ReviewPending.
//
// eTag values are opaque quoted strings (the quotes are part of the value, as in Cosmos DB),
// and the ETag header carries the same string. If-Match is compared ignoring surrounding
// quotes and a W/ prefix; * matches any referral. On PATCH If-Match is optional; on PUT it is
// required (428 without it). A mismatch is 412. PATCH replies 204 No Content unless the request
// has "Prefer: return=representation", then 200 with the referral and Preference-Applied.
// PUT replies 200 with the referral.
//
// PUT requires customerProfile (with name), consent, details, status and substatus, replaces
// name, externalReferenceId, campaignId, status, substatus, statusReason, qualification,
// referralProgram, salesStage, callToAction, favorite, customerProfile, consent, details and
// team (absent ones are cleared) and ignores every other property; an id in the body must
// match the path.
//
// # Idempotency
//
// A POST, PATCH or PUT that carries MS-RequestId is recorded when it succeeds. Repeating it
// with the same MS-RequestId, method, path and JSON body (compared after normalising
// whitespace and key order) replays the recorded reply without doing the work again: a
// retried create returns the same referral, not a duplicate. The same MS-RequestId with a
// different method, path or body is 409. Records are kept for 24 hours. Failed requests are
// not recorded.
//
// # Errors and headers
//
// Errors use the Partner Center shape {"code": "<HTTP status>", "description": "…", "data": [],
// "source": "PartnerFD"}, code being a string. Every reply echoes MS-RequestId and MS-CorrelationId when sent and
// sets MS-CV, MS-ServerId and Request-ID. Bodies larger than 1 MiB are 413; a write with a
// non-JSON Content-Type is 415.
//
// # Documented behaviour
//
// Where the documentation is explicit the sandbox follows it; testdata/examples replays every
// request/response example of the docs and of the connector definition against it
// (TestDocumentedExamples). Each earlier divergence, and what was done about it:
//
//   - Create answers Active/Accepted (changed). Source: learn.microsoft.com
//     partner-center/developer/create-a-referral, whose request example sends New/Pending and
//     whose response example is Active/Accepted (/work/shared/specs/UPSTREAM.md §2, "Enums /
//     state machine"). A flow rehearsed here therefore needs no accept step after creating; an
//     accept patch (Active/Accepted again) is still allowed, as Active → Active is.
//   - Deal registration on Closed/Won (changed). Source: the co-sell deal registration docs
//     register the deals a partner wins, and the connector's CreateDealRegistrationByReferralId
//     (testdata/partnercenterreferrals.swagger.json) states no status restriction. Active and
//     Closed/Won referrals take registrations; New, Closed/Lost, Declined and Expired do not
//     (the last three are no deal to register: a deliberate choice, not documented).
//   - tags stay objects {"tag": "…"} (documented choice). Source: the definition's Referral
//     tags items declare "type": "string" together with "properties": {"tag": {"type":
//     "string"}}, which only an object can carry; the definition contradicts itself and the
//     docs show no tags example. The sandbox serves the object form (as the properties say,
//     and as UPSTREAM.md §2 records "tags[]{tag}"); the client (partnercenter.Tag) decodes
//     both a bare string and the object, so a live string form is not lost either way. tags
//     are read-only: a create or PUT ignores them.
//   - Error code is a string (changed). Source: the reading of the docs; UPSTREAM.md
//     §2 "Errors" records the general Partner Center REST body with a numeric code and marks
//     the referrals shape UNVERIFIED. The sandbox sends the HTTP status as a string ("404");
//     the client's error parsing accepts a number or a string (partnercenter.codeString).
//   - None (changed). Source: referral-resources lists None in ReferralQualification,
//     ReferralStatus and ReferralSubstatus. qualification None is stored; status and
//     substatus None on create are read as absent (the referral is created Active/Accepted).
//     A PATCH or PUT to status None is still 400: the documented transitions (New → New,
//     Active, Closed; Active → Active, Closed; Closed terminal) never lead to None.
//   - The patch-a-referral example ([replace /status Closed, replace /substatus Won]) is
//     accepted (204, or 200 with Prefer: return=representation) on a New or Active referral;
//     TestDocumentedExamples replays it.
//   - Create answers 201 Created where the definition declares 200 (kept; see spec_test.go).
package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// Default credentials the sandbox accepts when Options leaves them empty.
const (
	DefaultToken        = "sandbox-partnercenter-token" // static bearer token accepted by the API
	DefaultClientID     = "sandbox-client"              // client_id accepted by the token endpoint
	DefaultClientSecret = "sandbox-secret"              // client_secret accepted by the token endpoint
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
	defaultTokenTTL = time.Hour
	refreshTokenTTL = 90 * 24 * time.Hour
	idempotencyTTL  = 24 * time.Hour
	maxBody         = 1 << 20
	apiPrefix       = "/v1.0/engagements"
	jsonContentType = "application/json; charset=utf-8"
	odataJSON       = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	Token        string        // static bearer token accepted by the API; default DefaultToken
	ClientID     string        // client_id for the token endpoint; default DefaultClientID
	ClientSecret string        // client_secret for the token endpoint; default DefaultClientSecret
	Clock        clock.Clock   // time source; nil means the real clock
	Seed         int64         // deterministic seed data; default 1
	PageSize     int           // page size when $top is absent; default 100, at most 1000
	TokenTTL     time.Duration // lifetime of access tokens from the token endpoint; default 1h
}

// Server is the fake Partner Center Referrals API. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	token        string
	clientID     string
	clientSecret string
	clock        clock.Clock
	pageSize     int
	tokenTTL     time.Duration
	topModeV     atomic.Int32 // TopMode: how the list endpoint reads $top (SetTopMode)

	mu        sync.Mutex
	requests  int
	dataRng   *rand.Rand // ids of created referrals and registrations
	headerRng *rand.Rand // per-request identifiers
	tokenRng  *rand.Rand // issued tokens
	tokenKey  []byte
	etagSeq   uint32
	partner   organization
	referrals map[string]*entry // by lower-case id
	access    map[string]time.Time
	refresh   map[string]refreshGrant
	idem      map[string]*idemRecord
}

type organization struct {
	ID, Name, MpnID string
}

// entry is a stored referral with its serialized and generic forms.
type entry struct {
	ref *referral
	raw []byte
	doc map[string]any
}

func newEntry(ref *referral) *entry {
	raw, err := json.Marshal(ref)
	if err != nil {
		panic(err)
	}
	return &entry{ref: ref, raw: raw, doc: toDoc(raw)}
}

// New returns a Server seeded from opts.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	opts.Clock = clock.OrReal(opts.Clock)
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.PageSize <= 0 {
		opts.PageSize = defaultPageSize
	}
	opts.PageSize = min(opts.PageSize, maxPageSize)
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = defaultTokenTTL
	}
	seed := uint64(opts.Seed)
	s := &Server{
		token:        opts.Token,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		clock:        opts.Clock,
		pageSize:     opts.PageSize,
		tokenTTL:     opts.TokenTTL,
		dataRng:      rand.New(rand.NewPCG(seed, 0x5eed0001)),
		headerRng:    rand.New(rand.NewPCG(seed, 0x5eed0002)),
		tokenRng:     rand.New(rand.NewPCG(seed, 0x5eed0003)),
		referrals:    map[string]*entry{},
		access:       map[string]time.Time{},
		refresh:      map[string]refreshGrant{},
		idem:         map[string]*idemRecord{},
	}
	key := sha256.Sum256([]byte(fmt.Sprintf("sandbox-token-key-%d", opts.Seed)))
	s.tokenKey = key[:]
	s.seed(opts.Seed, opts.Clock.Now().UTC().Truncate(time.Second))
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

// RequestCount returns the total number of requests served (API and token endpoint), whatever
// their outcome.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// APIBase returns the referrals API base for a sandbox served at baseURL:
// baseURL + "/v1.0/engagements" (the referrals collection is APIBase + "/referrals").
func (s *Server) APIBase(baseURL string) string {
	return strings.TrimRight(baseURL, "/") + apiPrefix
}

// TokenURL returns the token endpoint for a sandbox served at baseURL:
// baseURL + "/common/oauth2/v2.0/token". Any tenant in place of "common" works too.
func (s *Server) TokenURL(baseURL string) string {
	return strings.TrimRight(baseURL, "/") + "/common/oauth2/v2.0/token"
}

// apiError is a failed API request: an HTTP status and the Partner Center description.
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

// reply is a successful response, recorded as-is for idempotent replays.
type reply struct {
	status int
	header map[string]string
	body   []byte
}

type errorBody struct {
	Code        string `json:"code"` // the HTTP status in decimal, as a string (see the package doc)
	Description string `json:"description"`
	Data        []any  `json:"data"`
	Source      string `json:"source"`
}

// request carries what a handler needs besides the store.
type request struct {
	r    *http.Request
	body []byte
	id   string // path id, when the route has one
	base string // scheme://host of the request
	now  time.Time
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	tooLarge := false
	if r.Body != nil && r.Body != http.NoBody {
		// Read the body before taking the lock so a slow client does not stall the others.
		buf, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		tooLarge = len(buf) > maxBody
		body = buf
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	now := s.clock.Now()

	h := w.Header()
	if v := r.Header.Get("MS-RequestId"); v != "" {
		h.Set("MS-RequestId", v)
	}
	if v := r.Header.Get("MS-CorrelationId"); v != "" {
		h.Set("MS-CorrelationId", v)
	}
	h.Set("MS-CV", s.newCV())
	h.Set("MS-ServerId", "030020525")
	h.Set("Request-ID", newGUID(s.headerRng))

	segs := splitPath(r.URL.Path)
	if len(segs) == 4 && strings.EqualFold(segs[1], "oauth2") && strings.EqualFold(segs[2], "v2.0") && strings.EqualFold(segs[3], "token") {
		s.handleToken(w, r, segs[0], body, tooLarge, now)
		return
	}
	if len(segs) < 2 || !strings.EqualFold(segs[0], "v1.0") || !strings.EqualFold(segs[1], "engagements") {
		writeError(w, errorf(http.StatusNotFound, "The requested resource '%s' was not found.", r.URL.Path))
		return
	}
	if err := s.authenticate(r, now); err != nil {
		writeError(w, err)
		return
	}
	if len(segs) < 3 || !strings.EqualFold(segs[2], "referrals") || len(segs) > 4 {
		writeError(w, errorf(http.StatusNotFound, "The requested resource '%s' was not found.", r.URL.Path))
		return
	}

	req := &request{r: r, body: body, base: baseOf(r), now: now}
	var handler func(*request) (*reply, *apiError)
	var allow string
	if len(segs) == 3 {
		allow = "GET, POST"
		switch r.Method {
		case http.MethodGet:
			handler = s.listReferrals
		case http.MethodPost:
			handler = s.createReferral
		}
	} else {
		req.id = segs[3]
		allow = "GET, PATCH, PUT"
		switch r.Method {
		case http.MethodGet:
			handler = s.getReferral
		case http.MethodPatch:
			handler = s.patchReferral
		case http.MethodPut:
			handler = s.putReferral
		}
	}
	if handler == nil {
		h.Set("Allow", allow)
		writeError(w, errorf(http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method))
		return
	}
	if tooLarge {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "The request body exceeds the maximum size of %d bytes.", maxBody))
		return
	}
	write := r.Method != http.MethodGet
	if write {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
				writeError(w, errorf(http.StatusUnsupportedMediaType, "The request entity's media type '%s' is not supported for this resource.", ct))
				return
			}
		}
	}

	key := r.Header.Get("MS-RequestId")
	var fingerprint string
	if write && key != "" {
		fingerprint = requestFingerprint(r.Method, segs, body)
		s.pruneIdempotency(now)
		if rec, ok := s.idem[key]; ok {
			if rec.fingerprint != fingerprint {
				writeError(w, errorf(http.StatusConflict,
					"The MS-RequestId '%s' was already used for a different request; use a new MS-RequestId for a new operation.", key))
				return
			}
			writeReply(w, rec.reply)
			return
		}
	}

	rep, err := handler(req)
	if err != nil {
		writeError(w, err)
		return
	}
	if write && key != "" {
		s.idem[key] = &idemRecord{fingerprint: fingerprint, reply: rep, at: now}
	}
	writeReply(w, rep)
}

// splitPath splits a URL path into its non-empty segments, so repeated and trailing slashes
// do not matter.
func splitPath(p string) []string {
	var segs []string
	for seg := range strings.SplitSeq(p, "/") {
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	return segs
}

func baseOf(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) newCV() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b [22]byte
	for i := range b {
		b[i] = alphabet[s.headerRng.IntN(len(alphabet))]
	}
	return string(b[:]) + ".0"
}

func writeReply(w http.ResponseWriter, rep *reply) {
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	buf := marshal(errorBody{Code: strconv.Itoa(e.status), Description: e.msg, Data: []any{}, Source: "PartnerFD"})
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(e.status)
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

// Idempotency (MS-RequestId)

type idemRecord struct {
	fingerprint string
	reply       *reply
	at          time.Time
}

// requestFingerprint identifies a write by method, normalised path and JSON body.
func requestFingerprint(method string, segs []string, body []byte) string {
	norm := bytes.TrimSpace(body)
	var v any
	if len(norm) > 0 && json.Unmarshal(norm, &v) == nil {
		norm = marshal(v) // maps are encoded with sorted keys
	}
	lower := make([]string, len(segs))
	for i, seg := range segs {
		lower[i] = strings.ToLower(seg)
	}
	sum := sha256.Sum256(append([]byte(method+" "+strings.Join(lower, "/")+"\n"), norm...))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Server) pruneIdempotency(now time.Time) {
	if len(s.idem) < 1024 {
		return
	}
	for k, rec := range s.idem {
		if now.Sub(rec.at) > idempotencyTTL {
			delete(s.idem, k)
		}
	}
}

// etag returns a new opaque entity tag in the shape the service uses.
func (s *Server) etag(now time.Time) string {
	s.etagSeq++
	return fmt.Sprintf("\"%08x-0000-0800-0000-%08x0000\"", s.etagSeq, uint32(now.Unix()))
}

// sortedEntries returns the stored referrals in a stable order (by id).
func (s *Server) sortedEntries() []*entry {
	out := make([]*entry, 0, len(s.referrals))
	for _, e := range s.referrals {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref.ID < out[j].ref.ID })
	return out
}
