package partnercenter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/tokencache"
	"github.com/cosell-mcp/cosell-mcp/internal/tokenstore"
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
	// Store, when set, keeps the OAuth state in a store every replica of a
	// cluster shares (tokenstore.Open on the cluster's PostgreSQL), under
	// StoreKey(cfg): the current refresh token and access token are read
	// from it and written to it, so a rotated refresh token survives a
	// restart, and one replica at a time redeems it while the others wait
	// and then use what it obtained. When the store cannot be reached,
	// Token fails: it never falls back to a refresh token of its own.
	// nil keeps the state in this process only.
	Store tokenstore.Store
}

// StoreKey is the key of cfg's credential in a shared Store: a hash of its
// token endpoint, client id, scope (default applied) and configured refresh
// token, so that a new refresh token (say, after a new consent) starts a new
// state. It carries neither the client secret nor the refresh token.
func StoreKey(cfg OAuthConfig) string {
	scope := cfg.Scope
	if scope == "" {
		scope = DefaultScope
	}
	h := sha256.New()
	for _, part := range []string{"partnercenter-oauth/v1", cfg.TokenURL, cfg.ClientID, scope, cfg.RefreshToken} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "partnercenter:" + hex.EncodeToString(h.Sum(nil))
}

// maxTokenReply bounds a token endpoint's reply.
const maxTokenReply = 256 << 10

// oauthSource is the TokenSource of NewOAuthTokenSource.
type oauthSource struct {
	cfg   OAuthConfig
	cache *tokencache.Cache
	// replies reads the token endpoint's replies; its Redactor knows the
	// client secret, every refresh token and the access tokens obtained.
	replies *upstream.Reader

	// key is the credential's key in cfg.Store.
	key string

	mu      sync.Mutex
	refresh string // the current refresh token without a store; the endpoint may rotate it
	// rejected are access tokens the API refused (Invalidate), newest
	// last: a stored one is not handed out again.
	rejected []string
	// pending is a state obtained from the token endpoint that may not
	// have reached cfg.Store (its commit failed): the endpoint may have
	// rotated the stored refresh token out, so the next fetch stores this
	// one if the store still holds the state it replaced.
	pending *pendingState
}

// pendingState is a state obtained from the token endpoint to replace the
// stored state of version base.
type pendingState struct {
	state tokenstore.State
	base  int64
}

// maxRejected bounds oauthSource.rejected.
const maxRejected = 8

// NewOAuthTokenSource returns a TokenSource that gets tokens from an OAuth
// 2.0 token endpoint, caches them until 2 minutes before they expire, and
// lets concurrent callers share one request. It implements Invalidator.
// Errors from the token endpoint are *upstream.Error with Connector
// "partnercenter-auth"; they never carry the client secret or the refresh
// token. With cfg.Store, the replicas of a cluster share the tokens and one
// request per renewal (see OAuthConfig.Store); a store failure is an error
// wrapping tokenstore.ErrUnavailable (or tokenstore.ErrSealed).
func NewOAuthTokenSource(cfg OAuthConfig) TokenSource {
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	s := &oauthSource{cfg: cfg, refresh: cfg.RefreshToken}
	if cfg.Store != nil {
		s.key = StoreKey(cfg)
	}
	s.replies = &upstream.Reader{
		Connector:    authConnectorName,
		MaxBody:      maxTokenReply,
		MaxErrorBody: maxTokenReply,
		Clock:        cfg.Clock,
		Redactor:     upstream.NewRedactor(cfg.ClientSecret, cfg.RefreshToken),
		ParseError:   parseTokenError,
	}
	s.cache = tokencache.New(s.fetch, cfg.Clock)
	return s
}

// Redactor knows the source's secrets: the client secret, the refresh
// tokens and the access tokens it obtained. An API client links it.
func (s *oauthSource) Redactor() *upstream.Redactor { return s.replies.Redactor }

// Token returns a cached token or waits for a fresh one.
func (s *oauthSource) Token(ctx context.Context) (string, error) { return s.cache.Token(ctx) }

// Invalidate drops the cached token if it is still token. With a store, a
// stored token equal to token is not used again either.
func (s *oauthSource) Invalidate(token string) {
	if s.cfg.Store != nil && token != "" {
		s.mu.Lock()
		if !slices.Contains(s.rejected, token) {
			if len(s.rejected) >= maxRejected {
				s.rejected = append(s.rejected[:0], s.rejected[1:]...)
			}
			s.rejected = append(s.rejected, token)
		}
		s.mu.Unlock()
	}
	s.cache.Invalidate(token)
}

// fetch requests a token and keeps a rotated refresh token.
func (s *oauthSource) fetch(ctx context.Context) (string, time.Time, error) {
	if s.cfg.Store != nil {
		return s.fetchShared(ctx)
	}
	s.mu.Lock()
	refresh := s.refresh
	s.mu.Unlock()
	token, useUntil, rotated, err := s.request(ctx, refresh)
	if err == nil {
		s.replies.Redactor.AddRecent(token)
	}
	if err == nil && rotated != "" {
		s.replies.Redactor.AddRecent(rotated)
		s.mu.Lock()
		s.refresh = rotated
		s.mu.Unlock()
	}
	return token, useUntil, err
}

