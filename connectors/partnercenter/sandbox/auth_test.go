package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// token posts a form to a token endpoint path and returns the status and decoded body.
func (e *env) token(path string, form url.Values, basic ...string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	var body map[string]any
	require.NoError(e.t, json.Unmarshal(raw, &body), "body: %s", raw)
	return res.StatusCode, body, res.Header
}

func clientCredentials(extra ...string) url.Values {
	f := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {DefaultClientID},
		"client_secret": {DefaultClientSecret},
		"scope":         {"https://api.partner.microsoft.com/.default"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func TestAPIAuth(t *testing.T) {
	e := newEnv(t, Options{})
	cases := map[string]struct {
		authz     string
		challenge string
		msg       string
	}{
		"missing":      {"", "Bearer", "missing"},
		"wrong scheme": {"Basic " + DefaultToken, `Bearer error="invalid_token"`, "Bearer token is required"},
		"empty bearer": {"Bearer ", `Bearer error="invalid_token"`, "Bearer token is required"},
		"unknown":      {"Bearer not-a-token", `Bearer error="invalid_token"`, "invalid"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{referralsPath, referralsPath + "/00000000-0000-0000-0000-000000000000", "/v1.0/engagements/unknown"} {
				r := e.get(path, "Authorization", c.authz) // "" removes the header
				require.Contains(t, r.failed(t, http.StatusUnauthorized), c.msg)
				require.True(t, strings.HasPrefix(r.header.Get("WWW-Authenticate"), c.challenge), r.header.Get("WWW-Authenticate"))
			}
			e.call(http.MethodPost, referralsPath, newReferral("Contoso Ltd"), "Authorization", c.authz).failed(t, http.StatusUnauthorized)
		})
	}
	require.Len(t, e.all(), 60, "no unauthenticated write got through")
	e.get(referralsPath+"?$top=1", "Authorization", "bearer "+DefaultToken).ok(t, http.StatusOK)

	custom := newEnv(t, Options{Token: "s3cret"})
	custom.get(referralsPath).failed(t, http.StatusUnauthorized)
	custom.get(referralsPath, "Authorization", "Bearer s3cret").ok(t, http.StatusOK)
}

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t, Options{})
	tokenPath := strings.TrimPrefix(e.srv.TokenURL(e.ts.URL), e.ts.URL)
	require.Equal(t, "/common/oauth2/v2.0/token", tokenPath)
	require.Equal(t, e.ts.URL+"/v1.0/engagements", e.srv.APIBase(e.ts.URL))

	t.Run("client credentials", func(t *testing.T) {
		status, body, h := e.token(tokenPath, clientCredentials())
		require.Equal(t, http.StatusOK, status, "%v", body)
		require.Equal(t, "Bearer", body["token_type"])
		require.Equal(t, float64(3600), body["expires_in"])
		require.Equal(t, "https://api.partner.microsoft.com/.default", body["scope"])
		require.NotContains(t, body, "refresh_token", "client_credentials gets no refresh token by default")
		require.Equal(t, "no-store, no-cache", h.Get("Cache-Control"))
		at := body["access_token"].(string)
		require.Len(t, strings.Split(at, "."), 3, "JWT-shaped")
		e.get(referralsPath+"?$top=1", "Authorization", "Bearer "+at).ok(t, http.StatusOK)
	})

	t.Run("basic auth and any tenant", func(t *testing.T) {
		f := clientCredentials()
		f.Del("client_id")
		f.Del("client_secret")
		for _, tenant := range []string{"common", "organizations", "contoso.onmicrosoft.com", "72f988bf-86f1-41af-91ab-2d7cd011db47"} {
			status, body, _ := e.token("/"+tenant+"/oauth2/v2.0/token", f, DefaultClientID, DefaultClientSecret)
			require.Equal(t, http.StatusOK, status, "%s: %v", tenant, body)
		}
		status, _, _ := e.token("/common/oauth2/v2.0/token/", clientCredentials())
		require.Equal(t, http.StatusOK, status, "trailing slash")
	})

	t.Run("refresh tokens rotate", func(t *testing.T) {
		status, body, _ := e.token(tokenPath, clientCredentials("scope", "https://api.partner.microsoft.com/.default offline_access"))
		require.Equal(t, http.StatusOK, status)
		rt1 := body["refresh_token"].(string)
		require.NotEmpty(t, rt1)

		refresh := func(rt string) (int, map[string]any) {
			s, b, _ := e.token(tokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}})
			return s, b
		}
		status, body = refresh(rt1)
		require.Equal(t, http.StatusOK, status, "%v", body)
		rt2 := body["refresh_token"].(string)
		require.NotEqual(t, rt1, rt2)
		e.get(referralsPath+"?$top=1", "Authorization", "Bearer "+body["access_token"].(string)).ok(t, http.StatusOK)

		status, body = refresh(rt1)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_grant", body["error"], "a used refresh token is rejected")
		status, body = refresh("made-up")
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_grant", body["error"])

		status, _ = refresh(rt2)
		require.Equal(t, http.StatusOK, status)

		// Refresh tokens expire after 90 days.
		_, body, _ = e.token(tokenPath, clientCredentials("scope", "offline_access"))
		rt := body["refresh_token"].(string)
		e.clock.Advance(91 * 24 * time.Hour)
		status, body = refresh(rt)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_grant", body["error"])
	})

	t.Run("errors", func(t *testing.T) {
		cases := map[string]struct {
			form   url.Values
			status int
			code   string
		}{
			"wrong secret":       {clientCredentials("client_secret", "nope"), http.StatusUnauthorized, "invalid_client"},
			"unknown client":     {clientCredentials("client_id", "someone"), http.StatusUnauthorized, "invalid_client"},
			"no secret":          {clientCredentials("client_secret", ""), http.StatusUnauthorized, "invalid_client"},
			"no client":          {clientCredentials("client_id", ""), http.StatusBadRequest, "invalid_request"},
			"no grant":           {clientCredentials("grant_type", ""), http.StatusBadRequest, "invalid_request"},
			"password grant":     {clientCredentials("grant_type", "password"), http.StatusBadRequest, "unsupported_grant_type"},
			"no refresh token":   {clientCredentials("grant_type", "refresh_token"), http.StatusBadRequest, "invalid_request"},
			"refresh bad secret": {clientCredentials("grant_type", "refresh_token", "refresh_token", "x", "client_secret", "nope"), http.StatusUnauthorized, "invalid_client"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				status, body, _ := e.token(tokenPath, c.form)
				require.Equal(t, c.status, status, "%v", body)
				require.Equal(t, c.code, body["error"])
				require.Contains(t, body["error_description"], "AADSTS")
				require.NotContains(t, body["error_description"], DefaultClientSecret)
				require.NotEmpty(t, body["error_codes"])
			})
		}

		r := e.call(http.MethodPost, tokenPath, `{"grant_type":"client_credentials"}`)
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, "invalid_request", r.body["error"])
		r = e.get(tokenPath)
		require.Equal(t, http.StatusMethodNotAllowed, r.status)
	})
}

