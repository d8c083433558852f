package workspan

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

func TestEnvironmentURL(t *testing.T) {
	u, err := EnvironmentURL("sandbox")
	require.NoError(t, err)
	assert.Equal(t, SandboxURL, u)
	u, err = EnvironmentURL("Production")
	require.NoError(t, err)
	assert.Equal(t, ProductionURL, u)
	_, err = EnvironmentURL("staging")
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Equal(t, ProductionURL, New(Config{}).BaseURL())
}

func TestTokenRequestAndHeaders(t *testing.T) {
	f := newFake(t, reply(200, `{"events":[]}`))
	c := f.client(func(cfg *Config) { cfg.UserAgent = "test-agent"; cfg.BaseURL += "/" })
	_, err := c.Events(context.Background())
	require.NoError(t, err)

	toks := f.tokenRequests()
	require.Len(t, toks, 1)
	tr := toks[0]
	assert.Equal(t, http.MethodPost, tr.Method)
	assert.Equal(t, "x-ws-env="+url.QueryEscape(testHost), tr.RawQuery)
	assert.Equal(t, "application/x-www-form-urlencoded", tr.Header.Get("Content-Type"))
	form, err := url.ParseQuery(string(tr.Body))
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {testUser},
		"client_secret": {testSecret},
		"operation":     {"token"},
	}, form)

	api := f.last()
	assert.Equal(t, testHost, api.Header.Get("x-ws-env"))
	assert.Equal(t, "Bearer tok-1", api.Header.Get("Authorization"))
	assert.Equal(t, "test-agent", api.Header.Get("User-Agent"))
	assert.Equal(t, "application/json", api.Header.Get("Accept"))
}

func TestTokenCachedAndRefreshedBeforeExpiry(t *testing.T) {
	clk := clock.NewFake(testStart)
	f := newFake(t, reply(200, `{"events":[]}`))
	c := f.client(func(cfg *Config) { cfg.Clock = clk })
	ctx := context.Background()

	for range 3 {
		_, err := c.Events(ctx)
		require.NoError(t, err)
	}
	assert.Len(t, f.tokenRequests(), 1, "token reused while fresh")

	// expires_in 3600: refreshed 2 minutes before the hour.
	clk.Advance(57*time.Minute + 59*time.Second)
	_, err := c.Events(ctx)
	require.NoError(t, err)
	assert.Len(t, f.tokenRequests(), 1)
	assert.Equal(t, "Bearer tok-1", f.last().Header.Get("Authorization"))

	clk.Advance(time.Second)
	_, err = c.Events(ctx)
	require.NoError(t, err)
	assert.Len(t, f.tokenRequests(), 2)
	assert.Equal(t, "Bearer tok-2", f.last().Header.Get("Authorization"))
}

func TestTokenExpiresInAsStringAndShortLife(t *testing.T) {
	clk := clock.NewFake(testStart)
	f := newFake(t, reply(200, `{"events":[]}`))
	f.expiresIn = "60" // a short life is replaced halfway through
	c := f.client(func(cfg *Config) { cfg.Clock = clk })
	ctx := context.Background()
	_, err := c.Events(ctx)
	require.NoError(t, err)
	clk.Advance(29 * time.Second)
	_, err = c.Events(ctx)
	require.NoError(t, err)
	assert.Len(t, f.tokenRequests(), 1)
	clk.Advance(time.Second)
	_, err = c.Events(ctx)
	require.NoError(t, err)
	assert.Len(t, f.tokenRequests(), 2)
}

func TestConcurrentCallersShareOneTokenFetch(t *testing.T) {
	f := newFake(t, reply(200, `{"events":[]}`))
	gate := make(chan struct{})
	f.tokenGate = gate
	c := f.client()

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	waiting := make(chan struct{}, n)
	for range n {
		wg.Go(func() {
			_, err := c.Events(&waitingCtx{Context: context.Background(), waiting: waiting})
			errs <- err
		})
	}
	// Every caller waits on the token source before the fetch completes.
	for range n {
		<-waiting
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, f.tokenRequests(), 1)
	assert.Len(t, f.apiRequests(), n)
	for _, r := range f.apiRequests() {
		assert.Equal(t, "Bearer tok-1", r.Header.Get("Authorization"))
	}
}

func TestCallerGivingUpDoesNotFailSharedFetch(t *testing.T) {
	f := newFake(t, reply(200, `{"events":[]}`))
	gate := make(chan struct{})
	f.tokenGate = gate
	arrived := make(chan struct{}, 1)
	f.tokenArrived = arrived
	c := f.client()

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Events(ctx); first <- err }()
	<-arrived
	cancel()
	assert.ErrorIs(t, <-first, context.Canceled)

	second := make(chan error, 1)
	waiting := make(chan struct{}, 1)
	go func() {
		_, err := c.Events(&waitingCtx{Context: context.Background(), waiting: waiting})
		second <- err
	}()
	<-waiting // the second caller waits for the first caller's fetch
	close(gate)
	require.NoError(t, <-second)
	assert.Len(t, f.tokenRequests(), 1)
}

