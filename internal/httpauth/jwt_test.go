package httpauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

const (
	testIssuer   = "https://login.example.com/tenant/v2.0"
	testAudience = "api://cosell-mcp"
	testPRM      = "https://mcp.example.com/.well-known/oauth-protected-resource"
)

var (
	keysOnce sync.Once
	rsaKey1  *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey256 *ecdsa.PrivateKey
	ecKey384 *ecdsa.PrivateKey
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		rsaKey1, err = rsa.GenerateKey(rand.Reader, 2048)
		if err == nil {
			rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err == nil {
			ecKey256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err == nil {
			ecKey384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		}
		if err != nil {
			panic(err)
		}
	})
}

// testStart is where fake clocks start.
var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig",
		"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes()),
	}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]string {
	raw, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	size := (len(raw) - 1) / 2
	crv := map[int]string{32: "P-256", 48: "P-384"}[size]
	return map[string]string{
		"kty": "EC", "kid": kid, "crv": crv,
		"x": b64u(raw[1 : 1+size]), "y": b64u(raw[1+size:]),
	}
}

// jwksServer serves a mutable key set and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

type fixture struct {
	clock *clock.Fake
	srv   *jwksServer
	auth  Authenticator
	h     http.Handler
}

func newFixture(t *testing.T, required ...string) *fixture {
	t.Helper()
	testKeys(t)
	clk := clock.NewFake(testStart)
	srv := newJWKSServer(t,
		rsaJWK("rsa1", &rsaKey1.PublicKey),
		ecJWK("ec256", ecKey256),
		ecJWK("ec384", ecKey384),
	)
	a, err := NewJWT(JWTConfig{
		Issuer:         testIssuer,
		Audience:       testAudience,
		JWKSURL:        srv.URL + "/jwks",
		RequiredScopes: required,
		HTTPClient:     srv.Client(),
		Clock:          clk,
	})
	require.NoError(t, err)
	h := Middleware(a, testPRM, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	}))
	return &fixture{clock: clk, srv: srv, auth: a, h: h}
}

func (f *fixture) claims() jwt.MapClaims {
	now := f.clock.Now()
	return jwt.MapClaims{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   "agent-123",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"scope": "mcp.read mcp.write",
	}
}

func sign(t *testing.T, m jwt.SigningMethod, kid string, claims jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func serve(h http.Handler, authz string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func requirePrincipal(t *testing.T, rec *httptest.ResponseRecorder) Principal {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var p Principal
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	return p
}

// requireInvalidToken asserts a 401 with an invalid_token challenge that
// does not echo the token.
func requireInvalidToken(t *testing.T, rec *httptest.ResponseRecorder, token string) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	wa := rec.Header().Get("WWW-Authenticate")
	assert.True(t, strings.HasPrefix(wa, `Bearer realm="cosell-mcp"`), wa)
	assert.Contains(t, wa, `error="invalid_token"`)
	assert.Contains(t, wa, `error_description="`)
	assert.Contains(t, wa, `resource_metadata="`+testPRM+`"`)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "unauthorized", body["error"])
	assert.NotEmpty(t, body["message"])
	if token != "" {
		assert.NotContains(t, wa, token)
		assert.NotContains(t, rec.Body.String(), token)
		// Not even a recognisable fragment (the signature part).
		sig := token[strings.LastIndex(token, ".")+1:]
		if len(sig) > 8 {
			assert.NotContains(t, rec.Body.String(), sig)
			assert.NotContains(t, wa, sig)
		}
	}
}

