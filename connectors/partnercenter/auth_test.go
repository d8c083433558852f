package partnercenter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

const testSecret = "s3cr3t-Value~xyz"

// testStart is the fake clock's starting time.
var testStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// waitingCtx is a context that reports the first time the code under test
// asks for its Done channel: the token cache does so only once the caller
// has joined a fetch and waits for it.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan<- struct{}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { c.waiting <- struct{}{} })
	return c.Context.Done()
}

// tokenEndpoint is a fake OAuth token endpoint. Each request's form is
// recorded; reply answers it.
type tokenEndpoint struct {
	*fake
	mu    sync.Mutex
	forms []url.Values
}

func newTokenEndpoint(t *testing.T, reply func(n int, form url.Values, w http.ResponseWriter)) *tokenEndpoint {
	te := &tokenEndpoint{}
	te.fake = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
		assert.Empty(t, r.Header.Values("Authorization"))
		require.NoError(t, r.ParseForm())
		te.mu.Lock()
		te.forms = append(te.forms, r.PostForm)
		n := len(te.forms)
		te.mu.Unlock()
		reply(n, r.PostForm, w)
	})
	return te
}

func (te *tokenEndpoint) Forms() []url.Values {
	te.mu.Lock()
	defer te.mu.Unlock()
	return append([]url.Values(nil), te.forms...)
}

func (te *tokenEndpoint) tokenURL() string { return te.URL + "/tenant-1/oauth2/v2.0/token" }

// issue answers with access token "at-<n>" valid for expiresIn seconds and,
// for refresh grants, a rotated refresh token "rt-<n+1>".
func issue(expiresIn int) func(int, url.Values, http.ResponseWriter) {
	return func(n int, form url.Values, w http.ResponseWriter) {
		body := map[string]any{"access_token": fmt.Sprintf("at-%d", n), "token_type": "Bearer", "expires_in": expiresIn}
		if form.Get("grant_type") == "refresh_token" {
			body["refresh_token"] = fmt.Sprintf("rt-%d", n+1)
		}
		writeJSON(w, 200, body)
	}
}

func TestOAuthClientCredentials(t *testing.T) {
	te := newTokenEndpoint(t, issue(3600))
	clk := clock.NewFake(testStart)
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{
		TokenURL: te.tokenURL(), ClientID: "app-1", ClientSecret: testSecret, Clock: clk,
	})

	tok, err := ts.Token(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, "at-1", tok)
	tok, err = ts.Token(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, "at-1", tok, "cached")

	forms := te.Forms()
	require.Len(t, forms, 1)
	assert.Equal(t, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {"app-1"},
		"client_secret": {testSecret},
		"scope":         {"https://api.partner.microsoft.com/.default"},
	}, forms[0])
}

func TestOAuthRefreshTokenGrantRotates(t *testing.T) {
	te := newTokenEndpoint(t, issue(3600))
	clk := clock.NewFake(testStart)
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{
		TokenURL: te.tokenURL(), ClientID: "app-1", ClientSecret: testSecret, RefreshToken: "rt-1",
		Scope: "https://api.partner.microsoft.com/user_impersonation offline_access", Clock: clk,
	})

	tok, err := ts.Token(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, "at-1", tok)
	clk.Advance(time.Hour)
	tok, err = ts.Token(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, "at-2", tok)

	forms := te.Forms()
	require.Len(t, forms, 2)
	assert.Equal(t, "refresh_token", forms[0].Get("grant_type"))
	assert.Equal(t, "rt-1", forms[0].Get("refresh_token"))
	assert.Equal(t, "app-1", forms[0].Get("client_id"))
	assert.Equal(t, testSecret, forms[0].Get("client_secret"))
	assert.Equal(t, "https://api.partner.microsoft.com/user_impersonation offline_access", forms[0].Get("scope"))
	assert.Equal(t, "rt-2", forms[1].Get("refresh_token"), "the rotated refresh token is used next")
}

