// Package partnercenter is a plain client for the Partner Center Referrals
// API (https://api.partner.microsoft.com/v1.0/engagements/referrals): list,
// read, create and update referrals and their deal registrations, with the
// headers Partner Center expects and the referral state rules. It knows
// nothing of MCP.
package partnercenter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// DefaultBaseURL is the engagements root of the Partner Center API; the
// client calls {base}/referrals and {base}/referrals/{id}.
const DefaultBaseURL = "https://api.partner.microsoft.com/v1.0/engagements"

// CallerID is the X-Caller-Id the Partner Center Referrals connector sends on
// every request.
const CallerID = "60858c1b-2062-40ad-b42c-996b6b5b047d"

// connectorName labels errors from this client.
const connectorName = "partnercenter"

// maxDetail bounds each part of the upstream text copied into an error's
// Detail (the whole is bounded by the upstream.Reader).
const maxDetail = 512

// Client calls the Partner Center Referrals API.
type Client struct {
	baseURL string
	tokens  TokenSource
	http    *http.Client
	ua      string
	clock   clock.Clock
	maxBody int64
	// replies reads every reply; its Redactor knows every token the
	// client sent and the token source's secrets.
	replies *upstream.Reader
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the engagements root, e.g. a sandbox's
// "http://127.0.0.1:8080/v1.0/engagements".
func WithBaseURL(u string) Option {
	return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") }
}

// WithHTTPClient sets the HTTP client, typically one whose transport spends
// the connection's throttle budget.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http = h }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.ua = ua }
}

// WithClock sets the clock that dates a Retry-After given as an HTTP date
// (nil: the real clock, the default).
func WithClock(clk clock.Clock) Option {
	return func(c *Client) { c.clock = clock.OrReal(clk) }
}

// WithMaxBody bounds a success reply (default upstream.DefaultMaxBody, 16
// MiB); a bigger one is refused with an *upstream.BodyError.
func WithMaxBody(n int64) Option {
	return func(c *Client) { c.maxBody = n }
}

// New returns a client that authenticates with tokens from ts. No
// credential (a token it sent, or the secrets of a token source from
// NewOAuthTokenSource) appears in an error or a result: every reply goes
// through one upstream.Reader that redacts them.
func New(ts TokenSource, opts ...Option) *Client {
	c := &Client{baseURL: DefaultBaseURL, tokens: ts, http: &http.Client{Timeout: 60 * time.Second}, ua: "cosell-mcp", clock: clock.Real()}
	for _, o := range opts {
		o(c)
	}
	red := upstream.NewRedactor()
	if rs, ok := ts.(redacting); ok {
		red.Link(rs.Redactor())
	}
	c.replies = &upstream.Reader{Connector: connectorName, MaxBody: c.maxBody, Clock: c.clock, Redactor: red, ParseError: parseError}
	return c
}

// redacting is implemented by token sources that hold secrets besides the
// tokens they hand out (a client secret, a refresh token).
type redacting interface {
	Redactor() *upstream.Redactor
}

// BaseURL returns the engagements root the client talks to.
func (c *Client) BaseURL() string { return c.baseURL }

type ctxKey int

const (
	correlationKey ctxKey = iota
	requestIDKey
)

// WithCorrelationID returns a context whose calls send id as
// MS-CorrelationId; otherwise each call gets a new one.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// WithRequestID returns a context whose write calls send id as MS-RequestId,
// so that a caller retrying a logical operation is de-duplicated upstream;
// otherwise each write call gets a new one (kept across the transport's own
// retries).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

func fromCtx(ctx context.Context, k ctxKey) string {
	s, _ := ctx.Value(k).(string)
	return s
}

