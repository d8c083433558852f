package partnercenter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pcsandbox "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
	"github.com/cosell-mcp/cosell-mcp/internal/tokenstore"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// sharedTimeout bounds every wait of the shared-store tests; it is never
// expected to pass.
const sharedTimeout = 2 * time.Minute

var stateKey = bytes.Repeat([]byte{0x5a}, 32)

// The refresh token the credential is configured with.
const initialRefresh = "rt-1-initial-refresh-token"

// rotatingIdP is a fake token endpoint that, as Azure AD may, rotates the
// refresh token on every use and rejects one that was rotated out. It
// issues access tokens for an hour.
type rotatingIdP struct {
	*fake
	clk *clock.Fake
	// beforeRefresh, if set, runs at the start of every refresh_token grant.
	beforeRefresh func()

	mu       sync.Mutex
	current  string // the one valid refresh token
	grants   int    // refreshes granted
	latest   string // the access token issued last
	rejected []string
	issued   []string // every token issued
}

func newRotatingIdP(t *testing.T, clk *clock.Fake) *rotatingIdP {
	idp := &rotatingIdP{clk: clk, current: initialRefresh}
	idp.fake = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if !assert.NoError(t, r.ParseForm()) || !assert.Equal(t, "refresh_token", r.PostForm.Get("grant_type")) {
			writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type"})
			return
		}
		if idp.beforeRefresh != nil {
			idp.beforeRefresh()
		}
		rt := r.PostForm.Get("refresh_token")
		idp.mu.Lock()
		defer idp.mu.Unlock()
		if rt != idp.current {
			idp.rejected = append(idp.rejected, rt)
			writeJSON(w, 400, map[string]any{"error": "invalid_grant",
				"error_description": "AADSTS70000: The provided value for the 'refresh_token' is not valid: it was already used " + rt})
			return
		}
		idp.grants++
		idp.latest = fmt.Sprintf("at-%d-%s", idp.grants, "access-token-value")
		idp.current = fmt.Sprintf("rt-%d-rotated-refresh-token", idp.grants+1)
		idp.issued = append(idp.issued, idp.latest, idp.current)
		writeJSON(w, 200, map[string]any{"access_token": idp.latest, "token_type": "Bearer", "expires_in": 3600, "refresh_token": idp.current})
	})
	return idp
}

func (idp *rotatingIdP) tokenURL() string { return idp.URL + "/tenant-1/oauth2/v2.0/token" }

// state returns the refreshes granted, the latest access token and the
// refresh tokens rejected.
func (idp *rotatingIdP) state() (grants int, latest string, rejected []string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.grants, idp.latest, append([]string(nil), idp.rejected...)
}

func (idp *rotatingIdP) issuedTokens() []string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return append([]string(nil), idp.issued...)
}

func (idp *rotatingIdP) config(store tokenstore.Store) partnercenter.OAuthConfig {
	return partnercenter.OAuthConfig{TokenURL: idp.tokenURL(), ClientID: "app-1", ClientSecret: testSecret,
		RefreshToken: initialRefresh, Clock: idp.clk, Store: store}
}

func sharedContext(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	t.Cleanup(cancel)
	return c
}

func newPGPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// openStore opens the token store on a pool of its own, as a replica does.
func openStore(t *testing.T, dsn string) *tokenstore.PG {
	t.Helper()
	st, err := tokenstore.Open(sharedContext(t), newPGPool(t, dsn), stateKey, tokenstore.Config{OpTimeout: 3 * time.Second})
	require.NoError(t, err)
	return st
}

// watchedStore reports every Refresh as it starts.
type watchedStore struct {
	tokenstore.Store
	entered chan<- struct{}
}

func (w watchedStore) Refresh(ctx context.Context, key string, fn tokenstore.RefreshFunc) (tokenstore.State, error) {
	w.entered <- struct{}{}
	return w.Store.Refresh(ctx, key, fn)
}

func mustToken(t *testing.T, ts partnercenter.TokenSource) string {
	t.Helper()
	tok, err := ts.Token(ctx(t))
	require.NoError(t, err)
	return tok
}

