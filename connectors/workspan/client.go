// Package workspan is a plain client for the WorkSpan API
// (api.workspan.com, api-sandbox.workspan.com): external IDs and audit
// information of WorkSpan objects, bulk loads of data and opportunities
// (raw body or file upload: csv, json, xlsx) and their status, reports,
// integrations and the schema of their objects, and event subscriptions. It authenticates with an application user's client
// credentials and sends the x-ws-env header WorkSpan selects the tenant by.
// It knows nothing of MCP.
package workspan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// Base URLs of the two WorkSpan API environments (the connector's token:env
// connection parameter).
const (
	SandboxURL    = "https://api-sandbox.workspan.com"
	ProductionURL = "https://api.workspan.com"
)

// connectorName labels errors from API calls.
const connectorName = "workspan"

// ErrInvalidArgument marks a request the client refused before sending it.
var ErrInvalidArgument = errors.New("workspan: invalid argument")

// EnvironmentURL returns the API base URL of an environment: "sandbox" or
// "production" (case-insensitive).
func EnvironmentURL(env string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "sandbox":
		return SandboxURL, nil
	case "production":
		return ProductionURL, nil
	}
	return "", fmt.Errorf("%w: unknown environment %q (want sandbox or production)", ErrInvalidArgument, env)
}

// Config configures a Client.
type Config struct {
	// BaseURL is the API root, SandboxURL or ProductionURL (default
	// ProductionURL), or a fake's address in tests.
	BaseURL string
	// HostName is the WorkSpan application host sent as x-ws-env on every
	// request, e.g. "app.workspan.com" or "demo.workspan.com" (no scheme).
	HostName string
	// AppUserID and AppUserSecret are the application user's client
	// credentials. The secret never appears in an error.
	AppUserID     string
	AppUserSecret string
	// HTTPClient sends API calls, typically one whose transport spends the
	// connection's throttle budget (default: a client with a 60 s timeout).
	HTTPClient *http.Client
	// TokenHTTPClient sends token requests (default: a client with a 30 s
	// timeout).
	TokenHTTPClient *http.Client
	// Clock tells token expiry and Retry-After dates (nil: the real clock).
	Clock clock.Clock
	// UserAgent is the User-Agent header (default "cosell-mcp").
	UserAgent string
	// MaxBody bounds a success reply (default upstream.DefaultMaxBody, 16
	// MiB); a bigger one is refused with an *upstream.BodyError.
	MaxBody int64
}

// Client calls the WorkSpan API. It is safe for concurrent use.
type Client struct {
	baseURL  string
	hostName string
	http     *http.Client
	ua       string
	clock    clock.Clock
	tokens   *tokenSource
	// replies reads every API reply; its Redactor is the token source's,
	// which knows the application user's secret and every access token.
	replies *upstream.Reader
}

// New returns a client for cfg.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = ProductionURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.TokenHTTPClient == nil {
		cfg.TokenHTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cosell-mcp"
	}
	tokens := newTokenSource(cfg)
	return &Client{
		baseURL:  cfg.BaseURL,
		hostName: cfg.HostName,
		http:     cfg.HTTPClient,
		ua:       cfg.UserAgent,
		clock:    cfg.Clock,
		tokens:   tokens,
		replies: &upstream.Reader{
			Connector:  connectorName,
			MaxBody:    cfg.MaxBody,
			Clock:      cfg.Clock,
			Redactor:   tokens.replies.Redactor,
			ParseError: parseError,
		},
	}
}

// BaseURL returns the API root the client talks to.
func (c *Client) BaseURL() string { return c.baseURL }

// HostName returns the x-ws-env value the client sends.
func (c *Client) HostName() string { return c.hostName }

// call is one logical API call.
type call struct {
	method string
	path   string // escaped path below the base URL
	query  url.Values
	// body is sent as is with contentType; nil means no body.
	body        []byte
	contentType string
	// read marks a POST that only reads (the report endpoints): like a
	// GET, its failure never says that a change may have been applied.
	read bool
}

// effect is the method as far as repeating the call goes: GET for a call
// that only reads, whatever its method.
func (cl call) effect() string {
	if cl.read {
		return http.MethodGet
	}
	return cl.method
}

// jsonCall returns a call whose body is v encoded as JSON.
func jsonCall(method, path string, v any) (call, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return call{}, fmt.Errorf("workspan: encode %s %s body: %w", method, path, err)
	}
	return call{method: method, path: path, body: b, contentType: "application/json"}, nil
}