// NewGUID returns a random (version 4) GUID in its canonical form.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// call is one logical API call.
type call struct {
	method    string
	url       string
	body      any
	requestID string
	ifMatch   string
	prefer    string
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// do performs one logical call and returns its 2xx reply with the body
// unread: decode it through c.replies, which bounds, redacts and closes it
// (a write's decode error goes through upstream.Sent). A non-2xx reply is an
// *upstream.Error. A 401 makes it drop the token (when the TokenSource is an
// Invalidator) and send the request once more with a fresh one; the
// correlation and request ids stay the same.
//
// The error of a write that reached, or may have reached, Partner Center
// (a reply, or a transport failure after the request started to go out) is
// an *upstream.SentError; one that never left (no token, no connection, a
// refusal by the throttle budget) is not.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	if c.tokens == nil {
		return nil, errNoTokenSource
	}
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("partnercenter: encode %s body: %w", cl.method, err)
		}
	}
	corr := fromCtx(ctx, correlationKey)
	if corr == "" {
		corr = NewGUID()
	}
	reqID := ""
	if isWrite(cl.method) {
		reqID = cl.requestID
		if reqID == "" {
			reqID = fromCtx(ctx, requestIDKey)
		}
		if reqID == "" {
			reqID = NewGUID()
		}
	}
	for attempt := 0; ; attempt++ {
		token, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, c.replies.Redactor.RedactError(err)
		}
		c.replies.Redactor.AddRecent(token)
		req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, nil)
		if err != nil {
			return nil, fmt.Errorf("partnercenter: build request: %w", err)
		}
		if payload != nil {
			req.Body = io.NopCloser(bytes.NewReader(payload))
			req.ContentLength = int64(len(payload))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
		}
		h := req.Header
		h.Set("Accept", "application/json")
		// The connector definition declares content-type on every
		// operation, reads included.
		h.Set("Content-Type", "application/json")
		h.Set("Authorization", "Bearer "+token)
		h.Set("X-Caller-Id", CallerID)
		h.Set("MS-CorrelationId", corr)
		if reqID != "" {
			h.Set("MS-RequestId", reqID)
		}
		if cl.ifMatch != "" {
			h.Set("If-Match", cl.ifMatch)
		}
		if cl.prefer != "" {
			h.Set("Prefer", cl.prefer)
		}
		h.Set("User-Agent", c.ua)

		// Tracked per attempt: a 401 is a refusal, so only the last
		// attempt decides whether the write may have been carried out.
		req, sent := upstream.Track(req)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, sent.Wrap(c.replies.Redactor.RedactError(err))
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if inv, ok := c.tokens.(Invalidator); ok {
				upstream.Discard(resp)
				inv.Invalidate(token)
				continue
			}
		}
		if err := c.replies.Check(resp); err != nil {
			return nil, upstream.Sent(cl.method, err)
		}
		return resp, nil
	}
}

// errorBody covers Partner Center's general error shape
// {"code", "description", "data", "source"} and the Microsoft REST
// guidelines' {"error": {"code", "message"}}.
type errorBody struct {
	Code        json.RawMessage `json:"code"`
	Description string          `json:"description"`
	Message     string          `json:"message"`
	Data        json.RawMessage `json:"data"`
	Source      string          `json:"source"`
	Error       *struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Target  string          `json:"target"`
	} `json:"error"`
}

// parseError reads Partner Center's error shapes (errorBody) into a
// message and a detail.
func parseError(_ int, body []byte) (message, detail string) {
	var eb errorBody
	if body[0] != '{' || json.Unmarshal(body, &eb) != nil {
		return "", ""
	}
	var parts []string
	if eb.Error != nil {
		message = eb.Error.Message
		if c := codeString(eb.Error.Code); c != "" {
			parts = append(parts, "code "+c)
		}
		if eb.Error.Target != "" {
			parts = append(parts, "target "+truncate(eb.Error.Target))
		}
	} else {
		message = nonEmpty(eb.Description, eb.Message)
		if c := codeString(eb.Code); c != "" {
			parts = append(parts, "code "+c)
		}
		if eb.Source != "" {
			parts = append(parts, "source "+truncate(eb.Source))
		}
		if d := bytes.TrimSpace(eb.Data); len(d) > 0 && !bytes.Equal(d, []byte("[]")) && !bytes.Equal(d, []byte("{}")) && !bytes.Equal(d, []byte("null")) {
			parts = append(parts, "data "+truncate(string(d)))
		}
	}
	return message, strings.Join(parts, "; ")
}

// codeString renders an error code given as a JSON number or string.
func codeString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return truncate(string(raw))
}

func truncate(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	cut := maxDetail
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// odataQuery builds an OData query string with literal "$" keys and values
// escaped for a query component (spaces as %20).
type odataQuery []string

func (q *odataQuery) str(k, v string) {
	if v != "" {
		*q = append(*q, k+"="+escapeQuery(v))
	}
}

func (q *odataQuery) num(k string, v int) {
	if v != 0 {
		*q = append(*q, k+"="+strconv.Itoa(v))
	}
}

func (q odataQuery) encode() string { return strings.Join(q, "&") }

func escapeQuery(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}
