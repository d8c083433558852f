package workspan

import (
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
	"github.com/cosell-mcp/cosell-mcp/internal/tokencache"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// authConnectorName labels errors from the token endpoint.
const authConnectorName = "workspan-auth"

// defaultTokenLife is assumed when the token reply carries no expires_in.
const defaultTokenLife = 5 * time.Minute

// tokenSource gets bearer tokens from {BaseURL}/oauth/token with the
// application user's client credentials, caches them until 2 minutes
// before they expire, and lets concurrent callers share one request.
type tokenSource struct {
	tokenURL string
	hostName string
	userID   string
	secret   string
	http     *http.Client
	clock    clock.Clock
	ua       string

	cache *tokencache.Cache
}

func newTokenSource(cfg Config) *tokenSource {
	s := &tokenSource{
		tokenURL: cfg.BaseURL + "/oauth/token?x-ws-env=" + url.QueryEscape(cfg.HostName),
		hostName: cfg.HostName,
		userID:   cfg.AppUserID,
		secret:   cfg.AppUserSecret,
		http:     cfg.TokenHTTPClient,
		clock:    cfg.Clock,
		ua:       cfg.UserAgent,
	}
	s.cache = tokencache.New(s.fetch, s.clock)
	return s
}

// Token returns a cached token or waits for a fresh one.
func (s *tokenSource) Token(ctx context.Context) (string, error) { return s.cache.Token(ctx) }

// Invalidate drops the cached token if it is still token.
func (s *tokenSource) Invalidate(token string) { s.cache.Invalidate(token) }

func (s *tokenSource) fetch(ctx context.Context) (string, time.Time, error) { return s.request(ctx) }

// tokenReply is the token endpoint's reply, success or error.
type tokenReply struct {
	AccessToken      string             `json:"access_token"`
	TokenType        string             `json:"token_type"`
	ExpiresIn        upstream.FlexInt64 `json:"expires_in"`
	RefreshToken     string             `json:"refresh_token"`
	Error            string             `json:"error"`
	ErrorDescription string             `json:"error_description"`
	Message          string             `json:"message"`
}

// request performs one token request.
func (s *tokenSource) request(ctx context.Context) (string, time.Time, error) {
	if s.userID == "" || s.secret == "" {
		return "", time.Time{}, &upstream.Error{Connector: authConnectorName, Status: http.StatusUnauthorized, Message: "no application user id and secret configured"}
	}
	form := url.Values{}
	form.Set("grant_type", "client_credentials")
	form.Set("client_id", s.userID)
	form.Set("client_secret", s.secret)
	form.Set("operation", "token")
	body := form.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, strings.NewReader(body))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: build token request: %w", authConnectorName, scrubErr(err, s.secret))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-ws-env", s.hostName)
	req.Header.Set("User-Agent", s.ua)
	start := s.clock.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: token request: %w", authConnectorName, scrubErr(err, s.secret))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", time.Time{}, checkResponse(resp, s.clock.Now(), authConnectorName, s.secret)
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var tr tokenReply
	if err := json.Unmarshal(raw, &tr); err != nil || tr.AccessToken == "" {
		msg := "token endpoint replied without an access token"
		if tr.Error != "" || tr.ErrorDescription != "" || tr.Message != "" {
			msg = scrub(joinNonEmpty([]string{tr.ErrorDescription, tr.Message, tr.Error}, "; "), s.secret)
		}
		return "", time.Time{}, &upstream.Error{Connector: authConnectorName, Status: http.StatusBadGateway, Message: truncate(msg)}
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", time.Time{}, &upstream.Error{Connector: authConnectorName, Status: http.StatusBadGateway, Message: "token endpoint replied with unsupported token type " + strconv.Quote(truncate(tr.TokenType))}
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = defaultTokenLife
	}
	return tr.AccessToken, tokencache.UseUntil(start, life), nil
}