// TestSharedStoreOneRefreshPerExpiry runs three replicas (three token
// sources on three pools of one database, with one credential) and many
// concurrent callers on each while the access token expires again and
// again. Each time, every replica goes for the lock while one of them is at
// the token endpoint; the endpoint sees exactly one refresh per expiry,
// never a refresh token it rotated out, and every caller gets the token it
// issued last.
func TestSharedStoreOneRefreshPerExpiry(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	clk := clock.NewFake(testStart)
	idp := newRotatingIdP(t, clk)
	const replicas = 3
	entered := make(chan struct{}, 64)
	tctx := sharedContext(t)
	var armed atomic.Bool // the round's first refresh is yet to come
	idp.beforeRefresh = func() {
		if !armed.Swap(false) {
			return
		}
		// Hold the refresh until every replica is on its way to the lock.
		for range replicas {
			select {
			case <-entered:
			case <-tctx.Done():
				t.Error("the replicas did not all go for the lock")
				return
			}
		}
	}
	sources := make([]partnercenter.TokenSource, replicas)
	for i := range sources {
		sources[i] = partnercenter.NewOAuthTokenSource(idp.config(watchedStore{openStore(t, dsn), entered}))
	}

	const (
		expiries = 4
		callers  = 12 // per replica
	)
	for round := 1; round <= expiries; round++ {
		armed.Store(true)
		var wg sync.WaitGroup
		tokens := make([]string, replicas*callers)
		errs := make([]error, len(tokens))
		for i := range tokens {
			wg.Go(func() { tokens[i], errs[i] = sources[i%replicas].Token(tctx) })
		}
		wg.Wait()
		grants, latest, rejected := idp.state()
		require.NoError(t, errors.Join(errs...), "round %d", round)
		assert.Equal(t, round, grants, "round %d: one refresh per expiry", round)
		assert.Empty(t, rejected, "round %d: a rotated-out refresh token was redeemed", round)
		for _, tok := range tokens {
			assert.Equal(t, latest, tok, "round %d", round)
		}
		clk.Advance(time.Hour) // every token is due for renewal
	}
	grants, _, _ := idp.state()
	assert.Equal(t, expiries, grants)
	assert.Empty(t, entered, "no replica refreshed again")
}

// TestSharedStoreRestart: a replica started again (a new source on the same
// database, still configured with the spent initial refresh token) uses
// the stored access token, then redeems the rotated refresh token. Its
// Redactor knows the tokens it loaded.
func TestSharedStoreRestart(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	clk := clock.NewFake(testStart)
	idp := newRotatingIdP(t, clk)
	first := partnercenter.NewOAuthTokenSource(idp.config(openStore(t, dsn)))
	at1 := mustToken(t, first)

	restarted := partnercenter.NewOAuthTokenSource(idp.config(openStore(t, dsn)))
	assert.Equal(t, at1, mustToken(t, restarted), "the stored access token is still fresh")
	grants, _, _ := idp.state()
	assert.Equal(t, 1, grants)

	red := restarted.(interface{ Redactor() *upstream.Redactor }).Redactor()
	for _, tok := range idp.issuedTokens() {
		assert.Equal(t, "x [redacted] y", red.Redact("x "+tok+" y"), "a token loaded from the store is redacted")
	}

	clk.Advance(time.Hour)
	at2 := mustToken(t, restarted)
	grants, latest, rejected := idp.state()
	assert.Equal(t, 2, grants)
	assert.Equal(t, latest, at2)
	assert.Empty(t, rejected, "the restarted replica redeemed the rotated refresh token")
	assert.Equal(t, at2, mustToken(t, first), "the other replica takes the renewed token")
	grants, _, _ = idp.state()
	assert.Equal(t, 2, grants)
}