func TestOAuthPublicClientSendsNoSecret(t *testing.T) {
	te := newTokenEndpoint(t, issue(3600))
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "app-1", RefreshToken: "rt-1"})
	_, err := ts.Token(ctx(t))
	require.NoError(t, err)
	_, has := te.Forms()[0]["client_secret"]
	assert.False(t, has)
}

func TestOAuthRefreshesTwoMinutesBeforeExpiry(t *testing.T) {
	te := newTokenEndpoint(t, issue(3600))
	clk := clock.NewFake(testStart)
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret, Clock: clk})

	get := func() string {
		tok, err := ts.Token(ctx(t))
		require.NoError(t, err)
		return tok
	}
	assert.Equal(t, "at-1", get())
	clk.Advance(58*time.Minute - time.Second)
	assert.Equal(t, "at-1", get(), "still more than 2 minutes left")
	clk.Advance(time.Second)
	assert.Equal(t, "at-2", get(), "2 minutes before expiry a new token is fetched")
	assert.Len(t, te.Forms(), 2)
}

func TestOAuthShortLivedTokenRefreshedAtHalfLife(t *testing.T) {
	te := newTokenEndpoint(t, issue(60))
	clk := clock.NewFake(testStart)
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret, Clock: clk})
	tok, _ := ts.Token(ctx(t))
	assert.Equal(t, "at-1", tok)
	clk.Advance(29 * time.Second)
	tok, _ = ts.Token(ctx(t))
	assert.Equal(t, "at-1", tok)
	clk.Advance(time.Second)
	tok, _ = ts.Token(ctx(t))
	assert.Equal(t, "at-2", tok)
}

func TestOAuthConcurrentCallersShareOneRequest(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	te := newTokenEndpoint(t, func(n int, form url.Values, w http.ResponseWriter) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		issue(3600)(n, form, w)
	})
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret})

	const callers = 32
	var wg sync.WaitGroup
	waiting := make(chan struct{}, callers)
	tokens := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tokens[i], errs[i] = ts.Token(&waitingCtx{Context: ctx(t), waiting: waiting})
		}()
	}
	// The request is at the endpoint and every caller waits for it.
	<-arrived
	for range callers {
		<-waiting
	}
	close(release)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		assert.Equal(t, "at-1", tokens[i])
	}
	assert.Len(t, te.Forms(), 1)
}

func TestOAuthWaiterCancelDoesNotFailOthers(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	te := newTokenEndpoint(t, func(n int, form url.Values, w http.ResponseWriter) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		issue(3600)(n, form, w)
	})
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret})

	first, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := ts.Token(first)
		errc <- err
	}()
	<-arrived
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)

	done := make(chan string, 1)
	waiting := make(chan struct{}, 1)
	go func() {
		tok, _ := ts.Token(&waitingCtx{Context: ctx(t), waiting: waiting})
		done <- tok
	}()
	<-waiting // the second caller waits for the first caller's request
	close(release)
	assert.Equal(t, "at-1", <-done)
	assert.Len(t, te.Forms(), 1, "the second caller joined the first caller's request")
}

func TestOAuthInvalidate(t *testing.T) {
	te := newTokenEndpoint(t, issue(3600))
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret})
	inv, ok := ts.(partnercenter.Invalidator)
	require.True(t, ok)

	tok, _ := ts.Token(ctx(t))
	assert.Equal(t, "at-1", tok)
	inv.Invalidate("some-older-token")
	tok, _ = ts.Token(ctx(t))
	assert.Equal(t, "at-1", tok, "invalidating another token keeps the cache")
	inv.Invalidate("at-1")
	tok, _ = ts.Token(ctx(t))
	assert.Equal(t, "at-2", tok)
}

func TestOAuthErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		body        string
		wantStatus  int
		wantMessage string
		wantDetail  string
	}{
		{"aad error", 401, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the one configured, not '` + testSecret + `'."}`,
			401, "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the one configured, not '[redacted]'.", "invalid_client"},
		{"expired refresh token", 400, `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired rt-secret-1."}`,
			400, "AADSTS700082: The refresh token has expired [redacted].", "invalid_grant"},
		{"error code only", 400, `{"error":"unsupported_grant_type"}`, 400, "unsupported_grant_type", ""},
		{"not json", 500, `<html>oops</html>`, 500, "Internal Server Error", ""},
		{"200 without token", 200, `{"token_type":"Bearer"}`, 502, "token endpoint replied without an access token", ""},
		{"200 with error", 200, `{"error":"temporarily_unavailable"}`, 502, "temporarily_unavailable", ""},
		{"wrong token type", 200, `{"access_token":"x","token_type":"mac","expires_in":3600}`, 502, `token endpoint replied with unsupported token type "mac"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTokenEndpoint(t, func(_ int, _ url.Values, w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{
				TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret, RefreshToken: "rt-secret-1",
			})
			_, err := ts.Token(ctx(t))
			ue := asUpstream(t, err)
			assert.Equal(t, "partnercenter-auth", ue.Connector)
			assert.Equal(t, tc.wantStatus, ue.Status)
			assert.Equal(t, tc.wantMessage, ue.Message)
			assert.Equal(t, tc.wantDetail, ue.Detail)
			assert.NotContains(t, err.Error(), testSecret)
			assert.NotContains(t, err.Error(), "rt-secret-1")

			// A failure is not cached: the next call asks again.
			_, err = ts.Token(ctx(t))
			assert.Error(t, err)
			assert.Len(t, te.Forms(), 2)
		})
	}
}

func TestOAuthRetryAfterDateReadOnTheClock(t *testing.T) {
	clk := clock.NewFake(testStart)
	te := newTokenEndpoint(t, func(_ int, _ url.Values, w http.ResponseWriter) {
		w.Header()["Date"] = nil // without a Date the source's clock is the reference
		w.Header().Set("Retry-After", clk.Now().Add(42*time.Second).Format(http.TimeFormat))
		writeJSON(w, 429, map[string]any{"error": "temporarily_unavailable"})
	})
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret, Clock: clk})
	_, err := ts.Token(ctx(t))
	assert.Equal(t, 42*time.Second, asUpstream(t, err).RetryAfter)
}

func TestOAuthNoTokenURL(t *testing.T) {
	_, err := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{ClientID: "a", ClientSecret: testSecret}).Token(ctx(t))
	ue := asUpstream(t, err)
	assert.Equal(t, "partnercenter-auth", ue.Connector)
}

func TestOAuthTransportErrorKeepsChain(t *testing.T) {
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{
		TokenURL: "http://127.0.0.1:1/token", ClientID: "a", ClientSecret: testSecret,
		HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, context.DeadlineExceeded
		})},
	})
	_, err := ts.Token(ctx(t))
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
	assert.NotContains(t, err.Error(), testSecret)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestClientWithOAuthReauthenticates runs the client against the fake API
// and token endpoint: the API rejects the first token, the client drops it,
// gets a new one and succeeds.
func TestClientWithOAuthReauthenticates(t *testing.T) {
	te := newTokenEndpoint(t, issue(3600))
	api := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-2" {
			writeJSON(w, 401, map[string]any{"code": 401, "description": "revoked"})
			return
		}
		writeJSON(w, 200, sampleReferral("r1"))
	})
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: testSecret})
	c := partnercenter.New(ts, partnercenter.WithBaseURL(api.base()))

	got, err := c.GetReferral(ctx(t), "r1")
	require.NoError(t, err)
	assert.Equal(t, "r1", got.ID)
	assert.Len(t, api.Requests(), 2)
	assert.Len(t, te.Forms(), 2)

	_, err = c.GetReferral(ctx(t), "r1")
	require.NoError(t, err)
	assert.Len(t, api.Requests(), 3, "the fresh token is cached")
	assert.Len(t, te.Forms(), 2)
}

func TestTenantTokenURL(t *testing.T) {
	assert.Equal(t, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
		partnercenter.TenantTokenURL("contoso.onmicrosoft.com"))
}
