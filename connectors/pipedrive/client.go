// Package pipedrive is a plain client for the Pipedrive REST API: API v2
// where it exists (deals, deal fields, stages, pipelines, activities,
// persons, organizations, search) and v1 only where v2 has no equivalent (users,
// activity types). It knows nothing of MCP.
package pipedrive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// DefaultBaseURL is Pipedrive's global API host. A company domain such as
// https://acme.pipedrive.com works as well.
const DefaultBaseURL = "https://api.pipedrive.com"

// connectorName labels errors from this client.
const connectorName = "pipedrive"

// Client calls the Pipedrive API with one API token.
type Client struct {
	baseURL string
	token   string
	http    *http.Client
	ua      string
	clock   clock.Clock
	maxBody int64
	replies *upstream.Reader
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the API host, e.g. "https://acme.pipedrive.com"; the
// "/api/v2" and "/v1" prefixes are added by the client.
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

// WithClock sets the clock of the connection (nil: the real clock, the
// default). It dates a Retry-After given as an HTTP date, and tools that
// cache the client's data tell their age by it.
func WithClock(clk clock.Clock) Option {
	return func(c *Client) { c.clock = clock.OrReal(clk) }
}

// WithMaxBody bounds a success reply (default upstream.DefaultMaxBody, 16
// MiB); a bigger one is refused with an *upstream.BodyError.
func WithMaxBody(n int64) Option {
	return func(c *Client) { c.maxBody = n }
}

// New returns a client that authenticates with the given API token. The
// token never appears in an error or a result: every reply goes through
// one upstream.Reader that redacts it.
func New(token string, opts ...Option) *Client {
	c := &Client{baseURL: DefaultBaseURL, token: token, http: &http.Client{Timeout: 30 * time.Second}, ua: "cosell-mcp", clock: clock.Real()}
	for _, o := range opts {
		o(c)
	}
	c.replies = &upstream.Reader{
		Connector:  connectorName,
		MaxBody:    c.maxBody,
		Clock:      c.clock,
		Redactor:   upstream.NewRedactor(token),
		ParseError: parseError,
		RetryHint:  rateLimitReset,
	}
	return c
}

// BaseURL returns the API host the client talks to.
func (c *Client) BaseURL() string { return c.baseURL }

// Clock returns the client's clock (see WithClock).
func (c *Client) Clock() clock.Clock { return c.clock }

// RateLimit is what Pipedrive's x-ratelimit-* headers said on the last reply.
type RateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Duration
}

// Response carries paging and rate-limit facts of one reply.
type Response struct {
	StatusCode int
	// NextCursor is the v2 cursor of the next page; empty at the end.
	NextCursor string
	RateLimit  RateLimit
}

// envelope is Pipedrive's reply wrapper, shared by v1 and v2.
type envelope struct {
	Success        bool            `json:"success"`
	Data           json.RawMessage `json:"data"`
	AdditionalData json.RawMessage `json:"additional_data"`
	Error          string          `json:"error"`
	ErrorInfo      string          `json:"error_info"`
}

type cursorData struct {
	NextCursor *string `json:"next_cursor"`
}

// do performs one request and decodes the envelope's data into out.
//
// The error of a write that reached, or may have reached, Pipedrive (any
// reply, or a transport failure after the request started to go out) is
// an *upstream.SentError, see upstream.OutcomeUnknown; one that never left
// (no connection, a refusal by the throttle budget) is not. A write whose
// 2xx reply carries no data where out asks for some is a BodyEmpty
// *upstream.BodyError: it was carried out, but its result is not known.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, out any) (*Response, error) {
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("pipedrive: encode %s %s: %w", method, path, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("pipedrive: build request: %w", err)
	}
	if payload != nil {
		req.Body = io.NopCloser(bytes.NewReader(payload))
		req.ContentLength = int64(len(payload))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-api-token", c.token)
	req.Header.Set("User-Agent", c.ua)

	req, sent := upstream.Track(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, sent.Wrap(c.replies.Redactor.RedactError(err))
	}
	r, err := c.read(method, resp, out)
	return r, upstream.Sent(method, err)
}