func TestTokenExpiry(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: 5 * time.Minute, ClientID: "app", ClientSecret: "pw"})
	status, body, _ := e.token("/common/oauth2/v2.0/token", clientCredentials("client_id", "app", "client_secret", "pw"))
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, float64(300), body["expires_in"])
	at := "Bearer " + body["access_token"].(string)

	e.get(referralsPath+"?$top=1", "Authorization", at).ok(t, http.StatusOK)
	e.clock.Advance(5*time.Minute - time.Second)
	e.get(referralsPath+"?$top=1", "Authorization", at).ok(t, http.StatusOK)
	e.clock.Advance(time.Second)
	r := e.get(referralsPath+"?$top=1", "Authorization", at)
	require.Contains(t, r.failed(t, http.StatusUnauthorized), "expired")
	require.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	e.get(referralsPath+"?$top=1", "Authorization", "Bearer "+DefaultToken).ok(t, http.StatusOK)

	status, _, _ = e.token("/common/oauth2/v2.0/token", clientCredentials())
	require.Equal(t, http.StatusUnauthorized, status, "the default client is replaced by Options")
}

func TestRequestCount(t *testing.T) {
	e := newEnv(t, Options{})
	require.Equal(t, 0, e.srv.RequestCount())
	e.list("$top", "1")
	e.get("/nowhere")
	e.get(referralsPath, "Authorization", "Bearer wrong")
	e.token("/common/oauth2/v2.0/token", clientCredentials())
	require.Equal(t, 4, e.srv.RequestCount())
}

func TestListen(t *testing.T) {
	base, srv, err := Listen("127.0.0.1:0", Options{})
	require.NoError(t, err)
	defer srv.Close()
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"))
	s := srv.Handler.(*Server)
	req, err := http.NewRequest(http.MethodGet, s.APIBase(base)+"/referrals?$top=2", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var body struct {
		Value    []map[string]any `json:"value"`
		NextLink string           `json:"@odata.nextLink"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.Len(t, body.Value, 2)
	require.True(t, strings.HasPrefix(body.NextLink, base+"/v1.0/engagements/referrals?"))
	require.Equal(t, 1, s.RequestCount())
}
