package toolstest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Fault is how an upstream answers a create after the sandbox carried it out.
type Fault string

// The faults of an unknown outcome: the record exists, the reply says nothing trustworthy.
const (
	NoFault    Fault = ""
	Garbage    Fault = "2xx with garbage"
	EmptyBody  Fault = "2xx with an empty body"
	BadGateway Fault = "502 after creating"
	Hang       Fault = "no answer until the client gives up"
)

// Marker in a create's body picks the create the upstream fails; the other
// requests (warming caches, a retry) are served as they are.
const Marker = "FAULTY"

// FaultyUpstream serves Sandbox, except for the first request that Match
// accepts and whose body carries Marker: the sandbox carries it out, then
// its reply is replaced by Fault (Garbage sends GarbageBody with the
// sandbox's own 2xx status). Close Release to end a Hang.
type FaultyUpstream struct {
	T           testing.TB
	Sandbox     http.Handler
	Match       func(r *http.Request) bool
	Fault       Fault
	GarbageBody string
	Release     chan struct{}

	mu  sync.Mutex
	hit bool
}

// ServeHTTP implements http.Handler.
func (f *FaultyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	faulty := f.Fault != NoFault && !f.hit && f.Match(r) && bytes.Contains(body, []byte(Marker))
	f.hit = f.hit || faulty
	f.mu.Unlock()
	if !faulty {
		f.Sandbox.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	f.Sandbox.ServeHTTP(rec, r)
	if rec.Code/100 != 2 {
		f.T.Errorf("the sandbox refused the create: %d %s", rec.Code, rec.Body)
	}
	switch f.Fault {
	case Garbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = io.WriteString(w, f.GarbageBody)
	case EmptyBody:
		w.WriteHeader(rec.Code)
	case BadGateway:
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>502 Bad Gateway</html>")
	case Hang:
		select {
		case <-f.Release:
		case <-r.Context().Done():
		}
	}
}