func TestJWTValidTokens(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		m    jwt.SigningMethod
		kid  string
		key  any
	}{
		{"RS256", jwt.SigningMethodRS256, "rsa1", rsaKey1},
		{"RS384", jwt.SigningMethodRS384, "rsa1", rsaKey1},
		{"RS512", jwt.SigningMethodRS512, "rsa1", rsaKey1},
		{"PS256", jwt.SigningMethodPS256, "rsa1", rsaKey1},
		{"ES256", jwt.SigningMethodES256, "ec256", ecKey256},
		{"ES384", jwt.SigningMethodES384, "ec384", ecKey384},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, tc.m, tc.kid, f.claims(), tc.key)
			p := requirePrincipal(t, serve(f.h, "Bearer "+tok))
			assert.Equal(t, "agent-123", p.Subject)
			assert.Equal(t, MethodJWT, p.Method)
			assert.Equal(t, []string{"mcp.read", "mcp.write"}, p.Scopes)
		})
	}
	// One fetch serves all tokens.
	assert.Equal(t, int32(1), f.srv.fetches.Load())
}

func TestJWTAcceptedVariants(t *testing.T) {
	f := newFixture(t, "mcp.read")

	t.Run("audience array containing ours", func(t *testing.T) {
		c := f.claims()
		c["aud"] = []string{"other", testAudience}
		tok := sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		requirePrincipal(t, serve(f.h, "Bearer "+tok))
	})
	t.Run("scp array", func(t *testing.T) {
		c := f.claims()
		delete(c, "scope")
		c["scp"] = []string{"mcp.read", "other"}
		tok := sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		p := requirePrincipal(t, serve(f.h, "Bearer "+tok))
		assert.Equal(t, []string{"mcp.read", "other"}, p.Scopes)
	})
	t.Run("scp string", func(t *testing.T) {
		c := f.claims()
		delete(c, "scope")
		c["scp"] = "mcp.read"
		tok := sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		requirePrincipal(t, serve(f.h, "Bearer "+tok))
	})
	t.Run("expired within leeway", func(t *testing.T) {
		c := f.claims()
		c["exp"] = f.clock.Now().Add(-30 * time.Second).Unix()
		tok := sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		requirePrincipal(t, serve(f.h, "Bearer "+tok))
	})
	t.Run("nbf and iat slightly ahead within leeway", func(t *testing.T) {
		c := f.claims()
		c["nbf"] = f.clock.Now().Add(45 * time.Second).Unix()
		c["iat"] = f.clock.Now().Add(45 * time.Second).Unix()
		tok := sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		requirePrincipal(t, serve(f.h, "Bearer "+tok))
	})
	t.Run("lowercase scheme", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)
		requirePrincipal(t, serve(f.h, "bearer "+tok))
	})
}

