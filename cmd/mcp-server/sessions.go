package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"

	"github.com/mark3labs/mcp-go/server"
)

// sessionIDPrefix starts every MCP session id this server issues.
const sessionIDPrefix = "mcp-session-"

// errUnknownSession is what another principal's (or a forged) session id
// gets: the same 404 as an id that never existed.
var errUnknownSession = errors.New("unknown session")

// ownedSessions binds every MCP session to the principal that created it
// (the API key name or JWT subject; "" without auth). Another principal's
// requests on the session are answered as for an unknown session (404), so
// a leaked or guessed session id lets nobody else call tools on it, read its
// stream or delete it.
type ownedSessions struct {
	mu    sync.Mutex
	owner map[string]string // session id → owner
}

func newOwnedSessions() *ownedSessions { return &ownedSessions{owner: map[string]string{}} }

// ownerOf names the principal of a request ("" when unauthenticated).
func ownerOf(r *http.Request) string {
	if r == nil {
		return ""
	}
	return principalName(r.Context())
}

// ResolveSessionIdManager implements server.SessionIdManagerResolver: the
// manager it returns acts for the request's principal. A nil request (the
// idle-session sweeper, shutdown) acts for the server and may end any session.
func (s *ownedSessions) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	return sessionsFor{s: s, owner: ownerOf(r), server: r == nil}
}

// allows reports whether the principal owner may use the session id; an id
// the server never issued (or that ended) is allowed through so that the
// transport answers it as usual.
func (s *ownedSessions) allows(id, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	got, known := s.owner[id]
	return !known || got == owner
}

// guard answers 404 to a request that names another principal's session,
// before the transport sees it (the transport's DELETE would otherwise end
// the session without asking whose it is).
func (s *ownedSessions) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(server.HeaderKeySessionID); id != "" && !s.allows(id, ownerOf(r)) {
			http.Error(w, "Invalid session ID", http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sessionsFor is the session id manager of one principal.
type sessionsFor struct {
	s      *ownedSessions
	owner  string
	server bool
}

// Generate issues a new unguessable session id owned by the principal.
func (m sessionsFor) Generate() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	id := sessionIDPrefix + hex.EncodeToString(b)
	m.s.mu.Lock()
	m.s.owner[id] = m.owner
	m.s.mu.Unlock()
	return id
}

// Validate accepts only live sessions of the principal.
func (m sessionsFor) Validate(id string) (isTerminated bool, err error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	owner, ok := m.s.owner[id]
	if !ok || (!m.server && owner != m.owner) {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends a session of the principal (the server may end any);
// another principal's session is left alone.
func (m sessionsFor) Terminate(id string) (isNotAllowed bool, err error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if owner, ok := m.s.owner[id]; ok && (m.server || owner == m.owner) {
		delete(m.s.owner, id)
	}
	return false, nil
}