// TestSharedStoreInvalidate: a token the API refused on one replica is
// renewed once; another replica refused it too and takes the renewed one.
func TestSharedStoreInvalidate(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	clk := clock.NewFake(testStart)
	idp := newRotatingIdP(t, clk)
	a := partnercenter.NewOAuthTokenSource(idp.config(openStore(t, dsn)))
	b := partnercenter.NewOAuthTokenSource(idp.config(openStore(t, dsn)))
	at1 := mustToken(t, a)
	assert.Equal(t, at1, mustToken(t, b))

	a.(partnercenter.Invalidator).Invalidate(at1)
	at2 := mustToken(t, a)
	assert.NotEqual(t, at1, at2)
	assert.Equal(t, at1, mustToken(t, b), "b keeps its cached token until the API refuses it")
	b.(partnercenter.Invalidator).Invalidate(at1)
	assert.Equal(t, at2, mustToken(t, b))
	grants, _, rejected := idp.state()
	assert.Equal(t, 2, grants)
	assert.Empty(t, rejected)
}

// TestSharedStoreSealedAtRest: the table holds no token, secret or
// configured refresh token in plaintext, and its key none either.
func TestSharedStoreSealedAtRest(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	clk := clock.NewFake(testStart)
	idp := newRotatingIdP(t, clk)
	ts := partnercenter.NewOAuthTokenSource(idp.config(openStore(t, dsn)))
	for range 3 {
		mustToken(t, ts)
		clk.Advance(time.Hour)
	}
	secrets := append(idp.issuedTokens(), initialRefresh, testSecret)
	require.Len(t, secrets, 8)

	key := partnercenter.StoreKey(idp.config(nil))
	var dump []byte
	require.NoError(t, newPGPool(t, dsn).QueryRow(sharedContext(t), `SELECT convert_to(string_agg(t::text, ','), 'UTF8') FROM cosell_oauth_tokens t`).Scan(&dump))
	assert.Contains(t, string(dump), key)
	for _, s := range secrets {
		assert.NotContains(t, string(dump), s)
		assert.NotContains(t, string(dump), fmt.Sprintf("%x", s), "hex of a token")
		assert.NotContains(t, key, s)
	}
}

// TestSharedStoreDatabaseDown: with the database down, a token due for
// renewal cannot be had: Token fails and the endpoint sees no request (no
// stale refresh token is redeemed). A token still fresh in the cache is
// served. Once the database is back, the stored refresh token is redeemed.
func TestSharedStoreDatabaseDown(t *testing.T) {
	t.Parallel()
	srv := pgtest.StartServer(t)
	dsn := srv.NewDatabase(t)
	clk := clock.NewFake(testStart)
	idp := newRotatingIdP(t, clk)
	ts := partnercenter.NewOAuthTokenSource(idp.config(openStore(t, dsn)))
	at1 := mustToken(t, ts)

	require.NoError(t, srv.Stop())
	assert.Equal(t, at1, mustToken(t, ts), "a cached token needs no database")
	clk.Advance(time.Hour)
	_, err := ts.Token(ctx(t))
	require.ErrorIs(t, err, tokenstore.ErrUnavailable)
	assert.Contains(t, err.Error(), "partnercenter-auth")
	assert.NotContains(t, err.Error(), testSecret)
	_, err = ts.Token(ctx(t))
	require.ErrorIs(t, err, tokenstore.ErrUnavailable, "the failure is not cached")
	assert.Len(t, idp.Requests(), 1, "no token request without the database")

	require.NoError(t, srv.Start())
	at2 := mustToken(t, ts)
	grants, latest, rejected := idp.state()
	assert.Equal(t, 2, grants)
	assert.Equal(t, latest, at2)
	assert.Empty(t, rejected)
}

// lossyStore fails the next Refresh after its function has run: with
// written, after storing its result (the commit's answer was lost); else
// without storing it (the commit failed).
type lossyStore struct {
	tokenstore.Store
	fail    atomic.Bool
	written bool
}

var errLost = fmt.Errorf("%w: connection lost during commit", tokenstore.ErrUnavailable)

