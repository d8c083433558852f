package sandbox

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func creds(extra ...string) url.Values {
	v := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {DefaultAppUserID},
		"client_secret": {DefaultAppUserSecret}, "code": {"ignored"}, "redirect_uri": {"https://example.test/cb"},
		"refresh_token_type": {"dummy"}, "operation": {"token"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
			continue
		}
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func TestTokenFlow(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: 30 * time.Minute})

	tok := e.tokenRequest(creds(), DefaultHostName).ok(t, http.StatusOK)
	assert.Equal(t, "Bearer", tok["token_type"])
	assert.Equal(t, float64(1800), tok["expires_in"])
	assert.NotEmpty(t, tok["refresh_token"])
	access := tok["access_token"].(string)
	assert.Equal(t, "no-store", e.tokenRequest(creds(), DefaultHostName).header.Get("Cache-Control"))

	e.get("/event/v1/metadata/integration", "Authorization", "Bearer "+access).ok(t, http.StatusOK)

	// operation=refresh with the connector's body issues a new token.
	ref := e.tokenRequest(creds("operation", "refresh"), DefaultHostName).ok(t, http.StatusOK)
	assert.NotEqual(t, access, ref["access_token"])
	// A named refresh token works once.
	rt := ref["refresh_token"].(string)
	e.tokenRequest(creds("operation", "refresh", "refresh_token", rt), DefaultHostName).ok(t, http.StatusOK)
	again := e.tokenRequest(creds("operation", "refresh", "refresh_token", rt), DefaultHostName)
	require.Equal(t, http.StatusBadRequest, again.status)
	assert.Equal(t, "invalid_grant", again.body["error"])

	// Tokens expire with the clock.
	e.clock.Advance(29 * time.Minute)
	e.get("/event/v1/metadata/integration", "Authorization", "Bearer "+access).ok(t, http.StatusOK)
	e.clock.Advance(time.Minute)
	r := e.get("/event/v1/metadata/integration", "Authorization", "Bearer "+access)
	assert.Contains(t, r.failed(t, http.StatusUnauthorized), "expired")
	assert.Contains(t, r.header.Get("WWW-Authenticate"), "invalid_token")
}

func TestTokenErrors(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		name   string
		form   url.Values
		host   string
		status int
		code   string
	}{
		{"wrong secret", creds("client_secret", "nope"), DefaultHostName, http.StatusUnauthorized, "invalid_client"},
		{"unknown user", creds("client_id", "someone"), DefaultHostName, http.StatusUnauthorized, "invalid_client"},
		{"no secret", creds("client_secret", ""), DefaultHostName, http.StatusBadRequest, "invalid_request"},
		{"no grant", creds("grant_type", ""), DefaultHostName, http.StatusBadRequest, "invalid_request"},
		{"other grant", creds("grant_type", "password"), DefaultHostName, http.StatusBadRequest, "unsupported_grant_type"},
		{"bad operation", creds("operation", "revoke"), DefaultHostName, http.StatusBadRequest, "invalid_request"},
		{"no env", creds(), "", http.StatusBadRequest, "invalid_request"},
		{"wrong env", creds(), "app.workspan.com", http.StatusBadRequest, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.tokenRequest(c.form, c.host)
			require.Equal(t, c.status, r.status, "body: %s", r.raw)
			assert.Equal(t, c.code, r.body["error"])
			assert.NotEmpty(t, r.body["error_description"])
			assert.NotContains(t, string(r.raw), DefaultAppUserSecret)
		})
	}

	// HTTP Basic client authentication works too.
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/oauth/token?x-ws-env="+DefaultHostName,
		strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DefaultAppUserID, DefaultAppUserSecret)
	e.do(req).ok(t, http.StatusOK)

	// GET is not allowed.
	req, err = http.NewRequest(http.MethodGet, e.ts.URL+"/oauth/token", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusMethodNotAllowed, e.do(req).status)
}

func TestCustomCredentialsAndHost(t *testing.T) {
	e := newEnv(t, Options{}) // for the helpers only
	srv := New(Options{HostName: "demo.workspan.com", AppUserID: "u1", AppUserSecret: "s1", Clock: e.clock})
	t.Cleanup(srv.Close)
	e.ts.Config.Handler = srv
	e.srv = srv
	r := e.tokenRequest(creds("client_id", "u1", "client_secret", "s1"), "demo.workspan.com").ok(t, http.StatusOK)
	e.token = r["access_token"].(string)
	e.get("/event/v1/metadata/event", "x-ws-env", "demo.workspan.com").ok(t, http.StatusOK)
	e.get("/event/v1/metadata/event").failed(t, http.StatusBadRequest) // default host name is wrong here
}

func TestAPIAuthentication(t *testing.T) {
	e := newEnv(t, Options{})
	path := "/event/v1/metadata/integration"

	assert.Contains(t, e.get(path, "x-ws-env", "").failed(t, http.StatusBadRequest), "x-ws-env")
	assert.Contains(t, e.get(path, "x-ws-env", "app.workspan.com").failed(t, http.StatusBadRequest), "app.workspan.com")
	// The environment is checked before the token.
	e.get(path, "x-ws-env", "", "Authorization", "").failed(t, http.StatusBadRequest)

	r := e.get(path, "Authorization", "")
	r.failed(t, http.StatusUnauthorized)
	assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))
	e.get(path, "Authorization", "Bearer not-a-token").failed(t, http.StatusUnauthorized)
	e.get(path, "Authorization", "Basic "+e.token).failed(t, http.StatusUnauthorized)
	e.get(path, "x-ws-env", strings.ToUpper(DefaultHostName)).ok(t, http.StatusOK)

	// Unknown paths are 404, wrong methods 405 with Allow.
	e.get("/app/v1/nothing").failed(t, http.StatusNotFound)
	r = e.call(http.MethodDelete, "/report/v1/list", nil)
	r.failed(t, http.StatusMethodNotAllowed)
	assert.Equal(t, "POST", r.header.Get("Allow"))

	before := e.srv.RequestCount()
	e.get(path)
	e.get(path, "Authorization", "")
	assert.Equal(t, before+2, e.srv.RequestCount())
}

func TestListen(t *testing.T) {
	base, srv, err := Listen("127.0.0.1:0", Options{})
	require.NoError(t, err)
	defer srv.Close()
	defer srv.Handler.(*Server).Close()
	res, err := http.Get(base + "/event/v1/metadata/event")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusBadRequest, res.StatusCode) // no x-ws-env
	assert.Equal(t, 1, srv.Handler.(*Server).RequestCount())
}