func TestJWTRejections(t *testing.T) {
	f := newFixture(t, "mcp.read")
	testKeys(t)
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()

	cases := []struct {
		name  string
		token func(c jwt.MapClaims) string
		desc  string
	}{
		{"expired", func(c jwt.MapClaims) string {
			c["exp"] = f.clock.Now().Add(-2 * time.Minute).Unix()
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "token expired"},
		{"not yet valid", func(c jwt.MapClaims) string {
			c["nbf"] = f.clock.Now().Add(2 * time.Minute).Unix()
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "token not yet valid"},
		{"issued in the future", func(c jwt.MapClaims) string {
			c["iat"] = f.clock.Now().Add(5 * time.Minute).Unix()
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "token issued in the future"},
		{"no exp", func(c jwt.MapClaims) string {
			delete(c, "exp")
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "required claim missing"},
		{"wrong issuer", func(c jwt.MapClaims) string {
			c["iss"] = "https://evil.example.com"
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "invalid issuer"},
		{"wrong audience", func(c jwt.MapClaims) string {
			c["aud"] = []string{"api://something-else"}
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "invalid audience"},
		{"no audience", func(c jwt.MapClaims) string {
			delete(c, "aud")
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "required claim missing"},
		{"signed by other key", func(c jwt.MapClaims) string {
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey2)
		}, "invalid signature or algorithm"},
		{"alg none", func(c jwt.MapClaims) string {
			return sign(t, jwt.SigningMethodNone, "rsa1", c, jwt.UnsafeAllowNoneSignatureType)
		}, "invalid signature or algorithm"},
		{"HS256 with public key as secret", func(c jwt.MapClaims) string {
			return sign(t, jwt.SigningMethodHS256, "rsa1", c, pubPEM)
		}, "invalid signature or algorithm"},
		{"ES512 not allowed", func(c jwt.MapClaims) string {
			k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			require.NoError(t, err)
			return sign(t, jwt.SigningMethodES512, "ec256", c, k)
		}, "invalid signature or algorithm"},
		{"EC token against RSA kid", func(c jwt.MapClaims) string {
			return sign(t, jwt.SigningMethodES256, "rsa1", c, ecKey256)
		}, "signing key does not match algorithm"},
		{"ES384 token against P-256 key", func(c jwt.MapClaims) string {
			return sign(t, jwt.SigningMethodES384, "ec256", c, ecKey384)
		}, "signing key does not match algorithm"},
		{"missing scope", func(c jwt.MapClaims) string {
			c["scope"] = "mcp.write"
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "insufficient scope"},
		{"missing subject", func(c jwt.MapClaims) string {
			delete(c, "sub")
			return sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
		}, "token has no subject"},
		{"no kid with multi-key set", func(c jwt.MapClaims) string {
			return sign(t, jwt.SigningMethodRS256, "", c, rsaKey1)
		}, "unknown signing key"},
		{"garbage with dots", func(jwt.MapClaims) string {
			return "abc.def.ghi"
		}, "malformed token"},
		{"opaque string", func(jwt.MapClaims) string {
			return "not-a-jwt-at-all"
		}, "malformed token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(f.claims())
			rec := serve(f.h, "Bearer "+tok)
			requireInvalidToken(t, rec, tok)
			assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="`+tc.desc+`"`)
		})
	}
}

func TestJWTUnknownKidRefetchesThenRejects(t *testing.T) {
	f := newFixture(t)
	// Prime the cache.
	requirePrincipal(t, serve(f.h, "Bearer "+sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)))
	require.Equal(t, int32(1), f.srv.fetches.Load())

	f.clock.Advance(time.Minute)
	tok := sign(t, jwt.SigningMethodRS256, "rotated", f.claims(), rsaKey2)
	rec := serve(f.h, "Bearer "+tok)
	requireInvalidToken(t, rec, tok)
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="unknown signing key"`)
	assert.Equal(t, int32(2), f.srv.fetches.Load(), "unknown kid triggers one refetch")
}

func TestJWTRefetchPicksUpRotatedKey(t *testing.T) {
	f := newFixture(t)
	requirePrincipal(t, serve(f.h, "Bearer "+sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)))

	f.srv.setKeys(rsaJWK("rsa2", &rsaKey2.PublicKey))
	f.clock.Advance(31 * time.Second)
	tok := sign(t, jwt.SigningMethodRS256, "rsa2", f.claims(), rsaKey2)
	p := requirePrincipal(t, serve(f.h, "Bearer "+tok))
	assert.Equal(t, "agent-123", p.Subject)
	assert.Equal(t, int32(2), f.srv.fetches.Load())

	// The removed key is no longer trusted.
	old := sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)
	requireInvalidToken(t, serve(f.h, "Bearer "+old), old)
}

func TestJWTRefetchRateLimit(t *testing.T) {
	f := newFixture(t)
	requirePrincipal(t, serve(f.h, "Bearer "+sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)))
	require.Equal(t, int32(1), f.srv.fetches.Load())

	// Within 30s of the initial fetch: no refetch at all.
	for i := 0; i < 5; i++ {
		f.clock.Advance(5 * time.Second)
		tok := sign(t, jwt.SigningMethodRS256, "unknown", f.claims(), rsaKey2)
		requireInvalidToken(t, serve(f.h, "Bearer "+tok), tok)
	}
	assert.Equal(t, int32(1), f.srv.fetches.Load())

	// After the interval: exactly one refetch, even for a burst of
	// concurrent requests.
	f.clock.Advance(10 * time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := sign(t, jwt.SigningMethodRS256, "unknown", f.claims(), rsaKey2)
			rec := serve(f.h, "Bearer "+tok)
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(2), f.srv.fetches.Load())

	// Known keys keep working without fetching.
	requirePrincipal(t, serve(f.h, "Bearer "+sign(t, jwt.SigningMethodES256, "ec256", f.claims(), ecKey256)))
	assert.Equal(t, int32(2), f.srv.fetches.Load())

	// And the next window allows another refetch.
	f.clock.Advance(31 * time.Second)
	tok := sign(t, jwt.SigningMethodRS256, "unknown", f.claims(), rsaKey2)
	requireInvalidToken(t, serve(f.h, "Bearer "+tok), tok)
	assert.Equal(t, int32(3), f.srv.fetches.Load())
}

func TestJWTSingleKeyWithoutKid(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, rsaJWK("only", &rsaKey1.PublicKey))
	clk := clock.NewFake(testStart)
	a, err := NewJWT(JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL, HTTPClient: srv.Client(), Clock: clk})
	require.NoError(t, err)
	f := &fixture{clock: clk}
	tok := sign(t, jwt.SigningMethodRS256, "", f.claims(), rsaKey1)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	p, err := a.Authenticate(req)
	require.NoError(t, err)
	assert.Equal(t, "agent-123", p.Subject)
}

func TestJWTBadJWKSEndpoint(t *testing.T) {
	testKeys(t)
	cases := map[string]http.HandlerFunc{
		"server error": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		},
		"not json": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<html>"))
		},
		"oversized body": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[],"pad":"`))
			_, _ = w.Write([]byte(strings.Repeat("a", jwksMaxBody)))
			_, _ = w.Write([]byte(`"}`))
		},
		"no usable keys": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","kid":"rsa1","k":"c2VjcmV0"},{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"}]}`))
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			clk := clock.NewFake(testStart)
			a, err := NewJWT(JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL, HTTPClient: srv.Client(), Clock: clk})
			require.NoError(t, err)
			f := &fixture{clock: clk}
			tok := sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)
			rec := serve(Middleware(a, testPRM, http.NotFoundHandler()), "Bearer "+tok)
			requireInvalidToken(t, rec, tok)
			assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="unknown signing key"`)
		})
	}
}

