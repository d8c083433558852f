// Package pipedrive is a plain client for the Pipedrive REST API: API v2
// where it exists (deals, deal fields, stages, pipelines, activities,
// persons, organizations, search) and v1 only where v2 has no equivalent (users,
// activity types). It knows nothing of MCP.
package pipedrive

import (
	"bytes"
	"context"
	"encoding/json"
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

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 64 << 10

// Client calls the Pipedrive API with one API token.
type Client struct {
	baseURL string
	token   string
	http    *http.Client
	ua      string
	clock   clock.Clock
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

// New returns a client that authenticates with the given API token.
func New(token string, opts ...Option) *Client {
	c := &Client{baseURL: DefaultBaseURL, token: token, http: &http.Client{Timeout: 30 * time.Second}, ua: "cosell-mcp", clock: clock.Real()}
	for _, o := range opts {
		o(c)
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

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := &Response{StatusCode: resp.StatusCode, RateLimit: parseRateLimit(resp.Header)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return r, checkResponse(resp, c.clock.Now())
	}
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return r, &upstream.Error{Connector: connectorName, Status: resp.StatusCode, Message: "malformed response body: " + err.Error()}
	}
	if !env.Success {
		return r, &upstream.Error{Connector: connectorName, Status: http.StatusBadGateway, Message: nonEmpty(env.Error, "request was not successful"), Detail: env.ErrorInfo}
	}
	if len(env.AdditionalData) > 0 && env.AdditionalData[0] == '{' {
		var cd cursorData
		if json.Unmarshal(env.AdditionalData, &cd) == nil && cd.NextCursor != nil {
			r.NextCursor = *cd.NextCursor
		}
	}
	if out != nil && len(env.Data) > 0 && string(env.Data) != "null" {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return r, &upstream.Error{Connector: connectorName, Status: resp.StatusCode, Message: "unexpected data shape: " + err.Error()}
		}
	}
	return r, nil
}

// checkResponse turns a non-2xx reply into an *upstream.Error; now dates a
// Retry-After given as an HTTP date when the reply has no Date.
func checkResponse(resp *http.Response, now time.Time) error {
	e := &upstream.Error{Connector: connectorName, Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var env envelope
	if json.Unmarshal(raw, &env) == nil {
		e.Message, e.Detail = env.Error, env.ErrorInfo
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter, _ = upstream.RetryAfter(resp.Header, now)
		if e.RetryAfter == 0 {
			if rl := parseRateLimit(resp.Header); rl.Reset > 0 {
				e.RetryAfter = rl.Reset
			}
		}
	}
	return e
}

func parseRateLimit(h http.Header) RateLimit {
	atoi := func(k string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(h.Get(k)))
		return n
	}
	return RateLimit{
		Limit:     atoi("x-ratelimit-limit"),
		Remaining: atoi("x-ratelimit-remaining"),
		Reset:     time.Duration(atoi("x-ratelimit-reset")) * time.Second,
	}
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
