package httpauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

func echoPrincipal() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	})
}

func TestHashKey(t *testing.T) {
	// sha256("secret")
	assert.Equal(t, "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", HashKey("secret"))
	assert.NotEqual(t, HashKey("a"), HashKey("b"))
}

func TestAPIKeys(t *testing.T) {
	a, err := NewAPIKeys(map[string]string{
		HashKey("key-one"): "copilot-studio",
		HashKey("key-two"): "ci",
	})
	require.NoError(t, err)
	h := Middleware(a, testPRM, echoPrincipal())

	p := requirePrincipal(t, serve(h, "Bearer key-one"))
	assert.Equal(t, Principal{Subject: "copilot-studio", Method: MethodAPIKey}, p)
	p = requirePrincipal(t, serve(h, "Bearer key-two"))
	assert.Equal(t, "ci", p.Subject)

	for _, bad := range []string{"key-three", "KEY-ONE", HashKey("key-one"), "key-on", "key-one-and-more"} {
		rec := serve(h, "Bearer "+bad)
		requireInvalidToken(t, rec, bad)
		assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="invalid API key"`)
	}
}

func TestAPIKeysCompareEveryEntryInConstantTime(t *testing.T) {
	keys := map[string]string{}
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		keys[HashKey(k)] = "name-" + k
	}
	a, err := NewAPIKeys(keys)
	require.NoError(t, err)

	var calls atomic.Int32
	orig := constantTimeEqual
	constantTimeEqual = func(x, y []byte) int {
		calls.Add(1)
		return orig(x, y)
	}
	t.Cleanup(func() { constantTimeEqual = orig })

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer k1")
	p, err := a.Authenticate(req)
	require.NoError(t, err)
	assert.Equal(t, "name-k1", p.Subject)
	assert.Equal(t, int32(4), calls.Load(), "no early exit on match")

	calls.Store(0)
	req.Header.Set("Authorization", "Bearer nope")
	_, err = a.Authenticate(req)
	require.Error(t, err)
	assert.Equal(t, int32(4), calls.Load())
}

func TestNewAPIKeysRejectsMalformed(t *testing.T) {
	valid := HashKey("x")
	for name, m := range map[string]map[string]string{
		"empty":        {},
		"no prefix":    {strings.TrimPrefix(valid, "sha256:"): "a"},
		"wrong prefix": {"sha1:" + strings.TrimPrefix(valid, "sha256:"): "a"},
		"plaintext":    {"my-secret-key": "a"},
		"short":        {valid[:len(valid)-2]: "a"},
		"long":         {valid + "00": "a"},
		"not hex":      {valid[:len(valid)-1] + "z": "a"},
		"empty name":   {valid: " "},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewAPIKeys(m)
			assert.Error(t, err)
		})
	}
	// Uppercase hex and lowercase hex of the same key are the same key.
	upper := "sha256:" + strings.ToUpper(strings.TrimPrefix(valid, "sha256:"))
	_, err := NewAPIKeys(map[string]string{valid: "a", upper: "b"})
	assert.ErrorContains(t, err, "duplicate")
	a, err := NewAPIKeys(map[string]string{upper: "a"})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer x")
	_, err = a.Authenticate(req)
	assert.NoError(t, err)
}

func TestParseAPIKeyFile(t *testing.T) {
	h1, h2 := HashKey("one"), HashKey("two")
	in := "# API keys for the HTTP transport\n" +
		"\n" +
		"copilot-studio " + h1 + "\n" +
		"   # indented comment\n" +
		"ci\t" + strings.ToUpper(h2[:6]) + h2[6:] + "   \n" +
		"copilot-studio " + HashKey("rotated") + "\n"
	m, err := ParseAPIKeyFile(strings.NewReader(in))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		h1:                 "copilot-studio",
		h2:                 "ci",
		HashKey("rotated"): "copilot-studio",
	}, m)

	a, err := NewAPIKeys(m)
	require.NoError(t, err)
	p := requirePrincipal(t, serve(Middleware(a, "", echoPrincipal()), "Bearer two"))
	assert.Equal(t, "ci", p.Subject)

	empty, err := ParseAPIKeyFile(strings.NewReader("# nothing\n\n"))
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestParseAPIKeyFileMalformed(t *testing.T) {
	h := HashKey("one")
	for name, in := range map[string]string{
		"name only":       "# c\nlonely\n",
		"hash only":       h + "\n",
		"three fields":    "a " + h + " extra\n",
		"plaintext key":   "a super-secret-plaintext\n",
		"bad hex":         "a sha256:" + strings.Repeat("g", 64) + "\n",
		"short hash":      "a " + h[:20] + "\n",
		"duplicate hash":  "a " + h + "\nb " + h + "\n",
		"trailing commnt": "a " + h + " # note\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseAPIKeyFile(strings.NewReader(in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "line ")
			assert.NotContains(t, err.Error(), "super-secret-plaintext")
		})
	}
	_, err := ParseAPIKeyFile(strings.NewReader("# c\n\nlonely\n"))
	assert.ErrorContains(t, err, "line 3")
}

func TestMiddlewareMissingCredentials(t *testing.T) {
	a, err := NewAPIKeys(map[string]string{HashKey("k"): "n"})
	require.NoError(t, err)
	h := Middleware(a, testPRM, echoPrincipal())
	for name, authz := range map[string]string{
		"no header":    "",
		"basic scheme": "Basic dXNlcjpwYXNz",
	} {
		t.Run(name, func(t *testing.T) {
			rec := serve(h, authz)
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			wa := rec.Header().Get("WWW-Authenticate")
			assert.Equal(t, `Bearer realm="cosell-mcp", resource_metadata="`+testPRM+`"`, wa)
			assert.NotContains(t, wa, "error=")
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, "unauthorized", body["error"])
			assert.Equal(t, "missing bearer token", body["message"])
			assert.NotContains(t, rec.Body.String(), "dXNlcjpwYXNz")
		})
	}
	t.Run("empty bearer", func(t *testing.T) {
		rec := serve(h, "Bearer ")
		requireInvalidToken(t, rec, "")
	})
	t.Run("token with inner space", func(t *testing.T) {
		rec := serve(h, "Bearer k extra")
		requireInvalidToken(t, rec, "")
	})
	t.Run("no resource metadata configured", func(t *testing.T) {
		rec := serve(Middleware(a, "", echoPrincipal()), "")
		assert.Equal(t, `Bearer realm="cosell-mcp"`, rec.Header().Get("WWW-Authenticate"))
	})
	t.Run("nil authenticator fails closed", func(t *testing.T) {
		rec := serve(Middleware(nil, testPRM, echoPrincipal()), "Bearer k")
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
	})
}

type errAuth struct{ err error }

func (e errAuth) Authenticate(*http.Request) (Principal, error) { return Principal{}, e.err }

func TestMiddlewareSanitizesDescription(t *testing.T) {
	h := Middleware(errAuth{reject("bad \"quote\" \\ \n line", nil)}, testPRM, echoPrincipal())
	rec := serve(h, "Bearer x")
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="bad quote   line"`)

	// Errors without a safe description are not leaked.
	h = Middleware(errAuth{errors.New("internal detail")}, testPRM, echoPrincipal())
	rec = serve(h, "Bearer x")
	assert.NotContains(t, rec.Header().Get("WWW-Authenticate"), "internal detail")
	assert.NotContains(t, rec.Body.String(), "internal detail")
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="invalid token"`)
}

func TestAny(t *testing.T) {
	f := newFixture(t)
	keys, err := NewAPIKeys(map[string]string{HashKey("static-key"): "ci"})
	require.NoError(t, err)
	h := Middleware(Any(keys, nil, f.auth), testPRM, echoPrincipal())

	p := requirePrincipal(t, serve(h, "Bearer static-key"))
	assert.Equal(t, Principal{Subject: "ci", Method: MethodAPIKey}, p)

	tok := sign(t, jwt.SigningMethodRS256, "rsa1", f.claims(), rsaKey1)
	p = requirePrincipal(t, serve(h, "Bearer "+tok))
	assert.Equal(t, MethodJWT, p.Method)

	// A JWT failure reports the JWT reason, not "invalid API key".
	c := f.claims()
	c["exp"] = f.clock.Now().Add(-time.Hour).Unix()
	tok = sign(t, jwt.SigningMethodRS256, "rsa1", c, rsaKey1)
	rec := serve(h, "Bearer "+tok)
	requireInvalidToken(t, rec, tok)
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="token expired"`)

	// A wrong opaque key reports the API key reason.
	rec = serve(h, "Bearer wrong-key")
	requireInvalidToken(t, rec, "wrong-key")
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error_description="invalid API key"`)

	// Missing header stays a missing-credentials challenge.
	rec = serve(h, "")
	assert.NotContains(t, rec.Header().Get("WWW-Authenticate"), "error=")

	// No authenticators: reject.
	rec = serve(Middleware(Any(), testPRM, echoPrincipal()), "Bearer x")
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
}

func TestPrincipalContext(t *testing.T) {
	_, ok := PrincipalFrom(context.Background())
	assert.False(t, ok)
	want := Principal{Subject: "s", Method: MethodJWT, Scopes: []string{"a"}}
	got, ok := PrincipalFrom(WithPrincipal(context.Background(), want))
	require.True(t, ok)
	assert.Equal(t, want, got)
}

func TestProtectedResourceMetadata(t *testing.T) {
	h := ProtectedResourceMetadata("https://mcp.example.com/mcp",
		[]string{"https://login.example.com/tenant/v2.0"}, []string{"mcp.read", "mcp.write"})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.JSONEq(t, `{
		"resource": "https://mcp.example.com/mcp",
		"authorization_servers": ["https://login.example.com/tenant/v2.0"],
		"bearer_methods_supported": ["header"],
		"scopes_supported": ["mcp.read", "mcp.write"]
	}`, rec.Body.String())

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.well-known/oauth-protected-resource", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)

	// Optional members are omitted when empty.
	rec = httptest.NewRecorder()
	ProtectedResourceMetadata("https://mcp.example.com/mcp", nil, nil).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.JSONEq(t, `{"resource":"https://mcp.example.com/mcp","bearer_methods_supported":["header"]}`, rec.Body.String())
}

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	body, err := json.Marshal(map[string]any{"keys": []map[string]string{
		rsaJWK("r", &rsaKey1.PublicKey),
		ecJWK("e", ecKey256),
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": rsaJWK("x", &rsaKey1.PublicKey)["n"], "e": "AQAB"},
		{"kty": "EC", "kid": "bad-point", "crv": "P-256", "x": ecJWK("x", ecKey256)["x"], "y": ecJWK("x", ecKey256)["x"]},
		{"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
		{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
	}})
	require.NoError(t, err)
	keys, err := parseJWKS(body)
	require.NoError(t, err)
	assert.Len(t, keys, 2)
	assert.Contains(t, keys, "r")
	assert.Contains(t, keys, "e")

	// Body size is bounded.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(append(body[:len(body)-1], []byte(`,"pad":"`+strings.Repeat("a", jwksMaxBody)+`"}`)...))
	}))
	defer srv.Close()
	_, err = newJWKS(srv.URL, srv.Client(), clock.Real()).fetch(context.Background())
	assert.ErrorContains(t, err, "exceeds")
}