// TestJWTFetchTimeout: a JWKS endpoint that never answers fails the
// authentication once the configured HTTP client gives up, rather than
// hanging it or waiting for the longer built-in fetch timeout.
func TestJWTFetchTimeout(t *testing.T) {
	testKeys(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	client := srv.Client()
	client.Timeout = 100 * time.Millisecond
	clk := clock.NewFake(testStart)
	a, err := NewJWT(JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL, HTTPClient: client, Clock: clk})
	require.NoError(t, err)
	f := &fixture{clock: clk}
	tok := sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	_, err = a.Authenticate(req)
	require.Error(t, err)
	assert.ErrorContains(t, err, "unknown signing key")
	assert.ErrorContains(t, err, "Client.Timeout exceeded", "the configured client's timeout ended the fetch")
}

func TestNewJWTConfigValidation(t *testing.T) {
	good := JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: "https://login.example.com/keys"}
	_, err := NewJWT(good)
	require.NoError(t, err)

	for name, mut := range map[string]func(*JWTConfig){
		"no issuer":       func(c *JWTConfig) { c.Issuer = "" },
		"no audience":     func(c *JWTConfig) { c.Audience = "" },
		"no jwks url":     func(c *JWTConfig) { c.JWKSURL = "" },
		"relative url":    func(c *JWTConfig) { c.JWKSURL = "/keys" },
		"plain http":      func(c *JWTConfig) { c.JWKSURL = "http://login.example.com/keys" },
		"unsupported url": func(c *JWTConfig) { c.JWKSURL = "file:///etc/keys" },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			mut(&c)
			_, err := NewJWT(c)
			assert.Error(t, err)
		})
	}
	c := good
	c.JWKSURL = "http://127.0.0.1:8080/keys"
	_, err = NewJWT(c)
	assert.NoError(t, err, "http allowed for loopback")
}
