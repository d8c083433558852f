package workspan

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

func secretForms(s string) []string {
	j, _ := json.Marshal(s)
	var u strings.Builder
	for _, r := range s {
		fmt.Fprintf(&u, `\u%04x`, r)
	}
	return []string{s, url.QueryEscape(s), url.PathEscape(s), string(j[1 : len(j)-1]), u.String()}
}

// issue finding 7: secrets echoed — one redaction point for WorkSpan too:
// the access token it sent and the application user's secret, in any form.
func TestErrorsCarryNoCredential(t *testing.T) {
	const token = `ws.tok/en+"1=`
	for _, form := range secretForms(token) {
		msg, _ := json.Marshal("bad token " + form)
		for _, body := range []string{"bad token " + form, `{"message":` + string(msg) + `}`} {
			f := newFake(t, reply(http.StatusBadRequest, body))
			f.tokenReply = func(w http.ResponseWriter) {
				writeJSON(w, 200, map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 3600})
			}
			_, err := f.client().GetExternalID(context.Background(), "WS-1")
			var ue *upstream.Error
			require.ErrorAs(t, err, &ue)
			for _, g := range secretForms(token) {
				assert.NotContains(t, err.Error(), g)
			}
			assert.Contains(t, err.Error(), upstream.Redacted)
		}
	}

	// The token endpoint echoing the form it got (secret URL-encoded).
	f := newFake(t, nil)
	f.tokenReply = func(w http.ResponseWriter) {
		desc, _ := json.Marshal("rejected client_secret=" + url.QueryEscape(testSecret) + " / " + testSecret)
		writeJSON(w, 401, `{"error":"invalid_client","error_description":`+string(desc)+`}`)
	}
	_, err := f.client().GetExternalID(context.Background(), "WS-1")
	require.Error(t, err)
	for _, g := range secretForms(testSecret) {
		assert.NotContains(t, err.Error(), g)
	}
	assert.Contains(t, err.Error(), upstream.Redacted)
}

// issue finding 7: a success reply that carries the token hands out no
// copy of it.
func TestSuccessRepliesAreRedacted(t *testing.T) {
	f := newFake(t, reply(200, `{"object_id":"WS-1","external_ids":[{"field_name":"crm","external_id":"`+url.QueryEscape("tok-1")+`"}]}`))
	out, err := f.client().GetExternalID(context.Background(), "WS-1")
	require.NoError(t, err)
	assert.Equal(t, upstream.Redacted, out.ExternalIDs[0].ExternalID)
}

// issue finding 5: WorkSpan replies are bounded too — a 400 MB report page,
// streamed, is refused at the limit.
func TestHugeReplyIsRefused(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, err := io.WriteString(w, `{"endOfList":false,"results":[`)
		row := strings.Repeat(`{"id":1,"name":"a row of a very large report"},`, 1000)
		for sent := 0; sent < 400<<20 && err == nil; sent += len(row) {
			_, err = io.WriteString(w, row)
		}
	})
	_, err := f.client().ReadReport(context.Background(), 7, ReportQuery{})
	var be *upstream.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, upstream.BodyTooLarge, be.Kind)

	_, err = f.client(func(c *Config) { c.MaxBody = 1024 }).ReadReport(context.Background(), 7, ReportQuery{})
	require.ErrorAs(t, err, &be)
	assert.Equal(t, int64(1024), be.Limit)
}

// issue finding 8: ids above 2^53 in report rows keep every digit.
func TestReportRowIDsStayExact(t *testing.T) {
	f := newFake(t, reply(200, `{"endOfList":true,"results":[{"id":9007199254740993}],"version":9007199254740995}`))
	out, err := f.client().ReadReport(context.Background(), 9007199254740993, ReportQuery{})
	require.NoError(t, err)
	assert.Equal(t, "/report/v1/9007199254740993/data", f.last().Path)
	assert.Equal(t, json.Number("9007199254740993"), out.Results[0]["id"])
	assert.Equal(t, int64(9007199254740995), out.Version)
}