// fetchShared gets the access token from the store, or refreshes it there:
// under the credential's lock, unless another replica has refreshed it
// meanwhile, it redeems the stored refresh token and stores the new tokens.
// The token cache calls it once at a time.
func (s *oauthSource) fetchShared(ctx context.Context) (string, time.Time, error) {
	s.mu.Lock()
	pending := s.pending
	s.mu.Unlock()
	if pending == nil {
		// Another replica may have refreshed already: no lock needed.
		st, err := s.cfg.Store.Load(ctx, s.key)
		if err != nil {
			return "", time.Time{}, storeError(err)
		}
		s.learn(st)
		if s.usable(st) {
			return st.AccessToken, st.Expiry, nil
		}
	}
	var (
		fnErr   error
		written *pendingState // what fn asked the store to write
	)
	st, err := s.cfg.Store.Refresh(ctx, s.key, func(cur tokenstore.State) (tokenstore.State, error) {
		s.learn(cur)
		refresh := cur.RefreshToken
		if cur.Version == 0 || refresh == "" {
			refresh = s.cfg.RefreshToken
		}
		switch {
		case pending != nil && pending.base == cur.Version:
			// The store never got the state obtained last time: it
			// replaces what is stored, whose refresh token may be spent.
			if s.usable(pending.state) {
				written = pending
				return pending.state, nil
			}
			refresh = pending.state.RefreshToken
		case s.usable(cur):
			// Another replica refreshed while we waited.
			return cur, nil
		}
		token, until, rotated, err := s.request(ctx, refresh)
		if err != nil {
			fnErr = err
			return tokenstore.State{}, err
		}
		next := tokenstore.State{RefreshToken: refresh, AccessToken: token, Expiry: until}
		if rotated != "" {
			next.RefreshToken = rotated
		}
		s.learn(next)
		written = &pendingState{state: next, base: cur.Version}
		return next, nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.pending = nil
	case written != nil:
		// The state may or may not be stored: find out next time.
		s.pending = written
	}
	if err != nil {
		if fnErr != nil && errors.Is(err, fnErr) {
			return "", time.Time{}, err
		}
		return "", time.Time{}, storeError(err)
	}
	return st.AccessToken, st.Expiry, nil
}

// usable reports whether st holds an access token to hand out: one not
// due for renewal that the API has not refused.
func (s *oauthSource) usable(st tokenstore.State) bool {
	if st.AccessToken == "" || !s.cfg.Clock.Now().Before(st.Expiry) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !slices.Contains(s.rejected, st.AccessToken)
}

// learn tells the Redactor the tokens of a state read from or written to
// the store.
func (s *oauthSource) learn(st tokenstore.State) {
	s.replies.Redactor.AddRecent(st.RefreshToken)
	s.replies.Redactor.AddRecent(st.AccessToken)
}

// storeError is the error of a token request the shared store failed.
func storeError(err error) error {
	return fmt.Errorf("%s: shared token state: %w", authConnectorName, err)
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
		return "", time.Time{}, "", fmt.Errorf("%s: token request: %w", authConnectorName, s.replies.Redactor.RedactError(err))
	}
	if !upstream.Success(resp) {
		e := s.replies.Error(resp)
		if e.Status < 400 {
			e.Status = http.StatusBadGateway
		}
		return "", time.Time{}, "", e
	}
	var tr tokenReply
	if err := s.replies.DecodeRaw(resp, &tr); err != nil {
		var be *upstream.BodyError
		kind := ""
		if errors.As(err, &be) {
			kind = "reply " + string(be.Kind)
		}
		return "", time.Time{}, "", s.replies.NewError(http.StatusBadGateway, "token endpoint replied without an access token", kind)
	}
	if tr.Error != "" || tr.ErrorDescription != "" {
		// A 2xx that says it failed.
		msg, detail := parseTokenErrorReply(tr)
		return "", time.Time{}, "", s.replies.NewError(http.StatusBadGateway, msg, detail)
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, "", s.replies.NewError(http.StatusBadGateway, "token endpoint replied without an access token", "")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", time.Time{}, "", s.replies.NewError(http.StatusBadGateway, "token endpoint replied with unsupported token type "+strconv.Quote(upstream.Truncate(tr.TokenType, 40)), "")
	}
	return tr.AccessToken, tokencache.UseUntil(start, upstream.Seconds(int64(tr.ExpiresIn))), tr.RefreshToken, nil
}

// parseTokenError reads an OAuth 2.0 error reply {"error",
// "error_description"}: the description is the message, the error code
// its detail.
func parseTokenError(_ int, body []byte) (message, detail string) {
	var tr tokenReply
	if json.Unmarshal(body, &tr) != nil {
		return "", ""
	}
	return parseTokenErrorReply(tr)
}

func parseTokenErrorReply(tr tokenReply) (message, detail string) {
	if tr.ErrorDescription == "" {
		return tr.Error, ""
	}
	return tr.ErrorDescription, tr.Error
}

var _ Invalidator = (*oauthSource)(nil)

// errNoTokenSource is returned by a client created without a TokenSource.
var errNoTokenSource = errors.New("partnercenter: no token source configured")