func TestUnauthorizedReauthenticatesOnce(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			writeJSON(w, 401, `{"message":"token expired"}`)
			return
		}
		writeJSON(w, 200, `{"object_id":"WS-1","field_name":"f","status_code":"LINKED"}`)
	})
	c := f.client()
	res, err := c.AddAudit(context.Background(), "WS-1", AuditInput{StatusCode: StatusLinked, Message: "ok"})
	require.NoError(t, err)
	assert.Equal(t, "LINKED", res.StatusCode)

	reqs := f.apiRequests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "Bearer tok-1", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Bearer tok-2", reqs[1].Header.Get("Authorization"))
	assert.Equal(t, reqs[0].Body, reqs[1].Body, "body replayed")
	assert.Len(t, f.tokenRequests(), 2)
}

func TestUnauthorizedTwiceIsAnError(t *testing.T) {
	f := newFake(t, reply(401, `{"message":"invalid token"}`))
	c := f.client()
	_, err := c.GetExternalID(context.Background(), "WS-1")
	var ue *upstream.Error
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "workspan", ue.Connector)
	assert.Equal(t, 401, ue.Status)
	assert.Equal(t, "invalid token", ue.Message)
	assert.Len(t, f.apiRequests(), 2, "one retry only")
	assert.Len(t, f.tokenRequests(), 2)
}

func TestTokenErrors(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		wantSt  int
		wantMsg string
	}{
		{"oauth error echoing the secret", 400, `{"error":"invalid_client","error_description":"bad secret ` + testSecret + `"}`, 400, "bad secret [redacted]"},
		{"message", 401, `{"message":"Invalid app user ` + testSecret + `"}`, 401, "Invalid app user [redacted]"},
		{"plain text", 500, "oops " + testSecret, 500, "Internal Server Error"},
		{"2xx without token", 200, `{"error":"nope"}`, 502, "nope"},
		{"2xx not json", 200, `<html>`, 502, "token endpoint replied without an access token"},
		{"wrong token type", 200, `{"access_token":"x","token_type":"mac","expires_in":10}`, 502, `token endpoint replied with unsupported token type "mac"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, reply(200, `{}`))
			f.tokenReply = func(w http.ResponseWriter) { writeJSON(w, tc.status, tc.body) }
			_, err := f.client().Integrations(context.Background())
			var ue *upstream.Error
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, "workspan-auth", ue.Connector)
			assert.Equal(t, tc.wantSt, ue.Status)
			assert.Equal(t, tc.wantMsg, ue.Message)
			assert.NotContains(t, err.Error(), testSecret)
			assert.NotContains(t, ue.Detail, testSecret)
			assert.Empty(t, f.apiRequests(), "no API call without a token")
		})
	}
}

func TestTokenRetryAfterDateReadOnTheClock(t *testing.T) {
	f := newFake(t, reply(200, `{}`))
	f.tokenReply = func(w http.ResponseWriter) {
		w.Header()["Date"] = nil // without a Date the client's clock is the reference
		w.Header().Set("Retry-After", testStart.Add(42*time.Second).Format(http.TimeFormat))
		writeJSON(w, 503, `{"message":"try later"}`)
	}
	_, err := f.client(func(cfg *Config) { cfg.Clock = clock.NewFake(testStart) }).Events(context.Background())
	var ue *upstream.Error
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "workspan-auth", ue.Connector)
	assert.Equal(t, 42*time.Second, ue.RetryAfter)
}

func TestTokenErrorNotCached(t *testing.T) {
	f := newFake(t, reply(200, `{"events":[]}`))
	fail := true
	var mu sync.Mutex
	f.tokenReply = func(w http.ResponseWriter) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			writeJSON(w, 503, `{"message":"try later"}`)
			return
		}
		writeJSON(w, 200, `{"access_token":"fresh","token_type":"bearer","expires_in":3600}`)
	}
	c := f.client()
	_, err := c.Events(context.Background())
	var ue *upstream.Error
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, 503, ue.Status)
	_, err = c.Events(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "Bearer fresh", f.last().Header.Get("Authorization"))
}

func TestMissingCredentials(t *testing.T) {
	f := newFake(t, reply(200, `{}`))
	_, err := f.client(func(cfg *Config) { cfg.AppUserSecret = "" }).Events(context.Background())
	var ue *upstream.Error
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "workspan-auth", ue.Connector)
	assert.Equal(t, 401, ue.Status)
	assert.Empty(t, f.tokenRequests())
}

func TestSecretNotInTransportErrors(t *testing.T) {
	f := newFake(t, nil)
	f.srv.Close()
	c := f.client()
	_, err := c.Events(context.Background())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "workspan-auth: token request"), err.Error())
	assert.NotContains(t, err.Error(), testSecret)
	var ue *upstream.Error
	assert.False(t, errors.As(err, &ue))
}
