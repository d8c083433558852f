package httpauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

const (
	// clockLeeway is the tolerance applied to exp, nbf and iat.
	clockLeeway = 60 * time.Second
	// jwksRefetchInterval bounds how often the JWKS is fetched again.
	jwksRefetchInterval = 30 * time.Second
	// jwksFetchTimeout bounds a single JWKS fetch.
	jwksFetchTimeout = 10 * time.Second
	// jwksMaxBody bounds the size of a JWKS document.
	jwksMaxBody = 1 << 20
)

// allowedAlgs lists the accepted signature algorithms. "none" and the HMAC
// family are deliberately absent: a resource server holds only public keys.
var allowedAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}

// JWTConfig configures OAuth 2.1 resource-server validation of JWT access
// tokens.
type JWTConfig struct {
	// Issuer must equal the token's "iss" claim exactly.
	Issuer string
	// Audience must be contained in the token's "aud" claim.
	Audience string
	// JWKSURL is the issuer's JSON Web Key Set (https, or http for loopback).
	JWKSURL string
	// RequiredScopes must all be granted ("scope" string or "scp").
	RequiredScopes []string
	// HTTPClient fetches the JWKS; defaults to a client with a timeout.
	HTTPClient *http.Client
	// Clock tells the time for exp, nbf, iat and the key cache (nil: the
	// real clock).
	Clock clock.Clock
}

type jwtAuth struct {
	issuer   string
	audience string
	required []string
	keys     *jwks
	parser   *jwt.Parser
}

// NewJWT returns an Authenticator validating JWT access tokens issued by
// cfg.Issuer for cfg.Audience. Signing keys are fetched lazily from
// cfg.JWKSURL, cached, and refetched when a token names an unknown key id,
// at most once per 30 seconds.
func NewJWT(cfg JWTConfig) (Authenticator, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("httpauth: JWT issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("httpauth: JWT audience is required")
	}
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("httpauth: JWKS URL must be an absolute URL")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
		return nil, errors.New("httpauth: JWKS URL must use https (http only for loopback)")
	}
	clk := clock.OrReal(cfg.Clock)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	var required []string
	for _, s := range cfg.RequiredScopes {
		if s = strings.TrimSpace(s); s != "" {
			required = append(required, s)
		}
	}
	return &jwtAuth{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		required: required,
		keys:     newJWKS(cfg.JWKSURL, client, clk),
		parser: jwt.NewParser(
			jwt.WithValidMethods(allowedAlgs),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(clockLeeway),
			jwt.WithTimeFunc(clk.Now),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
		),
	}, nil
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// accessClaims are the claims read from an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
	// Scp is an array in most issuers, a space-separated string in some.
	Scp any `json:"scp,omitempty"`
}

func (c *accessClaims) scopes() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range strings.Fields(c.Scope) {
		add(s)
	}
	switch v := c.Scp.(type) {
	case string:
		for _, s := range strings.Fields(v) {
			add(s)
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	}
	return out
}

func (a *jwtAuth) Authenticate(r *http.Request) (Principal, error) {
	tok, err := bearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	if strings.Count(tok, ".") != 2 {
		return Principal{}, notApplicable("malformed token")
	}
	// Detach from the request's cancellation so an aborted request does not
	// waste the rate-limited JWKS fetch; the fetch has its own timeout.
	ctx := context.WithoutCancel(r.Context())
	var claims accessClaims
	_, err = a.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return a.keys.key(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return Principal{}, classifyJWTError(err)
	}
	if claims.Subject == "" {
		return Principal{}, reject("token has no subject", nil)
	}
	scopes := claims.scopes()
	for _, s := range a.required {
		if !slices.Contains(scopes, s) {
			return Principal{}, reject("insufficient scope", fmt.Errorf("missing scope %q", s))
		}
	}
	return Principal{Subject: claims.Subject, Method: MethodJWT, Scopes: scopes}, nil
}

// classifyJWTError maps a parser error to a client-safe description.
func classifyJWTError(err error) error {
	var ae *authError
	if errors.As(err, &ae) {
		return err // from the key lookup
	}
	var desc string
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		desc = "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		desc = "invalid signature or algorithm"
	case errors.Is(err, jwt.ErrTokenExpired):
		desc = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		desc = "token not yet valid"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		desc = "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		desc = "invalid issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		desc = "invalid audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		desc = "required claim missing"
	default:
		desc = "invalid token"
	}
	return reject(desc, err)
}