func (l *lossyStore) Refresh(ctx context.Context, key string, fn tokenstore.RefreshFunc) (tokenstore.State, error) {
	if !l.fail.Swap(false) {
		return l.Store.Refresh(ctx, key, fn)
	}
	if l.written {
		if _, err := l.Store.Refresh(ctx, key, fn); err != nil {
			return tokenstore.State{}, err
		}
		return tokenstore.State{}, errLost
	}
	_, err := l.Store.Refresh(ctx, key, func(cur tokenstore.State) (tokenstore.State, error) {
		if _, err := fn(cur); err != nil {
			return tokenstore.State{}, err
		}
		return cur, nil // write nothing
	})
	if err != nil {
		return tokenstore.State{}, err
	}
	return tokenstore.State{}, errLost
}

// TestSharedStoreLostWrite: when storing the tokens just obtained fails,
// Token fails, and the next call stores them (if the store did not get
// them) rather than redeeming the refresh token they replaced.
func TestSharedStoreLostWrite(t *testing.T) {
	t.Parallel()
	for _, written := range []bool{false, true} {
		t.Run(fmt.Sprintf("written=%v", written), func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.Start(t)
			clk := clock.NewFake(testStart)
			idp := newRotatingIdP(t, clk)
			lossy := &lossyStore{Store: openStore(t, dsn), written: written}
			ts := partnercenter.NewOAuthTokenSource(idp.config(lossy))
			mustToken(t, ts)
			clk.Advance(time.Hour)

			lossy.fail.Store(true)
			_, err := ts.Token(ctx(t))
			require.ErrorIs(t, err, errLost)
			grants, issued, _ := idp.state()
			require.Equal(t, 2, grants, "the endpoint rotated the refresh token")

			assert.Equal(t, issued, mustToken(t, ts), "the token obtained is used")
			other := partnercenter.NewOAuthTokenSource(idp.config(openStore(t, dsn)))
			assert.Equal(t, issued, mustToken(t, other), "and stored")
			clk.Advance(time.Hour)
			mustToken(t, other)
			grants, _, rejected := idp.state()
			assert.Equal(t, 3, grants)
			assert.Empty(t, rejected, "the rotated refresh token was stored")
		})
	}
}

// TestSharedStoreWithSandbox runs three replicas on the Partner Center
// sandbox, whose token endpoint rotates refresh tokens and refuses a spent
// one, through several expiries; every token works with the API.
func TestSharedStoreWithSandbox(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	clk := clock.NewFake(testStart)
	sb := pcsandbox.New(pcsandbox.Options{Clock: clk})
	var tokenRequests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			tokenRequests.Add(1)
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	const scope = partnercenter.DefaultScope + " offline_access"

	// The refresh token of a consent.
	resp, err := http.PostForm(sb.TokenURL(srv.URL), url.Values{"grant_type": {"client_credentials"},
		"client_id": {pcsandbox.DefaultClientID}, "client_secret": {pcsandbox.DefaultClientSecret}, "scope": {scope}})
	require.NoError(t, err)
	var consent struct {
		RefreshToken string `json:"refresh_token"`
	}
	require.NoError(t, decodeJSON(resp, &consent))
	require.NotEmpty(t, consent.RefreshToken)
	tokenRequests.Store(0)

	clients := make([]*partnercenter.Client, 3)
	for i := range clients {
		ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: sb.TokenURL(srv.URL),
			ClientID: pcsandbox.DefaultClientID, ClientSecret: pcsandbox.DefaultClientSecret, RefreshToken: consent.RefreshToken,
			Scope: scope, Clock: clk, Store: openStore(t, dsn)})
		clients[i] = partnercenter.New(ts, partnercenter.WithBaseURL(sb.APIBase(srv.URL)))
	}
	tctx := sharedContext(t)
	for round := 1; round <= 3; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 4*len(clients))
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = clients[i%len(clients)].ListReferrals(tctx, partnercenter.ListParams{Top: 1})
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...), "round %d", round)
		assert.Equal(t, int32(round), tokenRequests.Load(), "round %d: one token request per expiry", round)
		clk.Advance(time.Hour)
	}
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
