package partnercenter_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// secretForms are the ways an upstream echoing a request writes s.
func secretForms(s string) []string {
	j, _ := json.Marshal(s)
	var u strings.Builder
	for _, r := range s {
		fmt.Fprintf(&u, `\u%04x`, r)
	}
	return []string{s, url.QueryEscape(s), url.PathEscape(s), string(j[1 : len(j)-1]), u.String()}
}

// issue finding 7: secrets echoed — Partner Center passed an echoed
// credential through to tool results; now no form of the access token
// reaches an error.
func TestAPIErrorsCarryNoToken(t *testing.T) {
	const token = `pc.tok/en+"42=`
	for _, form := range secretForms(token) {
		desc, _ := json.Marshal("bad bearer " + form)
		for _, body := range []string{
			"bad bearer " + form,
			fmt.Sprintf(`{"code":400,"description":%s,"data":[%s],"source":"PartnerFD"}`, desc, desc),
		} {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
			})
			c := partnercenter.New(partnercenter.StaticToken(token), partnercenter.WithBaseURL(f.base()))
			_, err := c.GetReferral(ctx(t), "r1")
			ue := asUpstream(t, err)
			assert.Equal(t, 400, ue.Status)
			for _, g := range secretForms(token) {
				assert.NotContains(t, err.Error(), g)
			}
			assert.Contains(t, err.Error(), upstream.Redacted, body)
		}
	}
}

// issue finding 7: secrets echoed — the token endpoint echoing its form
// (client secret, refresh token, URL-encoded) or the values JSON-escaped.
func TestTokenEndpointErrorsCarryNoSecret(t *testing.T) {
	const secret, refresh = `cl/ient+"secret=`, `re/fresh+"token=`
	te := newTokenEndpoint(t, func(_ int, form url.Values, w http.ResponseWriter) {
		w.WriteHeader(http.StatusBadRequest)
		desc, _ := json.Marshal("echo " + form.Encode() + " secret " + form.Get("client_secret") + " refresh " + form.Get("refresh_token"))
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%s}`, desc)
	})
	ts := partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: te.tokenURL(), ClientID: "a", ClientSecret: secret, RefreshToken: refresh})
	c := partnercenter.New(ts, partnercenter.WithBaseURL(te.base()))
	_, err := c.GetReferral(ctx(t), "r1")
	require.Error(t, err)
	for _, s := range []string{secret, refresh} {
		for _, g := range secretForms(s) {
			assert.NotContains(t, err.Error(), g)
		}
	}
	assert.Contains(t, err.Error(), upstream.Redacted)
}

// issue finding 5: every connector's replies are bounded — a 400 MB
// referral list, streamed, is refused at the limit.
func TestHugeReplyIsRefused(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, err := io.WriteString(w, `{"value":[`)
		row := strings.Repeat(`{"id":"r","name":"a referral of a very large reply"},`, 1000)
		for sent := 0; sent < 400<<20 && err == nil; sent += len(row) {
			_, err = io.WriteString(w, row)
		}
	})
	_, err := f.client().ListReferrals(ctx(t), partnercenter.ListParams{})
	var be *upstream.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, upstream.BodyTooLarge, be.Kind)

	_, err = f.client(partnercenter.WithMaxBody(4096)).ListReferrals(ctx(t), partnercenter.ListParams{})
	require.ErrorAs(t, err, &be)
	assert.Equal(t, int64(4096), be.Limit)
}

// A 204 (or an empty 2xx) to a patch is "no representation", not an error.
func TestEmptyPatchReplyIsNoReferral(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	ref, err := f.client().PatchReferral(ctx(t), "r1", []partnercenter.PatchOp{{Op: partnercenter.OpReplace, Path: "/status", Value: "Active"}}, "")
	require.NoError(t, err)
	assert.Nil(t, ref)
}
