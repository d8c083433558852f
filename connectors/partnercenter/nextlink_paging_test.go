package partnercenter_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
)

// toServer sends every request to a test server whatever its URL, and
// records the URLs the client asked for.
type toServer struct {
	target *url.URL
	mu     sync.Mutex
	urls   []string
}

func (s *toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.urls = append(s.urls, r.URL.String())
	s.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = s.target.Scheme, s.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

func (s *toServer) URLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.urls...)
}

// The documented @odata.nextLink form (http scheme, no /engagements) and
// its relatives on the configured host are followed at the configured
// collection over https; foreign links are refused before any request.
func TestNextLinkDocumentedForms(t *testing.T) {
	const base = "https://api.partner.microsoft.com/v1.0/engagements"
	var link string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"value": []any{sampleReferral("a")}}
		if r.URL.Query().Get("$skiptoken") == "" {
			body["@odata.nextLink"] = link
		}
		writeJSON(w, 200, body)
	}))
	t.Cleanup(srv.Close)
	target, _ := url.Parse(srv.URL)
	rt := &toServer{target: target}
	c := partnercenter.New(partnercenter.StaticToken("test-token"), partnercenter.WithBaseURL(base),
		partnercenter.WithHTTPClient(&http.Client{Transport: rt}))

	for _, l := range []string{
		"http://api.partner.microsoft.com/v1.0/referrals?$skiptoken=t1", // as documented
		"https://api.partner.microsoft.com/v1.0/engagements/referrals?$skiptoken=t1",
		"https://API.Partner.Microsoft.com:443/v1.0/engagements/referrals/?$skiptoken=t1",
		"http://api.partner.microsoft.com/v1.0/Referrals?$skiptoken=t1",
		"/v1.0/referrals?$skiptoken=t1",
		"referrals?$skiptoken=t1",
		"//api.partner.microsoft.com/referrals?$skiptoken=t1",
	} {
		link = l
		before := len(rt.URLs())
		var ids []string
		for r, err := range c.Referrals(ctx(t), partnercenter.ListParams{Top: 1}) {
			require.NoError(t, err, l)
			ids = append(ids, r.ID)
		}
		assert.Equal(t, []string{"a", "a"}, ids, l)
		urls := rt.URLs()[before:]
		require.Len(t, urls, 2, l)
		assert.Equal(t, base+"/referrals?$top=1", urls[0])
		assert.Equal(t, base+"/referrals?$skiptoken=t1", urls[1], "%s is followed at the configured collection over https", l)
	}

	before := len(rt.URLs())
	for _, l := range []string{
		"https://evil.example/v1.0/referrals?$skiptoken=t1",
		"http://api.partner.microsoft.com.evil.example/v1.0/referrals",
		"https://api.partner.microsoft.com:8443/v1.0/referrals",
		"http://api.partner.microsoft.com:443/v1.0/referrals",
		"https://user:pw@api.partner.microsoft.com/v1.0/referrals",
		"https://api.partner.microsoft.com/v1.0/engagements/referrals/abc",
		"https://api.partner.microsoft.com/v1.0/other?$skiptoken=t1",
		"ftp://api.partner.microsoft.com/v1.0/referrals",
	} {
		_, err := c.NextPage(ctx(t), l)
		require.Error(t, err, l)
		assert.ErrorIs(t, err, partnercenter.ErrForeignNextLink, l)
		assert.ErrorIs(t, err, partnercenter.ErrInvalidArgument, l)
		assert.Contains(t, err.Error(), "only links to "+base+"/referrals are followed", l)
		assert.NotContains(t, err.Error(), "test-token")
	}
	_, err := c.NextPage(ctx(t), "https://evil.example/v1.0/referrals")
	assert.ErrorContains(t, err, "is not on the API host api.partner.microsoft.com")
	assert.Len(t, rt.URLs(), before, "a refused link costs no request")

	// The iterator stops at a foreign link with that error.
	link = "https://evil.example/v1.0/referrals?$skiptoken=t1"
	var iterErr error
	for _, err := range c.Referrals(ctx(t), partnercenter.ListParams{}) {
		iterErr = err
	}
	assert.ErrorIs(t, iterErr, partnercenter.ErrForeignNextLink)
}

// With an http base (a local sandbox), an https link is refused: the
// client never changes the configured scheme except to upgrade the
// documented http link.
func TestNextLinkHTTPBase(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{"value": []any{}}) })
	c := f.client()
	u, _ := url.Parse(f.URL)
	_, err := c.NextPage(ctx(t), "https://"+u.Host+"/v1.0/referrals?$skiptoken=x")
	assert.ErrorIs(t, err, partnercenter.ErrForeignNextLink)
	_, err = c.NextPage(ctx(t), "http://"+u.Host+"/v1.0/referrals?$skiptoken=x")
	require.NoError(t, err)
	reqs := f.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, basePath+"/referrals", reqs[0].Path)
	assert.Equal(t, "$skiptoken=x", reqs[0].RawQuery)
}