// do performs one logical call and returns its 2xx reply with the body
// unread: decode it through c.replies, which bounds, redacts and closes
// it. A non-2xx reply is an *upstream.Error. A 401 makes it drop the token
// and send the request once more with a fresh one (a 401 means the API
// rejected the request before acting on it). Nothing else is repeated
// here: whether a request may be retried is the transport's decision, and
// it only repeats reads.
//
// The error of a write that reached, or may have reached, WorkSpan (a
// reply, or a transport failure after the request started to go out) is
// an *upstream.SentError, see upstream.OutcomeUnknown; one that never left
// (no token, no connection, a refusal by the throttle budget) is not.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	u := c.baseURL + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	red := c.replies.Redactor
	for attempt := 0; ; attempt++ {
		token, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, red.RedactError(err)
		}
		red.AddRecent(token)
		req, err := http.NewRequestWithContext(ctx, cl.method, u, nil)
		if err != nil {
			return nil, fmt.Errorf("workspan: build request: %w", red.RedactError(err))
		}
		if cl.body != nil {
			payload := cl.body
			req.Body = io.NopCloser(bytes.NewReader(payload))
			req.ContentLength = int64(len(payload))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
			req.Header.Set("Content-Type", cl.contentType)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("x-ws-env", c.hostName)
		req.Header.Set("User-Agent", c.ua)

		// Tracked per attempt: a 401 is a refusal, so only the last
		// attempt decides whether the write may have been carried out.
		var sent *upstream.Tracker
		if !upstream.Safe(cl.effect()) {
			req, sent = upstream.Track(req)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			err = red.RedactError(err)
			if sent != nil {
				err = sent.Wrap(err)
			}
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			upstream.Discard(resp)
			c.tokens.Invalidate(token)
			continue
		}
		if err := c.replies.Check(resp); err != nil {
			return nil, upstream.Sent(cl.effect(), err)
		}
		return resp, nil
	}
}

// doJSON performs cl and decodes a JSON reply into out (when out is not
// nil; the reply is then discarded). An empty or malformed body is an
// *upstream.BodyError, as the reply is not what the API promises (for a
// write, wrapped in an *upstream.SentError: it was carried out).
func (c *Client) doJSON(ctx context.Context, cl call, out any) error {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	if out == nil {
		upstream.Discard(resp)
		return nil
	}
	return upstream.Sent(cl.effect(), c.replies.DecodeJSON(resp, out))
}

// errorBody covers the error shapes WorkSpan and its gateway use:
// {"message"}, {"error", "error_description"} (OAuth) and
// {"errors": [{"message"}]}.
type errorBody struct {
	Message          string          `json:"message"`
	Detail           string          `json:"detail"`
	Code             json.RawMessage `json:"code"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
	Errors           []struct {
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"errors"`
}

// parseError reads WorkSpan's error shapes (errorBody) into a message and
// a detail.
func parseError(_ int, body []byte) (message, detail string) {
	var eb errorBody
	if body[0] != '{' || json.Unmarshal(body, &eb) != nil {
		return "", ""
	}
	var parts []string
	errStr, errObj := rawError(eb.Error)
	switch {
	case eb.Message != "":
		message = eb.Message
		parts = append(parts, eb.Detail, eb.ErrorDescription)
	case eb.ErrorDescription != "":
		message = eb.ErrorDescription
		if errStr != "" {
			parts = append(parts, errStr)
		}
	case errObj != "":
		message = errObj
	case len(eb.Errors) > 0:
		for _, x := range eb.Errors {
			m := x.Message
			if x.Field != "" {
				m = x.Field + ": " + m
			}
			if message == "" {
				message = m
			} else {
				parts = append(parts, m)
			}
		}
	case errStr != "":
		message = errStr
	}
	if message == "" {
		message = eb.Detail
	}
	if c := codeString(eb.Code); c != "" {
		parts = append(parts, "code "+c)
	}
	return message, joinNonEmpty(parts, "; ")
}

// rawError reads an "error" member given either as a string (OAuth style)
// or as an object with a message.
func rawError(raw json.RawMessage) (str, objMessage string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", ""
	}
	if json.Unmarshal(raw, &str) == nil {
		return str, ""
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return "", obj.Message
	}
	return "", ""
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
	return ""
}

func joinNonEmpty(parts []string, sep string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