// read checks a reply and decodes the envelope's data into out.
func (c *Client) read(method string, resp *http.Response, out any) (*Response, error) {
	r := &Response{StatusCode: resp.StatusCode, RateLimit: parseRateLimit(resp.Header)}
	if err := c.replies.Check(resp); err != nil {
		return r, err
	}
	// The envelope streams in through the bounded reader; its data is
	// decoded into out below, and only out reaches a caller.
	var env envelope
	if err := c.replies.DecodeRaw(resp, &env); err != nil {
		return r, err
	}
	if !env.Success {
		// A 2xx that says it failed contradicts itself: for a write, the
		// 502 makes its outcome unknown (upstream.OutcomeUnknown).
		return r, c.replies.NewError(http.StatusBadGateway, nonEmpty(env.Error, "request was not successful"), env.ErrorInfo)
	}
	if len(env.AdditionalData) > 0 && env.AdditionalData[0] == '{' {
		var cd cursorData
		if json.Unmarshal(env.AdditionalData, &cd) == nil && cd.NextCursor != nil {
			r.NextCursor = c.replies.Redact(*cd.NextCursor)
		}
	}
	if out != nil && len(env.Data) > 0 && string(env.Data) != "null" {
		if err := c.replies.DecodeBytes(resp.StatusCode, env.Data, out); err != nil {
			return r, err
		}
	} else if out != nil && !upstream.Safe(method) {
		return r, &upstream.BodyError{Connector: connectorName, Status: resp.StatusCode, Kind: upstream.BodyEmpty, Err: errors.New("the reply has no data")}
	}
	return r, nil
}

// parseError reads Pipedrive's error envelope {"success": false, "error",
// "error_info"}.
func parseError(_ int, body []byte) (message, detail string) {
	var env struct {
		envelope
		// Message is where a gateway in front of the API (Power Platform's
		// 429 "Rate limit is exceeded…") puts its reason.
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &env) == nil {
		if env.Error == "" {
			return env.Message, env.ErrorInfo
		}
		return env.Error, env.ErrorInfo
	}
	return "", ""
}

// rateLimitReset is the wait x-ratelimit-reset announces.
func rateLimitReset(h http.Header) (time.Duration, bool) {
	d, ok := upstream.ParseDelaySeconds(h.Get("x-ratelimit-reset"))
	return d, ok && d > 0
}

func parseRateLimit(h http.Header) RateLimit {
	atoi := func(k string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(h.Get(k)))
		return n
	}
	return RateLimit{
		Limit:     atoi("x-ratelimit-limit"),
		Remaining: atoi("x-ratelimit-remaining"),
		Reset:     resetOf(h),
	}
}

func resetOf(h http.Header) time.Duration {
	d, _ := upstream.ParseDelaySeconds(h.Get("x-ratelimit-reset"))
	return d
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// query is a small builder for optional query parameters.
type query url.Values

func (q query) str(k, v string) {
	if v != "" {
		url.Values(q).Set(k, v)
	}
}

func (q query) id(k string, v int64) {
	if v != 0 {
		url.Values(q).Set(k, strconv.FormatInt(v, 10))
	}
}

func (q query) num(k string, v int) {
	if v != 0 {
		url.Values(q).Set(k, strconv.Itoa(v))
	}
}

func (q query) boolean(k string, v *bool) {
	if v != nil {
		url.Values(q).Set(k, strconv.FormatBool(*v))
	}
}

func (q query) time(k string, t time.Time) {
	if !t.IsZero() {
		url.Values(q).Set(k, t.UTC().Format(time.RFC3339))
	}
}

func idPath(prefix string, id int64) string {
	return prefix + "/" + strconv.FormatInt(id, 10)
}
