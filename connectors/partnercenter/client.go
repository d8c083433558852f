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

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 64 << 10

// maxBody bounds how much of a success reply is read.
const maxBody = 32 << 20

// maxDetail bounds the upstream text copied into an error's Detail.
const maxDetail = 512

// Client calls the Partner Center Referrals API.
type Client struct {
	baseURL string
	tokens  TokenSource
	http    *http.Client
	ua      string
	clock   clock.Clock
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

// New returns a client that authenticates with tokens from ts.
func New(ts TokenSource, opts ...Option) *Client {
	c := &Client{baseURL: DefaultBaseURL, tokens: ts, http: &http.Client{Timeout: 60 * time.Second}, ua: "cosell-mcp", clock: clock.Real()}
	for _, o := range opts {
		o(c)
	}
	return c
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

// reply is a 2xx answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// do performs one logical call. A 401 makes it drop the token (when the
// TokenSource is an Invalidator) and send the request once more with a fresh
// one; the correlation and request ids stay the same.
func (c *Client) do(ctx context.Context, cl call) (*reply, error) {
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
			return nil, err
		}
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

		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if inv, ok := c.tokens.(Invalidator); ok {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
				_ = resp.Body.Close()
				inv.Invalidate(token)
				continue
			}
		}
		return c.finish(resp)
	}
}

// finish reads a reply and turns a non-2xx one into an *upstream.Error.
func (c *Client) finish(resp *http.Response) (*reply, error) {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, checkResponse(resp, c.clock.Now())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("partnercenter: read response: %w", err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
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

// checkResponse turns a non-2xx reply into an *upstream.Error; now dates a
// Retry-After given as an HTTP date when the reply has no Date.
func checkResponse(resp *http.Response, now time.Time) error {
	e := &upstream.Error{Connector: connectorName, Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb errorBody
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &eb) == nil {
		var detail []string
		if eb.Error != nil {
			e.Message = eb.Error.Message
			if c := codeString(eb.Error.Code); c != "" {
				detail = append(detail, "code "+c)
			}
			if eb.Error.Target != "" {
				detail = append(detail, "target "+eb.Error.Target)
			}
		} else {
			e.Message = nonEmpty(eb.Description, eb.Message)
			if c := codeString(eb.Code); c != "" {
				detail = append(detail, "code "+c)
			}
			if eb.Source != "" {
				detail = append(detail, "source "+eb.Source)
			}
			if d := bytes.TrimSpace(eb.Data); len(d) > 0 && !bytes.Equal(d, []byte("[]")) && !bytes.Equal(d, []byte("{}")) && !bytes.Equal(d, []byte("null")) {
				detail = append(detail, "data "+truncate(string(d)))
			}
		}
		e.Detail = strings.Join(detail, "; ")
	} else if len(trimmed) > 0 && trimmed[0] != '<' && utf8.Valid(trimmed) {
		// A plain-text reply (a gateway's, say) is the best explanation there is.
		e.Detail = truncate(strings.Join(strings.Fields(string(trimmed)), " "))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter, _ = upstream.RetryAfter(resp.Header, now)
	}
	return e
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
