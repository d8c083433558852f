package workspan

import (
	"context"
	"fmt"
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

// maxTokenReply bounds a token endpoint's reply.
const maxTokenReply = 256 << 10

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
	// replies reads the token endpoint's replies; its Redactor knows the
	// secret and every access token obtained, and the API client shares it.
	replies *upstream.Reader
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
	s.replies = &upstream.Reader{
		Connector:    authConnectorName,
		MaxBody:      maxTokenReply,
		MaxErrorBody: maxTokenReply,
		Clock:        cfg.Clock,
		Redactor:     upstream.NewRedactor(cfg.AppUserSecret),
		ParseError:   parseError,
	}
	s.cache = tokencache.New(s.fetch, s.clock)
	return s
}

// Token returns a cached token or waits for a fresh one.
func (s *tokenSource) Token(ctx context.Context) (string, error) { return s.cache.Token(ctx) }

// Invalidate drops the cached token if it is still token.
func (s *tokenSource) Invalidate(token string) { s.cache.Invalidate(token) }

func (s *tokenSource) fetch(ctx context.Context) (string, time.Time, error) {
	token, useUntil, err := s.request(ctx)
	if err == nil {
		s.replies.Redactor.AddRecent(token)
	}
	return token, useUntil, err
}

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

	red := s.replies.Redactor
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, strings.NewReader(body))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: build token request: %w", authConnectorName, red.RedactError(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-ws-env", s.hostName)
	req.Header.Set("User-Agent", s.ua)
	start := s.clock.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: token request: %w", authConnectorName, red.RedactError(err))
	}
	if err := s.replies.Check(resp); err != nil {
		return "", time.Time{}, err
	}
	var tr tokenReply
	if err := s.replies.DecodeRaw(resp, &tr); err != nil || tr.AccessToken == "" {
		msg := "token endpoint replied without an access token"
		if err == nil && (tr.Error != "" || tr.ErrorDescription != "" || tr.Message != "") {
			msg = joinNonEmpty([]string{tr.ErrorDescription, tr.Message, tr.Error}, "; ")
		}
		return "", time.Time{}, s.replies.NewError(http.StatusBadGateway, msg, "")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", time.Time{}, s.replies.NewError(http.StatusBadGateway, "token endpoint replied with unsupported token type "+strconv.Quote(upstream.Truncate(tr.TokenType, 40)), "")
	}
	life := upstream.Seconds(int64(tr.ExpiresIn))
	if life <= 0 {
		life = defaultTokenLife
	}
	return tr.AccessToken, tokencache.UseUntil(start, life), nil
}
