package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
}

// newEnv starts a sandbox over real HTTP with a fake clock at testNow (unless opts brings its
// own fake clock) and a burst limit high enough not to interfere, unless opts says otherwise.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(testNow)
	}
	clk, ok := opts.Clock.(*clock.Fake)
	require.True(t, ok, "tests use a fake clock")
	if opts.Burst == 0 {
		opts.Burst = 1 << 20
	}
	srv := New(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{t: t, srv: srv, ts: ts, clock: clk}
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request with the default token; body may be nil, a string or a value to encode.
func (e *env) do(method, path string, body any) reply {
	e.t.Helper()
	return e.doToken(method, path, body, DefaultToken)
}

func (e *env) doToken(method, path string, body any, token string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("x-api-token", token)
	}
	resp, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		require.NoError(e.t, json.Unmarshal(raw, &r.body), "body: %s", raw)
	}
	return r
}

// ok asserts a 200 and returns the data member.
func (r reply) ok(t *testing.T) any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	require.Equal(t, true, r.body["success"])
	return r.body["data"]
}

func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	d, isMap := r.ok(t).(map[string]any)
	require.True(t, isMap, "data is not an object: %s", r.raw)
	return d
}

func (r reply) list(t *testing.T) []map[string]any {
	t.Helper()
	d, isList := r.ok(t).([]any)
	require.True(t, isList, "data is not an array: %s", r.raw)
	out := make([]map[string]any, 0, len(d))
	for _, v := range d {
		out = append(out, v.(map[string]any))
	}
	return out
}

func (r reply) nextCursor(t *testing.T) string {
	t.Helper()
	ad, isMap := r.body["additional_data"].(map[string]any)
	require.True(t, isMap, "additional_data missing: %s", r.raw)
	c, _ := ad["next_cursor"].(string)
	return c
}

// failed asserts a Pipedrive error reply with the given status and returns its message.
func (r reply) failed(t *testing.T, status int) string {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.raw)
	require.Equal(t, false, r.body["success"])
	require.Contains(t, r.body, "error_info")
	require.Contains(t, r.body, "data")
	require.Nil(t, r.body["data"])
	require.Contains(t, r.body, "additional_data")
	require.Nil(t, r.body["additional_data"])
	msg, _ := r.body["error"].(string)
	require.NotEmpty(t, msg)
	return msg
}

// all walks a v2 list endpoint through every page and returns the items.
func (e *env) all(path string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	sep := "?"
	if bytes.ContainsRune([]byte(path), '?') {
		sep = "&"
	}
	cursor := ""
	for {
		p := path
		if cursor != "" {
			p += sep + "cursor=" + cursor
		}
		r := e.do("GET", p, nil)
		out = append(out, r.list(e.t)...)
		cursor = r.nextCursor(e.t)
		if cursor == "" {
			return out
		}
	}
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}
