package workspan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const (
	testHost   = "demo.workspan.com"
	testUser   = "app-user-42"
	testSecret = "s3cr3t-VALUE-never-shown"
)

// testStart is where fake clocks start.
var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// recorded is one request the fake received.
type recorded struct {
	Method   string
	Path     string
	RawPath  string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// fakeAPI is a minimal WorkSpan API: a token endpoint issuing "tok-1",
// "tok-2", … and an API handler set by each test.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	api       []recorded
	tokens    []recorded
	issued    int
	expiresIn any // JSON value of expires_in
	// tokenReply, when set, replaces the token endpoint's reply.
	tokenReply func(w http.ResponseWriter)
	// tokenGate, when set, holds every token request until closed.
	tokenGate chan struct{}
	// tokenArrived, when set, is sent a value (if it has room) as each
	// token request arrives.
	tokenArrived chan struct{}
	handler      http.HandlerFunc
}

func newFake(t *testing.T, h http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, handler: h, expiresIn: 3600}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	if r.URL.Path == "/oauth/token" {
		f.mu.Lock()
		f.tokens = append(f.tokens, rec)
		gate, reply, arrived := f.tokenGate, f.tokenReply, f.tokenArrived
		f.mu.Unlock()
		if arrived != nil {
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
		if gate != nil {
			<-gate
		}
		if reply != nil {
			reply(w)
			return
		}
		f.mu.Lock()
		f.issued++
		n, exp := f.issued, f.expiresIn
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		writeJSON(w, 200, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer", "expires_in": exp})
		return
	}
	f.mu.Lock()
	f.api = append(f.api, rec)
	h := f.handler
	f.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h(w, r)
}

func (f *fakeAPI) apiRequests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.api...)
}

func (f *fakeAPI) tokenRequests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.tokens...)
}

func (f *fakeAPI) last() recorded {
	f.t.Helper()
	reqs := f.apiRequests()
	if len(reqs) == 0 {
		f.t.Fatal("no API request received")
	}
	return reqs[len(reqs)-1]
}

func (f *fakeAPI) client(mod ...func(*Config)) *Client {
	cfg := Config{BaseURL: f.srv.URL, HostName: testHost, AppUserID: testUser, AppUserSecret: testSecret}
	for _, m := range mod {
		m(&cfg)
	}
	return New(cfg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	switch b := v.(type) {
	case string:
		_, _ = io.WriteString(w, b)
	default:
		_ = json.NewEncoder(w).Encode(v)
	}
}

// reply returns a handler answering status with body (a string is sent
// verbatim, anything else as JSON).
func reply(status int, body any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, status, body) }
}

// waitingCtx is a context that reports the first time the code under test
// asks for its Done channel: the token cache does so only once the caller
// has joined a token fetch and waits for it.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan<- struct{}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { c.waiting <- struct{}{} })
	return c.Context.Done()
}
