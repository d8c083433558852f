// Package workspan is a plain client for the WorkSpan API
// (api.workspan.com, api-sandbox.workspan.com): external IDs and audit
// information of WorkSpan objects, bulk loads of data and opportunities
// (raw body or file upload: csv, json, xlsx) and their status, reports, and
// event subscriptions. It authenticates with an application user's client
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
	"unicode/utf8"

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

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 64 << 10

// maxBody bounds how much of a success reply is read.
const maxBody = 32 << 20

// maxDetail bounds the upstream text copied into an error's Detail.
const maxDetail = 512

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
}

// Client calls the WorkSpan API. It is safe for concurrent use.
type Client struct {
	baseURL  string
	hostName string
	http     *http.Client
	ua       string
	secret   string
	clock    clock.Clock
	tokens   *tokenSource
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
	return &Client{
		baseURL:  cfg.BaseURL,
		hostName: cfg.HostName,
		http:     cfg.HTTPClient,
		ua:       cfg.UserAgent,
		secret:   cfg.AppUserSecret,
		clock:    cfg.Clock,
		tokens:   newTokenSource(cfg),
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
}

// jsonCall returns a call whose body is v encoded as JSON.
func jsonCall(method, path string, v any) (call, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return call{}, fmt.Errorf("workspan: encode %s %s body: %w", method, path, err)
	}
	return call{method: method, path: path, body: b, contentType: "application/json"}, nil
}

// do performs one logical call and returns the body of a 2xx reply. A 401
// makes it drop the token and send the request once more with a fresh one
// (a 401 means the API rejected the request before acting on it). Nothing
// else is repeated here: whether a request may be retried is the
// transport's decision, and it only repeats reads.
func (c *Client) do(ctx context.Context, cl call) ([]byte, error) {
	u := c.baseURL + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	for attempt := 0; ; attempt++ {
		token, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, cl.method, u, nil)
		if err != nil {
			return nil, fmt.Errorf("workspan: build request: %w", err)
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

		resp, err := c.http.Do(req)
		if err != nil {
			return nil, scrubErr(err, c.secret, token)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			_ = resp.Body.Close()
			c.tokens.Invalidate(token)
			continue
		}
		return c.finish(resp, token)
	}
}

// doJSON performs cl and decodes a JSON reply into out (when out is not nil).
func (c *Client) doJSON(ctx context.Context, cl call, out any) error {
	body, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return decode(body, out)
}

// decode reads a success reply into out; an empty or malformed body is an
// *upstream.Error, as the reply is not what the API promises.
func decode(body []byte, out any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &upstream.Error{Connector: connectorName, Status: http.StatusBadGateway, Message: "empty response body"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return &upstream.Error{Connector: connectorName, Status: http.StatusBadGateway, Message: "malformed response body", Detail: truncate(err.Error())}
	}
	return nil
}

// finish reads a reply and turns a non-2xx one into an *upstream.Error.
func (c *Client) finish(resp *http.Response, token string) ([]byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, checkResponse(resp, c.clock.Now(), connectorName, c.secret, token)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("workspan: read response: %w", scrubErr(err, c.secret, token))
	}
	return body, nil
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

// checkResponse turns a non-2xx reply into an *upstream.Error labelled
// connector, with the secrets removed from everything copied from the body;
// now dates a Retry-After given as an HTTP date when the reply has no Date.
func checkResponse(resp *http.Response, now time.Time, connector string, secrets ...string) *upstream.Error {
	e := &upstream.Error{Connector: connector, Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	trimmed := bytes.TrimSpace(raw)
	var eb errorBody
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &eb) == nil {
		var detail []string
		errStr, errObj := rawError(eb.Error)
		switch {
		case eb.Message != "":
			e.Message = eb.Message
			detail = append(detail, eb.Detail, eb.ErrorDescription)
		case eb.ErrorDescription != "":
			e.Message = eb.ErrorDescription
			if errStr != "" {
				detail = append(detail, errStr)
			}
		case errObj != "":
			e.Message = errObj
		case len(eb.Errors) > 0:
			for _, x := range eb.Errors {
				m := x.Message
				if x.Field != "" {
					m = x.Field + ": " + m
				}
				if e.Message == "" {
					e.Message = m
				} else {
					detail = append(detail, m)
				}
			}
		case errStr != "":
			e.Message = errStr
		}
		if e.Message == "" {
			e.Message = eb.Detail
		}
		if c := codeString(eb.Code); c != "" {
			detail = append(detail, "code "+c)
		}
		e.Detail = truncate(joinNonEmpty(detail, "; "))
	} else if len(trimmed) > 0 && trimmed[0] != '<' && utf8.Valid(trimmed) {
		// A plain-text reply (a gateway's, say) is the best explanation there is.
		e.Detail = truncate(strings.Join(strings.Fields(string(trimmed)), " "))
	}
	e.Message = truncate(scrub(e.Message, secrets...))
	e.Detail = scrub(e.Detail, secrets...)
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter, _ = upstream.RetryAfter(resp.Header, now)
	}
	return e
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

// scrub removes secrets (of at least 4 bytes) from text bound for an error.
func scrub(text string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	return text
}

// scrubErr keeps an error's chain (timeouts, throttling) while removing
// secrets from its text.
func scrubErr(err error, secrets ...string) error {
	msg := err.Error()
	if clean := scrub(msg, secrets...); clean != msg {
		return &scrubbedError{msg: clean, err: err}
	}
	return err
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
