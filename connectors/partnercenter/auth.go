package partnercenter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/tokencache"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// DefaultScope is the Partner Center API scope of the Microsoft identity
// platform (v2.0 token endpoint).
const DefaultScope = "https://api.partner.microsoft.com/.default"

// authConnectorName labels errors from the token endpoint.
const authConnectorName = "partnercenter-auth"

// TenantTokenURL returns the v2.0 token endpoint of an Entra ID tenant (an id
// or a domain such as "contoso.onmicrosoft.com").
func TenantTokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// TokenSource supplies the bearer token of every API request.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Invalidator is implemented by token sources that cache. The client calls
// Invalidate with a token the API answered 401 to, then asks for a fresh
// token and retries the request once.
type Invalidator interface {
	// Invalidate drops the cached token if it is still token.
	Invalidate(token string)
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

// StaticToken returns a TokenSource that always yields token.
func StaticToken(token string) TokenSource { return staticToken(token) }

// OAuthConfig configures NewOAuthTokenSource.
type OAuthConfig struct {
	// TokenURL is the OAuth 2.0 token endpoint, e.g. TenantTokenURL(tenant).
	TokenURL     string
	ClientID     string
	ClientSecret string
	// RefreshToken selects the refresh_token grant (app + user, as the
	// referrals API requires); without it the client_credentials grant is
	// used. A rotated refresh token in a reply replaces it.
	RefreshToken string
	// Scope defaults to DefaultScope.
	Scope string
	// HTTPClient sends token requests (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Clock tells token expiry and Retry-After dates (nil: the real clock).
	Clock clock.Clock
}

// oauthSource is the TokenSource of NewOAuthTokenSource.
type oauthSource struct {
	cfg   OAuthConfig
	cache *tokencache.Cache

	mu      sync.Mutex
	refresh string // the current refresh token; the endpoint may rotate it
}

// NewOAuthTokenSource returns a TokenSource that gets tokens from an OAuth
// 2.0 token endpoint, caches them until 2 minutes before they expire, and
// lets concurrent callers share one request. It implements Invalidator.
// Errors are *upstream.Error with Connector "partnercenter-auth"; they never
// carry the client secret or the refresh token.
func NewOAuthTokenSource(cfg OAuthConfig) TokenSource {
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	s := &oauthSource{cfg: cfg, refresh: cfg.RefreshToken}
	s.cache = tokencache.New(s.fetch, cfg.Clock)
	return s
}

// Token returns a cached token or waits for a fresh one.
func (s *oauthSource) Token(ctx context.Context) (string, error) { return s.cache.Token(ctx) }

// Invalidate drops the cached token if it is still token.
func (s *oauthSource) Invalidate(token string) { s.cache.Invalidate(token) }

// fetch requests a token and keeps a rotated refresh token.
func (s *oauthSource) fetch(ctx context.Context) (string, time.Time, error) {
	s.mu.Lock()
	refresh := s.refresh
	s.mu.Unlock()
	token, useUntil, rotated, err := s.request(ctx, refresh)
	if err == nil && rotated != "" {
		s.mu.Lock()
		s.refresh = rotated
		s.mu.Unlock()
	}
	return token, useUntil, err
}

// tokenReply is a token endpoint's reply, success or error.
type tokenReply struct {
	AccessToken      string             `json:"access_token"`
	TokenType        string             `json:"token_type"`
	ExpiresIn        upstream.FlexInt64 `json:"expires_in"`
	RefreshToken     string             `json:"refresh_token"`
	Error            string             `json:"error"`
	ErrorDescription string             `json:"error_description"`
}

// request performs one token request.
func (s *oauthSource) request(ctx context.Context, refresh string) (token string, expiry time.Time, rotated string, err error) {
	if s.cfg.TokenURL == "" {
		return "", time.Time{}, "", &upstream.Error{Connector: authConnectorName, Status: http.StatusUnauthorized, Message: "no token endpoint configured"}
	}
	form := url.Values{}
	if refresh != "" {
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", refresh)
	} else {
		form.Set("grant_type", "client_credentials")
	}
	form.Set("client_id", s.cfg.ClientID)
	if s.cfg.ClientSecret != "" {
		form.Set("client_secret", s.cfg.ClientSecret)
	}
	form.Set("scope", s.cfg.Scope)
	body := form.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(body))
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("%s: build token request: %w", authConnectorName, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := s.cfg.Clock.Now()
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("%s: token request: %w", authConnectorName, s.scrubErr(err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))

	var tr tokenReply
	jsonErr := json.Unmarshal(raw, &tr)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || tr.Error != "" {
		status := resp.StatusCode
		if status < 400 {
			status = http.StatusBadGateway
		}
		e := &upstream.Error{Connector: authConnectorName, Status: status, Message: s.scrub(tr.ErrorDescription), Detail: s.scrub(tr.Error)}
		if e.Message == "" {
			e.Message, e.Detail = nonEmpty(e.Detail, http.StatusText(resp.StatusCode)), ""
		}
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			e.RetryAfter, _ = upstream.RetryAfter(resp.Header, s.cfg.Clock.Now())
		}
		return "", time.Time{}, "", e
	}
	if jsonErr != nil || tr.AccessToken == "" {
		return "", time.Time{}, "", &upstream.Error{Connector: authConnectorName, Status: http.StatusBadGateway, Message: "token endpoint replied without an access token"}
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", time.Time{}, "", &upstream.Error{Connector: authConnectorName, Status: http.StatusBadGateway, Message: "token endpoint replied with unsupported token type " + strconv.Quote(tr.TokenType)}
	}
	return tr.AccessToken, tokencache.UseUntil(start, time.Duration(tr.ExpiresIn)*time.Second), tr.RefreshToken, nil
}

// scrub removes the configured secrets from text that will reach an error.
func (s *oauthSource) scrub(text string) string {
	for _, secret := range []string{s.cfg.ClientSecret, s.cfg.RefreshToken, s.currentRefresh()} {
		if len(secret) >= 4 {
			text = strings.ReplaceAll(text, secret, "[redacted]")
		}
	}
	return text
}

func (s *oauthSource) currentRefresh() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh
}

// scrubErr keeps a transport error's chain (timeouts, throttling) while
// removing secrets from its text.
func (s *oauthSource) scrubErr(err error) error {
	msg := err.Error()
	if clean := s.scrub(msg); clean != msg {
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

var _ Invalidator = (*oauthSource)(nil)

// errNoTokenSource is returned by a client created without a TokenSource.
var errNoTokenSource = errors.New("partnercenter: no token source configured")
