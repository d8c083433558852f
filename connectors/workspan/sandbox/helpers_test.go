package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

var testNow = time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	clock *clock.Fake
	token string
}

// newEnv starts a sandbox over real HTTP with a fixed clock and fetches an access token.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clk := clock.NewFake(testNow)
	if opts.Clock == nil {
		opts.Clock = clk
	}
	srv := New(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, ts: ts, clock: clk}
	tok := e.tokenRequest(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {DefaultAppUserID},
		"client_secret": {DefaultAppUserSecret}, "operation": {"token"},
	}, DefaultHostName)
	require.Equal(t, http.StatusOK, tok.status, "body: %s", tok.raw)
	e.token = tok.body["access_token"].(string)
	return e
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (e *env) tokenRequest(form url.Values, host string) resp {
	e.t.Helper()
	target := e.ts.URL + "/oauth/token"
	if host != "" {
		target += "?x-ws-env=" + url.QueryEscape(host)
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

func (e *env) do(req *http.Request) resp {
	e.t.Helper()
	res, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(e.t, json.Unmarshal(raw, &r.body), "body: %s", raw)
	}
	return r
}

// call is one API request: headers are name/value pairs. A body that is a string or []byte is
// sent as is (Content-Type text/csv unless given); anything else is JSON-encoded. The
// x-ws-env header and the access token are added unless given ("" removes them).
func (e *env) call(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "text/csv"
	case []byte:
		rd, ct = bytes.NewReader(b), "text/csv"
	default:
		buf, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd, ct = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	require.NoError(e.t, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("x-ws-env", DefaultHostName)
	req.Header.Set("Authorization", "Bearer "+e.token)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.do(req)
}

func (e *env) get(path string, headers ...string) resp {
	e.t.Helper()
	return e.call(http.MethodGet, path, nil, headers...)
}

// ok asserts the status and returns the body.
func (r resp) ok(t *testing.T, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.raw)
	return r.body
}

// failed asserts an API error reply and returns its message.
func (r resp) failed(t *testing.T, status int) string {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.raw)
	require.Equal(t, statusCode(status), r.body["code"], "body: %s", r.raw)
	msg, _ := r.body["message"].(string)
	require.NotEmpty(t, msg)
	return msg
}

// opportunityIDs returns the ids of the seeded opportunities, sorted by creation.
func (e *env) opportunityIDs() []string {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	var ids []string
	for _, o := range e.srv.sortedOpportunities() {
		ids = append(ids, o.id)
	}
	return ids
}

func (e *env) accountID() string {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	for _, o := range e.srv.objects {
		if o.kind == kindAccount {
			return o.id
		}
	}
	e.t.Fatal("no account")
	return ""
}

// multipartBody builds a multipart/form-data body with one file part.
func multipartBody(t *testing.T, filename, partType string, data []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + filename + `"`}
	if partType != "" {
		h["Content-Type"] = []string{partType}
	}
	pw, err := mw.CreatePart(h)
	require.NoError(t, err)
	_, err = pw.Write(data)
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	return mw.FormDataContentType(), buf.Bytes()
}

// waitCompleted polls an execution until it completes and returns the final status; it
// asserts that the first poll saw it running. Between polls it lets a second pass on the
// env's clock (the rows are processed as that clock moves).
func (e *env) waitCompleted(integrationID, execID string, query string) map[string]any {
	e.t.Helper()
	path := "/bulk/v1/status/" + integrationID + "?execution_id=" + execID
	if query != "" {
		path += "&" + query
	}
	first := e.get(path).ok(e.t, http.StatusOK)
	require.Equal(e.t, "running", first["status"])
	for range 10000 {
		st := e.get(path).ok(e.t, http.StatusOK)
		if st["status"] == "completed" {
			return st
		}
		require.Equal(e.t, "running", st["status"])
		e.clock.Advance(time.Second)
	}
	e.t.Fatal("execution did not complete within 10000 simulated seconds")
	return nil
}

// load posts a bulk load and waits for it to complete.
func (e *env) load(path string, body any, headers ...string) (map[string]any, map[string]any) {
	e.t.Helper()
	created := e.call(http.MethodPost, path, body, headers...).ok(e.t, http.StatusOK)
	st := e.waitCompleted(created["integration_id"].(string), created["execution_id"].(string), "max_errors=100")
	return created, st
}
